"""MiMo-V2-Flash (mimo_v2_flash, planner/estimator/mimo_v2.py) and Laguna (laguna,
planner/estimator/laguna.py) pinned to transformers.

Totals and per-layer counts: transformers 5.23 MiMoV2FlashForCausalLM / LagunaForCausalLM built on
the meta device from their config classes' defaults (parameters and persistent buffers), 2026-12-07.
"""

import pytest

from planner.estimator import Architecture, EstimatorError
from planner.estimator.gguf_quant import gguf_file_tensor_bytes
from planner.estimator.memory import kv_cache_bytes
from planner.estimator.workload import Workload

S, F = "sliding_attention", "full_attention"
# MiMoV2FlashConfig() as config.to_dict() spells it: the fields the count reads
MIMO_DEFAULT = {"model_type": "mimo_v2_flash", "vocab_size": 152576, "hidden_size": 4096, "intermediate_size": 16384,
                "num_hidden_layers": 48, "num_attention_heads": 64, "num_key_value_heads": 4, "head_dim": 192,
                "v_head_dim": 128, "moe_intermediate_size": 2048, "num_experts_per_tok": 8, "n_routed_experts": 256,
                "sliding_window": 129, "tie_word_embeddings": False,
                "layer_types": [F if i == 0 or not (i + 1) % 6 else S for i in range(48)],
                "mlp_layer_types": ["dense"] + ["sparse"] * 47}
# LagunaConfig()
LAGUNA_DEFAULT = {"model_type": "laguna", "vocab_size": 100352, "hidden_size": 2048, "intermediate_size": 8192,
                  "num_hidden_layers": 40, "num_attention_heads": 48, "num_key_value_heads": 8, "head_dim": 128,
                  "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512, "num_experts_per_tok": 8,
                  "num_experts": 256, "sliding_window": 512, "gating": True, "tie_word_embeddings": False}


def test_mimo_default_total_and_layers_equal_transformers():
    arch = Architecture.from_config(MIMO_DEFAULT)
    assert arch.total_params == 308_778_780_864
    # layer 0: full attention (4 KV heads), dense; 1-4 sliding (8 KV heads + sinks), MoE; 5 full, MoE
    assert arch.layer_params[:6] == [290_463_744, 6_537_879_872, 6_537_879_872, 6_537_879_872, 6_537_879_872,
                                     6_532_636_928]


def test_mimo_kv_cache_keys_v_by_v_head_dim():
    arch = Architecture.from_config(MIMO_DEFAULT)
    kv, _ = kv_cache_bytes(arch, Workload(context=4096, runtime="transformers"))
    # 9 full layers (0 and every 6th) × 4 heads + 39 sliding layers × 8 heads, each K 192 + V 128 wide; sliding layers keep
    # the last 128 tokens (DynamicSlidingWindowLayer: sliding_window − 1), 2 B each — worked by hand
    assert kv == (9 * 4 * 320 * 4096 + 39 * 8 * 320 * 128) * 2


# the tiny MiMo of `python bench/llama_cpp_ground_truth.py --only mimo_v2_flash` (2026-12-07), its config.json
# in the published spelling the converter reads
MIMO_TINY = {**MIMO_DEFAULT, "vocab_size": 49152, "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 4,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "v_head_dim": 32,
             "moe_intermediate_size": 64, "n_routed_experts": 8, "num_experts_per_tok": 2,
             "layer_types": [F, S, S, S], "mlp_layer_types": ["dense", "sparse", "sparse", "sparse"],
             "hybrid_layer_pattern": [0, 1, 1, 1], "swa_num_key_value_heads": 4, "swa_head_dim": 64,
             "swa_v_head_dim": 32, "swa_num_attention_heads": 4, "topk_method": "noaux_tc"}


def test_mimo_main_layers_equal_the_converted_file():
    # gguf.GGUFReader on the converted F16 file: 48 tensors, 54,985,872 bytes
    arch = Architecture.from_config(MIMO_TINY)
    names = {n: s for n, s, _ in arch.tensors()}
    assert len(names) == 48 and gguf_file_tensor_bytes(arch, "F16") == 54_985_872
    assert names["blk.0.attn_k.weight"] == (256, 128) and names["blk.0.attn_v.weight"] == (256, 64)
    assert names["blk.1.attn_k.weight"] == (256, 256) and names["blk.1.attn_v.weight"] == (256, 128)
    assert names["blk.1.attn_sinks.weight"] == (4,) and "blk.0.attn_sinks.weight" not in names


def test_mimo_llama_cpp_kv_pads_v_to_the_widest_layer():
    # llama-cpp-python 0.3.36 at n_ctx 4096, flash attention off: "padding V cache to 128", then
    # "size = 2.00 MiB (4096 cells, 1 layers …), K (f16): 1.00 MiB, V (f16): 1.00 MiB" (full layer) and
    # "size = 9.00 MiB (4096 cells, 3 layers …), K (f16): 6.00 MiB, V (f16): 3.00 MiB" (sliding layers)
    kv, _ = kv_cache_bytes(Architecture.from_config(MIMO_TINY), Workload(context=4096, runtime="llama.cpp"))
    assert kv == 11 * 2**20


def test_mimo_gguf_rows_are_refused_with_the_reason():
    # a transformers config lacks the keys the converter reads
    assert "hybrid_layer_pattern" in Architecture.from_config(MIMO_DEFAULT).gguf_unsupported
    # the published spelling converts, with 3 MTP layers transformers does not define (measured: block_count 7
    # for 4 layers; llama-quantize's ffn_down rule then counts 7 layers)
    assert "MTP" in Architecture.from_config(MIMO_TINY).gguf_unsupported


def test_laguna_default_total_and_layers_equal_transformers():
    arch = Architecture.from_config(LAGUNA_DEFAULT)
    assert arch.total_params == 33_189_975_808
    assert arch.layer_params[:2] == [79_794_432, 838_439_424]


def test_laguna_per_layer_heads_and_gates():
    cfg = {**LAGUNA_DEFAULT, "num_hidden_layers": 2, "num_attention_heads_per_layer": [48, 16],
           "gating": "per-element", "mlp_layer_types": ["dense", "sparse"]}
    names = {n: s for n, s, _ in Architecture.from_config(cfg).tensors()}
    assert names["blk.0.attn_q.weight"] == (2048, 48 * 128) and names["blk.1.attn_q.weight"] == (2048, 16 * 128)
    assert names["blk.1.attn_gate.weight"] == (2048, 16 * 128)
    per_head = {n: s for n, s, _ in Architecture.from_config({**cfg, "gating": True}).tensors()}
    assert per_head["blk.1.attn_gate.weight"] == (2048, 16)


def test_bad_fields_are_refused_naming_them():
    with pytest.raises(EstimatorError, match="num_attention_heads_per_layer"):
        Architecture.from_config({**LAGUNA_DEFAULT, "num_attention_heads_per_layer": [48]})
    with pytest.raises(EstimatorError, match="layer_types"):
        Architecture.from_config({**MIMO_DEFAULT, "layer_types": [F]})


# the tiny Laguna of `python bench/llama_cpp_ground_truth.py --only laguna laguna-full` (2026-12-07): converted
# by the vendored convert_hf_to_gguf.py (gguf.GGUFReader byte sums), quantized with llama_model_quantize,
# loaded by llama-cpp-python 0.3.36 at n_ctx 4096 ("llama_kv_cache: size = 2.00 MiB (4096 cells, 1 layers …)"
# for the full-attention layer, 6.00 MiB for the 3 sliding ones with swa_full; "is_swa = 0, 1, 1, 1" whatever
# layer_types said)
LAGUNA_TINY = {**LAGUNA_DEFAULT, "vocab_size": 49152, "hidden_size": 256, "intermediate_size": 512,
               "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
               "num_attention_heads_per_layer": [4, 8, 4, 4], "moe_intermediate_size": 64,
               "shared_expert_intermediate_size": 64, "num_experts": 8, "num_experts_per_tok": 2, "sliding_window": 256,
               "layer_types": [F, S, S, S], "mlp_layer_types": ["dense", "sparse", "sparse", "sparse"]}


def test_laguna_tiny_file_bytes_and_kv_equal_llama_cpp():
    arch = Architecture.from_config(LAGUNA_TINY)
    assert arch.gguf_unsupported == "" and len(arch.gguf_tensors()) == 66
    assert gguf_file_tensor_bytes(arch, "F16") == 55_653_472
    assert gguf_file_tensor_bytes(arch, "Q4_K_M") == 19_260_320
    kv, _ = kv_cache_bytes(arch, Workload(context=4096, runtime="llama.cpp"))
    assert kv == 4 * 2 * 2 * 64 * 4096 * 2 == 8 * 2**20


def test_laguna_gguf_rows_refused_where_llama_cpp_slides_other_layers():
    # the class default: full attention everywhere with a 512-token window, which llama.cpp slides anyway
    assert "layer_types" in Architecture.from_config(LAGUNA_DEFAULT).gguf_unsupported
    assert "layer_types" in Architecture.from_config({**LAGUNA_TINY, "layer_types": [S, F, S, F]}).gguf_unsupported
