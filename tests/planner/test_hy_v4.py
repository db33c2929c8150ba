"""HY V4 (hy_v4, planner/estimator/hy_v4.py) pinned to transformers and llama.cpp.

Totals and per-layer counts: transformers 5.23 HYV4ForCausalLM built on the meta device from HYV4Config's
defaults (parameters and persistent buffers), 2026-12-07. File bytes and KV: the tiny model of
`python bench/llama_cpp_ground_truth.py --only hy_v4` (2026-12-07), converted by the vendored
convert_hf_to_gguf.py, quantized with llama_model_quantize and loaded by llama-cpp-python 0.3.36.
"""

import pytest

from planner.estimator import Architecture, EstimatorError
from planner.estimator.gguf_quant import gguf_file_plan, gguf_file_tensor_bytes
from planner.estimator.memory import kv_cache_bytes
from planner.estimator.workload import Workload

DEFAULT = {"model_type": "hy_v4"}   # HYV4Config(): every field from the class
# the bench's tiny HY V4: the default shrunk, per-layer lists cycled to 4 layers
TINY = {"model_type": "hy_v4", "vocab_size": 49152, "hidden_size": 256, "intermediate_size": 512,
        "moe_intermediate_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "n_routed_experts": 8,
        "num_experts_per_tok": 2, "q_lora_rank": 96, "kv_lora_rank": 64, "qk_nope_head_dim": 32,
        "qk_rope_head_dim": 16, "v_head_dim": 32, "max_position_embeddings": 4096,
        "indexer_types": ["full", "full", "shared", "shared"],
        "mlp_layer_types": ["dense", "sparse", "sparse", "sparse"]}


def test_default_total_and_layers_equal_transformers():
    arch = Architecture.from_config(DEFAULT)
    assert arch.total_params == 58_278_201_581
    # layer 0: dense MLP + indexer; 1: MoE + indexer ("full"); 2-4: MoE, "shared" (no indexer); 5: "full" again
    assert arch.layer_params[:6] == [134_139_700, 1_743_900_724, 1_740_349_236, 1_740_349_236, 1_740_349_236,
                                     1_743_900_724]


def test_tied_and_own_indexer_layout_equal_transformers():
    # transformers 5.23 on the meta device: 3,958,700,449 parameters, layers 134,139,700 / 1,740,349,236 /
    # 1,743,900,724 (the indexer on layer 2, none on layer 1; lm_head tied to the embedding)
    arch = Architecture.from_config({**DEFAULT, "tie_word_embeddings": True, "num_hidden_layers": 3,
                                     "indexer_types": ["full", "shared", "full"]})
    assert arch.total_params == 3_958_700_449
    assert arch.layer_params == [134_139_700, 1_740_349_236, 1_743_900_724]


def test_hyper_connection_and_gate_shapes():
    names = {n: s for n, s, _ in Architecture.from_config(DEFAULT).tensors()}
    # HYV4HyperConnection.fn (2·4 × 4·2816) and HYV4HyperHead.hc_fn (4 × 4·2816), ggml order
    assert names["blk.0.hc_attn_fn.weight"] == (11264, 8) and names["blk.0.hc_ffn_scale.weight"] == (2,)
    assert names["output_hc_fn.weight"] == (11264, 4) and names["output_hc_scale.weight"] == (1,)
    assert names["blk.0.attn_gate.weight"] == (2816, 32 * 256) and names["blk.0.attn_sinks.weight"] == (32,)
    assert "blk.1.indexer.proj.weight" in names and "blk.2.indexer.proj.weight" not in names


def test_tiny_names_bytes_equal_the_converted_files():
    # gguf.GGUFReader on the converted files: 115 tensors; F16 56,203,252 B (the hyper-connection matrices and
    # indexer.proj written F32 by the converter), Q4_K_M 19,325,172 B
    arch = Architecture.from_config(TINY)
    assert arch.gguf_unsupported == "" and len(arch.gguf_tensors()) == 115
    assert gguf_file_tensor_bytes(arch, "F16") == 56_203_252
    assert gguf_file_tensor_bytes(arch, "Q4_K_M") == 19_325_172
    f16 = {name: t for name, t, _ in gguf_file_plan(arch, "F16")}
    assert f16["blk.3.hc_ffn_fn.weight"] == f16["output_hc_fn.weight"] == f16["blk.0.indexer.proj.weight"] == "F32"


def test_tiny_llama_cpp_kv_is_the_latent_plus_the_full_layers_indexer_keys():
    # llama-cpp-python 0.3.36 at n_ctx 4096: "llama_kv_cache: size = 2.50 MiB (4096 cells, 4 layers …), K (f16):
    # 2.50 MiB" (the MLA latent) and the indexer cache "size = 2.00 MiB (4096 cells, 2 layers …)", layers 2 and
    # 3 ("shared") logged as "filtered"
    kv, _ = kv_cache_bytes(Architecture.from_config(TINY), Workload(context=4096, runtime="llama.cpp"))
    assert kv == int((2.50 + 2.00) * 2**20)


def test_tiny_transformers_cache_keeps_latent_and_indexer_keys():
    # transformers 5.23 DynamicCache after a 300-token forward of the tiny model (bf16): per layer keys
    # (1, 1, 300, 64) and values (1, 1, 300, 16); indexer_keys (1, 300, 128) on layers 0 and 1 only: 345,600 B
    kv, _ = kv_cache_bytes(Architecture.from_config(TINY), Workload(context=300, runtime="transformers"))
    assert kv == 345_600


@pytest.mark.parametrize("extra, reason", [
    ({"tie_word_embeddings": True}, "output.weight"),
    ({"mlp_layer_types": ["sparse", "dense", "sparse", "sparse"]}, "leading"),
    ({"indexer_types": ["shared", "full", "shared", "shared"]}, "layer 0"),
    ({"index_head_dim": 16}, "index_head_dim"),
    ({"attention_bias": True}, "bias"),
    ({"n_shared_experts": 0}, "shared expert"),
])
def test_gguf_rows_refused_where_llama_cpp_cannot_convert_or_load(extra, reason):
    arch = Architecture.from_config({**TINY, **extra})
    assert reason in arch.gguf_unsupported


def test_bad_fields_are_refused_naming_them():
    with pytest.raises(EstimatorError, match="indexer_types"):
        Architecture.from_config({**TINY, "indexer_types": ["full", "full"]})
    with pytest.raises(EstimatorError, match="mlp_layer_types"):
        Architecture.from_config({**TINY, "mlp_layer_types": ["dense", "moe", "sparse", "sparse"]})
    with pytest.raises(EstimatorError, match="hc_mult"):
        Architecture.from_config({**TINY, "hc_mult": 0})
