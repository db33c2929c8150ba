"""Gemma 3n text (gemma3n_text, planner/estimator/gemma3n.py) pinned to transformers and llama.cpp.

Totals and per-layer counts: transformers 5.23 Gemma3nForCausalLM built on the meta device from
Gemma3nTextConfig() (2026-12-07). Tensor list, file bytes and KV size: the tiny model of
`python bench/llama_cpp_ground_truth.py --only gemma3n_text` (2026-12-07: 21 layers, the last KV-shared,
the layout llama.cpp 0.3.36 takes as given), converted by the vendored convert_hf_to_gguf.py,
quantized with llama_model_quantize and loaded by llama-cpp-python 0.3.36 at n_ctx 4096.
"""

import pytest

from planner.estimator import Architecture, EstimatorError
from planner.estimator.gguf_quant import gguf_file_tensor_bytes
from planner.estimator.memory import kv_cache_bytes
from planner.estimator.workload import Workload

S, F = "sliding_attention", "full_attention"
# Gemma3nTextConfig() as config.to_dict() spells it: the fields the count reads
DEFAULT = {"model_type": "gemma3n_text", "vocab_size": 262400, "hidden_size": 2048, "intermediate_size": [16384] * 35,
           "num_hidden_layers": 35, "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 256,
           "sliding_window": 512, "layer_types": [F if (i + 1) % 5 == 0 else S for i in range(35)],
           "vocab_size_per_layer_input": 262144, "hidden_size_per_layer_input": 256, "altup_num_inputs": 4,
           "num_kv_shared_layers": 15, "laurel_rank": 64, "tie_word_embeddings": True}
# the bench's tiny instance (its saved config.json)
TINY = {"model_type": "gemma3n_text", "vocab_size": 49152, "hidden_size": 256, "intermediate_size": [512] * 21,
        "num_hidden_layers": 21, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
        "sliding_window": 256, "layer_types": [F if (i + 1) % 5 == 0 else S for i in range(21)],
        "vocab_size_per_layer_input": 49000, "hidden_size_per_layer_input": 256, "altup_num_inputs": 4,
        "num_kv_shared_layers": 1, "laurel_rank": 64, "tie_word_embeddings": True}


def test_default_config_total_and_layers_equal_transformers():
    arch = Architecture.from_config(DEFAULT)
    assert arch.total_params == 6_835_235_568
    # layers 0-19 own their K/V; 20-34 reuse them (no k_proj, v_proj, k_norm in transformers' build)
    assert arch.layer_params[0] == 112_484_944 and arch.layer_params[34] == 110_387_536
    assert arch.gguf_unsupported == ""


def test_gguf_keeps_the_shared_layers_kv_and_pads_the_per_layer_embedding():
    arch = Architecture.from_config(TINY)
    names = {n: s for n, s, _ in arch.gguf_tensors()}
    assert names["blk.20.attn_k.weight"] == (256, 128) and names["blk.20.attn_k_norm.weight"] == (64,)
    assert names["per_layer_token_embd.weight"] == (21 * 256, 49152)   # 49,000 rows padded to the vocabulary
    assert names["altup_proj.weight"] == (256, 256, 3) and names["blk.0.altup_predict_coef.weight"] == (4, 16)
    # the GGUF-only parts are not in the model's parameters
    in_file = sum(n for _, _, n in arch.gguf_tensors())
    assert arch.total_params == in_file - 152 * 21 * 256 - (2 * 256 * 128 + 64)


def test_tiny_file_bytes_equal_the_converted_files():
    arch = Architecture.from_config(TINY)
    assert arch.gguf_unsupported == "" and len(arch.gguf_tensors()) == 511
    assert gguf_file_tensor_bytes(arch, "F16") == 589_075_520
    # llama-quantize keeps altup*, laurel* and per_layer_model_proj as written (F16; the AltUp coefficients
    # F32) and gives the tied per-layer embedding the tied token embedding's Q6_K
    assert gguf_file_tensor_bytes(arch, "Q4_K_M") == 241_169_984


def test_tiny_kv_cache_equals_llama_cpp_log():
    arch = Architecture.from_config(TINY)
    kv, _ = kv_cache_bytes(arch, Workload(context=4096, runtime="llama.cpp"))
    # llama.cpp's log: "layer 20: does not have KV cache", "llama_kv_cache: size = 8.00 MiB (4096 cells,
    # 4 layers …)" (full attention) and "size = 32.00 MiB (4096 cells, 16 layers …)" (sliding, swa_full):
    # 20 layers × (K + V) 2 heads × 64 × 4096 cells × 2 B
    assert kv == 20 * 2 * 2 * 64 * 4096 * 2 == 40 * 2**20


@pytest.mark.parametrize("change, reason", [
    ({"hidden_size_per_layer_input": 32}, "per-layer inputs as 256"),
    ({"laurel_rank": 16}, "LAuReL rank as 64"),
    ({"num_kv_shared_layers": 2}, "first 20 layers"),
    ({"tie_word_embeddings": False}, "untied"),
])
def test_gguf_rows_refused_where_llama_cpp_takes_another_layout(change, reason):
    assert reason in Architecture.from_config({**TINY, **change}).gguf_unsupported


def test_bad_layout_is_refused_naming_the_field():
    with pytest.raises(EstimatorError, match="num_kv_shared_layers"):
        Architecture.from_config({**TINY, "num_kv_shared_layers": 21})
    with pytest.raises(EstimatorError, match="intermediate_size"):
        Architecture.from_config({**TINY, "intermediate_size": [512] * 3})
