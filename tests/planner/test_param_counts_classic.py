"""GPT-2, GPTBigCode (StarCoder 1), BLOOM, Falcon, Mamba / Falcon-Mamba / Mamba-2, MiniCPM3,
Granite SWA (dense and MoE), BitNet, Jais 2 and Mellum (planner/estimator/classic.py and the
layouts it shares): parameter counts, GGUF tensors, llama.cpp's KV cache and recurrent state equal
what the real tools produce.

Pinned numbers, measured outside the estimator:
- totals of the config classes' defaults: transformers 5.23.0 building them on the meta device
  (planner.model_definition); GPT-2's 124,439,808 is also the published count of gpt2 (small),
  Falcon's 6,921,720,704 that of tiiuae/falcon-7b, MiniCPM3's 4,073,875,968 that of MiniCPM3-4B;
- tensors, KV and recurrent state: the tiny random-weight models of bench/llama_cpp_ground_truth.py
  (hidden 256, 4 layers, 4 heads, the demo's 49,152-token vocabulary) converted to F16 by the vendored
  convert_hf_to_gguf.py, quantized with llama_model_quantize and loaded by llama-cpp-python 0.3.36
  at n_ctx 4096 ("llama_kv_cache: size = … MiB", "llama_memory_recurrent: size = … MiB");
- Falcon's Q4_K_M types: read off llama-quant.cpp llama_tensor_get_type_impl's LLM_ARCH_FALCON
  branches by hand, and confirmed by the converted tiny Falcon's byte total.
"""

import pytest

from planner.estimator import Architecture, EstimatorError, Workload
from planner.estimator.gguf_quant import gguf_file_tensor_bytes, tensor_type
from planner.estimator.memory import kv_cache_bytes, recurrent_bytes
from planner.model_definition import architecture_for_config, model_definition, undeclared_tensors
from tests.planner.architecture_sweep import default_config

MiB = 2**20

# transformers 5.23.0, each config class's defaults built on the meta device
DEFAULT_TOTALS = {
    "gpt2": 124_439_808, "gpt-sw3": 124_439_808, "gpt_bigcode": 111_446_784, "bloom": 16_156_544,
    "falcon": 6_921_720_704, "mamba": 159_308_544, "falcon_mamba": 159_308_544, "mamba2": 7_285_403_648,
    "minicpm3": 4_073_875_968, "granite_swa": 2_144_463_840, "granitemoe_swa": 37_039_117_312,
    "bitnet": 2_741_155_840, "jais2": 8_090_401_280, "mellum": 12_149_923_072, "youtu": 1_961_560_064,
    "afmoe": 19_232_600_000, "cohere2_moe": 190_004_928_512, "hy_v3": 295_033_543_488,
}

# class defaults the converter or llama.cpp cannot take (the published models differ from them)
GGUF_REFUSED_BY_DEFAULT = {"gpt2": "n_ctx", "gpt-sw3": "n_ctx", "bitnet": "Can not map tensor", "mellum": "is_swa_any"}


@pytest.mark.parametrize("model_type", sorted(DEFAULT_TOTALS))
def test_default_config_total_equals_transformers(model_type):
    arch = architecture_for_config(default_config(model_type))
    assert arch.total_params == DEFAULT_TOTALS[model_type]
    if model_type in GGUF_REFUSED_BY_DEFAULT:
        assert GGUF_REFUSED_BY_DEFAULT[model_type] in arch.gguf_unsupported
    else:   # every GGUF name is one llama.cpp declares for the architecture
        assert arch.gguf_unsupported == "" and undeclared_tensors(arch) == []


def test_falcon_7b_published_config_plans_as_multi_query():
    """tiiuae/falcon-7b's config.json (no num_kv_heads): one K/V head of 64, query_key_value of 4,544 + 128."""
    cfg = {"model_type": "falcon", "hidden_size": 4544, "num_hidden_layers": 32, "num_attention_heads": 71,
           "multi_query": True, "parallel_attn": True, "new_decoder_architecture": False, "bias": False,
           "alibi": False, "vocab_size": 65024}
    arch = Architecture.from_config(cfg)
    assert (arch.n_kv_heads, arch.head_dim, arch.total_params) == (1, 64, 6_921_720_704)
    assert dict((n, s) for n, s, _ in arch.tensors())["blk.0.attn_qkv.weight"] == (4544, 4672)


def test_falcon_new_decoder_architecture_is_exact_against_transformers():
    """Falcon-40B's block (grouped K/V, ln_attn + ln_mlp) and Falcon 2's (one shared LayerNorm)."""
    base = {"model_type": "falcon", "hidden_size": 1024, "num_hidden_layers": 3, "num_attention_heads": 16,
            "num_kv_heads": 4, "new_decoder_architecture": True, "vocab_size": 5000}
    for extra, norms in (({}, {"attn_norm", "attn_norm_2"}), ({"num_ln_in_parallel_attn": 1}, {"attn_norm"})):
        cfg = {**base, **extra}
        arch = architecture_for_config(cfg)
        assert arch.total_params == model_definition(cfg).total_params
        assert {n.split(".")[2] for n, _, _ in arch.tensors() if n.startswith("blk.0.") and "norm" in n} == norms
        assert arch.n_kv_heads == 4 and arch.gguf_unsupported == ""


def _tiny(model_type: str, **more) -> dict:
    return {"model_type": model_type, "vocab_size": 49152, **more}


GPT2 = _tiny("gpt2", n_embd=256, n_layer=4, n_head=4, n_positions=4096, n_ctx=4096)
# (config, tensors in the converted F16 file, llama.cpp's KV cache in MiB at n_ctx 4096)
TINY = {
    "gpt2": (GPT2, 52, 16.00),
    "gpt_bigcode": (_tiny("gpt_bigcode", n_embd=256, n_layer=4, n_head=4, n_positions=4096), 52, 4.00),
    "bloom": (_tiny("bloom", hidden_size=256, n_layer=4, n_head=4), 53, 16.00),
    "falcon": (_tiny("falcon", hidden_size=256, num_hidden_layers=4, num_attention_heads=4), 27, 4.00),
    "mamba": (_tiny("mamba", hidden_size=256, num_hidden_layers=4, intermediate_size=512), 42, 0.00),
    "mamba2": (_tiny("mamba2", hidden_size=256, num_hidden_layers=4, num_heads=8, head_dim=64, n_groups=2,
                     state_size=128), 39, 0.00),
    # MLA decompressed by llama.cpp's minicpm3: 4 layers × 4 heads × (48 K + 64 V) × 4096 cells × 2 B
    "minicpm3": (_tiny("minicpm3", hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                       num_key_value_heads=4, intermediate_size=512, kv_lora_rank=64, q_lora_rank=96,
                       qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=64), 50, 14.00),
    "jais2": (_tiny("jais2", hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=64, intermediate_size=512), 68, 8.00),
    # converted as DeepSeek-V2: the MLA latent, 4 layers × (64 kv_lora + 16 rope) × 4096 cells × 2 B
    "youtu": (_tiny("youtu", hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                    intermediate_size=512, kv_lora_rank=64, q_lora_rank=96, qk_nope_head_dim=32,
                    qk_rope_head_dim=16, v_head_dim=32), 54, 2.50),
    # one dense layer, then 8 experts (2 per token) with 2 shared experts; swa_full: every layer full
    "afmoe": (_tiny("afmoe", hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=64, intermediate_size=512, moe_intermediate_size=64, num_experts=8,
                    num_experts_per_tok=2, num_shared_experts=2, num_dense_layers=1, sliding_window=256), 74, 8.00),
    # one pre-norm per block (parallel attention and MLP), 8 experts of intermediate_size, tied output
    "cohere2_moe": (_tiny("cohere2_moe", hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                          num_key_value_heads=2, head_dim=64, intermediate_size=512, num_experts=8,
                          num_experts_per_tok=2, sliding_window=256), 38, 8.00),
    # swa_full (llama-cpp-python's default): every layer caches the whole context
    "granite_swa": (_tiny("granite_swa", hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                          num_key_value_heads=2, intermediate_size=512), 42, 8.00),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_model_tensor_count_and_kv_equal_llama_cpp(name):
    cfg, n_tensors, kv_mib = TINY[name]
    arch = Architecture.from_config(cfg)
    assert len(arch.tensors()) == n_tensors
    assert kv_cache_bytes(arch, Workload(context=4096))[0] == kv_mib * MiB


def test_hy_v3_router_bias_keeps_the_converters_name():
    """The converted tiny HY V3 holds blk.1.exp_probs_b (8,), no .bias suffix (its checkpoint name,
    mlp.e_score_correction_bias, has none); llama.cpp loads the file."""
    cfg = _tiny("hy_v3", hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                head_dim=64, intermediate_size=512, moe_intermediate_size=64, num_experts=8, num_experts_per_tok=2,
                mlp_layer_types=["dense", "sparse", "sparse", "sparse"])
    shapes = {n: s for n, s, _ in Architecture.from_config(cfg).tensors()}
    assert shapes["blk.1.exp_probs_b"] == (8,) and "blk.0.exp_probs_b" not in shapes
    assert len(shapes) == 62   # the converted file's tensor count


def test_gpt2_block_as_the_converter_writes_it():
    """conversion/gpt2.py transposes c_attn / c_proj / c_fc into ggml order; position_embd of n_ctx rows."""
    shapes = {n: s for n, s, _ in Architecture.from_config(GPT2).tensors()}
    assert shapes["position_embd.weight"] == (256, 4096)
    assert shapes["blk.0.attn_qkv.weight"] == (256, 768) and shapes["blk.0.attn_qkv.bias"] == (768,)
    assert shapes["blk.0.ffn_up.weight"] == (256, 1024) and shapes["blk.0.ffn_down.weight"] == (1024, 256)
    assert "output.weight" not in shapes   # tied: the converter writes no output tensor


def test_mamba_recurrent_state_equals_llama_cpp():
    """Mamba: 4 layers × ((d_conv − 1) × d_inner + d_state × d_inner) × 4 B = 4 × (3 × 512 + 16 × 512) × 4;
    Mamba-2: 4 × (3 × (512 + 2 × 2 groups × 128) + 128 × 512) × 4."""
    assert recurrent_bytes(Architecture.from_config(TINY["mamba"][0]), Workload(context=4096))[0] == 155_648
    assert recurrent_bytes(Architecture.from_config(TINY["mamba2"][0]), Workload(context=4096))[0] == 1_097_728
    # the logs: "llama_memory_recurrent: size = 0.15 MiB" and "= 1.05 MiB"


def test_minicpm3_q4_k_m_file_equals_llama_quantize():
    """attn_kv_b is attn_v-like for llama-quantize (category_is_attn_v): Q6_K on layers 2 and 3 of 4
    (use_more_bits), both falling back to Q8_0 over its 64-wide rows; measured 11,671,552 B of tensors."""
    arch = Architecture.from_config(TINY["minicpm3"][0])
    assert gguf_file_tensor_bytes(arch, "Q4_K_M") == 11_671_552


def test_falcon_q4_k_m_types_follow_llama_cpp_falcon_rules():
    arch = Architecture.from_config(TINY["falcon"][0])
    shapes = {n: s for n, s, _ in arch.tensors()}
    assert tensor_type(arch, "Q4_K_M", "token_embd.weight", shapes["token_embd.weight"]) == "Q8_0"   # tied output
    assert tensor_type(arch, "Q4_K_M", "blk.0.ffn_down.weight", shapes["blk.0.ffn_down.weight"]) == "Q4_K"
    assert tensor_type(arch, "Q4_K_M", "blk.3.ffn_down.weight", shapes["blk.3.ffn_down.weight"]) == "Q5_K"
    assert tensor_type(arch, "Q3_K_L", "blk.1.attn_output.weight", shapes["blk.1.attn_output.weight"]) == "Q4_K"


@pytest.mark.parametrize("cfg,why", [
    ({**GPT2, "n_ctx": None}, "n_ctx"),
    ({**GPT2, "n_inner": 512}, "4 × n_embd"),
    (_tiny("gpt_bigcode", n_embd=256, n_layer=4, n_head=4, multi_query=False), "head_count_kv = 1"),
    (_tiny("falcon", hidden_size=256, num_hidden_layers=4, num_attention_heads=4, alibi=True), "ALiBi"),
    (_tiny("falcon", hidden_size=256, num_hidden_layers=4, num_attention_heads=4, bias=True), "biases"),
    (_tiny("falcon", hidden_size=256, num_hidden_layers=4, num_attention_heads=4, parallel_attn=False), "parallel"),
    (_tiny("mamba", hidden_size=256, num_hidden_layers=4, vocab_size=50277), "multiple of 8"),
    (_tiny("mamba2", hidden_size=256, num_hidden_layers=4, num_heads=4, head_dim=64, n_groups=1), "num_heads 4"),
    (_tiny("mellum", hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
           head_dim=64, num_local_experts=8, num_experts_per_tok=2, intermediate_size=512, moe_intermediate_size=64,
           layer_types=["full_attention"] * 4, sliding_window=256), "is_swa_any"),
    (_tiny("afmoe", hidden_size=256, num_hidden_layers=4, num_attention_heads=4, head_dim=64, intermediate_size=512,
           moe_intermediate_size=64, num_experts=8, num_experts_per_tok=2, sliding_window=256,
           layer_types=["full_attention", "sliding_attention", "sliding_attention", "sliding_attention"]),
     "fixed pattern"),
    (_tiny("cohere2_moe", hidden_size=256, num_hidden_layers=4, num_attention_heads=4, head_dim=64,
           intermediate_size=512, num_experts=8, num_experts_per_tok=2,
           mlp_layer_types=["sparse", "dense", "sparse", "sparse"]), "only leading layers"),
    # measured: the vendored converter fails on transformers' BitNet sub-norm names
    (_tiny("bitnet", hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512,
           tie_word_embeddings=True), "inner_attn_ln"),
])
def test_configs_llama_cpp_cannot_run_are_marked(cfg, why):
    assert why in Architecture.from_config(cfg).gguf_unsupported


def test_mamba_with_projection_biases_is_refused():
    with pytest.raises(EstimatorError, match="use_bias"):
        Architecture.from_config(_tiny("mamba", hidden_size=256, num_hidden_layers=4, use_bias=True))


@pytest.mark.parametrize("arch", ["gpt2", "starcoder", "bloom", "falcon", "mamba", "mamba2"])
def test_gguf_metadata_of_these_architectures_is_refused(arch):
    with pytest.raises(EstimatorError, match="config.json only"):
        Architecture.from_gguf_metadata({"general.architecture": arch, f"{arch}.block_count": 2})
