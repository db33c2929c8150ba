"""Kimi Linear (kimi_linear, planner/estimator/kimi_linear.py) pinned to transformers and llama.cpp.

Totals and per-layer counts: transformers 5.23 KimiLinearForCausalLM built on the meta device
(parameters and the persistent e_score_correction_bias buffers). Tensor list, file bytes and cache
sizes: the tiny model of `python bench/llama_cpp_ground_truth.py --only kimi_linear` (2026-12-07),
converted by the vendored convert_hf_to_gguf.py (gguf.GGUFReader names, shapes and byte sums),
quantized with llama_model_quantize and loaded by llama-cpp-python 0.3.36 at n_ctx 4096, whose log
said "llama_kv_cache: size = 0.62 MiB (4096 cells, 1 layers, 1/1 seqs), K (f16): 0.62 MiB,
V (f16): 0.00 MiB" and "llama_memory_recurrent: size = 0.21 MiB (1 cells, 4 layers, 1 seqs),
R (f32): 0.03 MiB, S (f32): 0.19 MiB".
"""

import pytest

from planner.estimator import Architecture, EstimatorError
from planner.estimator.gguf_quant import gguf_file_tensor_bytes
from planner.estimator.memory import kv_cache_bytes, recurrent_bytes
from planner.estimator.workload import Workload

MiB = 2**20
KDA, MLA = "linear_attention", "full_attention"
# KimiLinearConfig() as config.to_dict() spells it (attribute_map names), the fields the count reads
DEFAULT = {"model_type": "kimi_linear", "vocab_size": 163840, "hidden_size": 2304, "intermediate_size": 9216,
           "moe_intermediate_size": 1024, "num_hidden_layers": 27, "num_attention_heads": 32,
           "num_key_value_heads": 32, "num_shared_experts": 1, "kv_lora_rank": 512, "q_lora_rank": None,
           "qk_rope_head_dim": 64, "v_head_dim": 128, "qk_nope_head_dim": 128, "num_experts_per_token": 8,
           "num_experts": 256, "head_dim": 64, "linear_head_dim": 128, "linear_num_heads": 32,
           "linear_conv_kernel_dim": 4, "tie_word_embeddings": False,
           "layer_types": [MLA if i and i % 4 == 0 else KDA for i in range(27)],
           "mlp_layer_types": ["dense"] + ["sparse"] * 26}
# the bench's tiny instance (its saved config.json)
TINY = {"model_type": "kimi_linear", "vocab_size": 49152, "hidden_size": 256, "intermediate_size": 512,
        "moe_intermediate_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4,
        "num_shared_experts": 1, "kv_lora_rank": 64, "q_lora_rank": None, "qk_rope_head_dim": 16,
        "qk_nope_head_dim": 32, "v_head_dim": 32, "num_experts": 8, "num_experts_per_token": 2, "head_dim": 64,
        "linear_head_dim": 64, "linear_num_heads": 4, "linear_conv_kernel_dim": 4, "tie_word_embeddings": False,
        "layer_types": [KDA, KDA, KDA, MLA], "mlp_layer_types": ["dense", "sparse", "sparse", "sparse"],
        "linear_attn_config": {"full_attn_layers": [4], "kda_layers": [1, 2, 3], "head_dim": 64, "num_heads": 4,
                               "short_conv_kernel_size": 4},
        "first_k_dense_replace": 1, "moe_router_activation_func": "sigmoid"}


def test_default_config_total_and_layers_equal_transformers():
    arch = Architecture.from_config(DEFAULT)
    assert arch.total_params == 49_133_081_120
    assert arch.layer_params[:5] == [103_219_872, 1_859_126_176, 1_859_126_176, 1_859_126_176, 1_848_726_784]
    assert arch.kv_layers == 6 and len(arch.hybrid.recurrent_layers) == 21


def test_published_layout_from_linear_attn_config():
    # the layout as the published config.json states it (1-indexed layers), no layer_types
    cfg = {k: v for k, v in TINY.items() if k not in ("layer_types", "mlp_layer_types")}
    arch = Architecture.from_config(cfg)
    assert arch.hybrid.attention_layers == (3,) and arch.hybrid.ffns == ("dense", "moe", "moe", "moe")


def test_tiny_tensors_and_file_bytes_equal_the_converted_file():
    arch = Architecture.from_config(TINY)
    assert arch.gguf_unsupported == ""
    names = {n: s for n, s, _ in arch.gguf_tensors()}
    assert len(names) == 89
    assert {n: s for n, s in names.items() if n.startswith("blk.3.") and "ffn" not in n and "exp_probs" not in n} == {
        "blk.3.attn_norm.weight": (256,), "blk.3.attn_kv_a_norm.weight": (64,),
        "blk.3.attn_kv_a_mqa.weight": (256, 80), "blk.3.attn_k_b.weight": (32, 64, 4),
        "blk.3.attn_v_b.weight": (64, 32, 4), "blk.3.attn_output.weight": (128, 256),
        "blk.3.attn_q.weight": (256, 192)}
    assert {n: s for n, s in names.items() if n.startswith("blk.2.") and "ffn" not in n and "exp_probs" not in n} == {
        "blk.2.attn_norm.weight": (256,), "blk.2.ssm_a": (1, 4, 1, 1), "blk.2.ssm_beta.weight": (256, 4),
        "blk.2.ssm_dt.bias": (256,), "blk.2.ssm_f_a.weight": (256, 64), "blk.2.ssm_f_b.weight": (64, 256),
        "blk.2.ssm_g_a.weight": (256, 64), "blk.2.ssm_g_b.weight": (64, 256),
        "blk.2.ssm_conv1d_q.weight": (4, 1, 256, 1), "blk.2.ssm_conv1d_k.weight": (4, 1, 256, 1),
        "blk.2.ssm_conv1d_v.weight": (4, 1, 256, 1), "blk.2.ssm_norm.weight": (64,),
        "blk.2.attn_q.weight": (256, 256), "blk.2.attn_k.weight": (256, 256), "blk.2.attn_v.weight": (256, 256),
        "blk.2.attn_output.weight": (256, 256)}
    assert names["blk.2.exp_probs_b.bias"] == (8,) and names["output.weight"] == (256, 49152)
    assert gguf_file_tensor_bytes(arch, "F16") == 56_056_976
    assert gguf_file_tensor_bytes(arch, "Q4_K_M") == 19_471_440


def test_tiny_caches_equal_llama_cpp_log():
    arch = Architecture.from_config(TINY)
    wl = Workload(context=4096, runtime="llama.cpp")
    kv, _ = kv_cache_bytes(arch, wl)
    assert kv == 80 * 4096 * 2   # 1 MLA layer × (kv_lora 64 + rope 16) × 4096 cells, no V: K (f16) 0.62 MiB
    state, _ = recurrent_bytes(arch, wl)
    # 3 KDA layers × (R 3 · (4 − 1) · 4 heads · 64 + S 64² · 4 heads) × 4 B: R 0.03 MiB + S 0.19 MiB
    assert state == 3 * (2_304 + 16_384) * 4
    assert round(kv / MiB, 2) == 0.62 and round(state / MiB, 2) == 0.21


def test_gguf_rows_refused_where_llama_cpp_cannot_load_the_file():
    # measured: without moe_router_activation_func the converter writes no gating function and
    # llama_model_quantize / the loader stop at "key not found in model: kimi-linear.expert_gating_func"
    no_gating = {k: v for k, v in TINY.items() if k != "moe_router_activation_func"}
    assert "kimi-linear.expert_gating_func" in Architecture.from_config(no_gating).gguf_unsupported
    # llama.cpp sizes KDA by the attention head count
    assert "KDA has 8 heads" in Architecture.from_config({**TINY, "linear_num_heads": 8,
                                                          "linear_attn_config": None}).gguf_unsupported


def test_bad_layout_is_refused_naming_the_field():
    with pytest.raises(EstimatorError, match="layer_types"):
        Architecture.from_config({**TINY, "layer_types": [KDA, MLA]})
    with pytest.raises(EstimatorError, match="full_attn_layers"):
        Architecture.from_config({**TINY, "layer_types": None,
                                  "linear_attn_config": {"full_attn_layers": [9], "kda_layers": [1]}})


def test_transformers_cache_of_the_tiny_model_equals_the_estimate():
    """transformers' own cache after a 37-token bf16 forward of the tiny model (random weights, the
    reference PyTorch kernels): per KDA layer conv states 768 channels × 4 steps × 2 B = 6,144 B and a
    float32 recurrent state 4 heads × 64 × 64 × 4 B = 65,536 B; the MLA layer 37 × (64 + 16) × 2 B.
    Measured 2026-12-07: 3 × 71,680 = 215,040 B of state and 5,920 B of KV."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    from planner.estimator.hybrid import recurrent_state_bytes

    config = CONFIG_MAPPING["kimi_linear"](**{k: v for k, v in TINY.items() if k != "model_type"},
                                           pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).eval()
    with torch.no_grad():
        cache = model(input_ids=torch.randint(0, 1000, (1, 37)), use_cache=True).past_key_values
    state = sum(t.numel() * t.element_size() for layer in cache.layers if hasattr(layer, "conv_states")
                for states in (layer.conv_states, layer.recurrent_states) for t in states.values())
    kv = sum(t.numel() * t.element_size() for layer in cache.layers if hasattr(layer, "keys")
             for t in (layer.keys, layer.values))
    assert (state, kv) == (215_040, 5_920)
    arch = Architecture.from_config(TINY)
    assert recurrent_state_bytes(arch, "transformers", 1)[0] == state
    assert kv_cache_bytes(arch, Workload(runtime="transformers", context=37))[0] == kv
