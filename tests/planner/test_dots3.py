"""dots3 note's text model (dots3_note_text, planner/estimator/dots3.py) pinned to transformers and llama.cpp.

Totals and per-layer counts: transformers 5.23 Dots3NoteForCausalLM built on the meta device from
Dots3NoteTextConfig's defaults (parameters and persistent buffers), 2026-12-07. The tiny model's files and
buffers: `python bench/llama_cpp_ground_truth.py --only dots3_note_text` (2026-12-07): converted by the
vendored convert_hf_to_gguf.py from the checkpoint's spelling of its config.json, quantized with
llama_model_quantize, loaded by llama-cpp-python 0.3.36 at n_ctx 4096.
"""

import pytest

from planner.estimator import Architecture, EstimatorError
from planner.estimator.gguf_quant import gguf_file_tensor_bytes
from planner.estimator.memory import kv_cache_bytes
from planner.estimator.workload import Workload

I, S = "indexed_attention", "sliding_attention"
# Dots3NoteTextConfig() as config.to_dict() spells it: the fields the count reads; per_layer_config holds
# what the sliding layers change (64 heads, kv_lora_rank 1024, qk_nope_head_dim 192)
SLIDING = {"num_attention_heads": 64, "num_key_value_heads": 64, "kv_lora_rank": 1024, "qk_nope_head_dim": 192}
TYPES = [I if i < 2 or i % 4 == 1 else S for i in range(46)]
DEFAULT = {"model_type": "dots3_note_text", "vocab_size": 152064, "hidden_size": 5120, "intermediate_size": 13824,
           "moe_intermediate_size": 1536, "num_hidden_layers": 46, "num_attention_heads": 128,
           "num_key_value_heads": 128, "n_shared_experts": 1, "n_routed_experts": 256, "kv_lora_rank": 512,
           "q_lora_rank": 1024, "qk_rope_head_dim": 64, "v_head_dim": 128, "qk_nope_head_dim": 128,
           "num_experts_per_tok": 8, "head_dim": 256, "index_head_dim": 128, "index_n_heads": 64,
           "shared_experts_intermediate_size": 1536, "sliding_window": 512, "tie_word_embeddings": False,
           "layer_types": TYPES, "mlp_layer_types": ["dense"] + ["sparse"] * 45,
           "per_layer_config": {f"{i:02d}": SLIDING for i, t in enumerate(TYPES) if t == S}}


def test_default_total_and_layers_equal_transformers():
    arch = Architecture.from_config(DEFAULT)
    assert arch.total_params == 279_551_729_536
    # layer 0: indexed attention, dense MLP; 1: indexed, MoE; 2: sliding (its own widths, no indexer), MoE
    assert arch.layer_params[:3] == [356_396_864, 6_208_761_920, 6_155_546_944]


def test_the_published_spelling_reads_as_transformers_normalizes_it():
    # no per_layer_config: the swa_* keys (class defaults where absent) and the dense lead from
    # first_k_dense_replace, as Dots3NoteTextConfig.__post_init__ builds them
    published = {k: v for k, v in DEFAULT.items() if k not in ("per_layer_config", "layer_types", "mlp_layer_types")}
    arch = Architecture.from_config({**published, "first_k_dense_replace": 1, "swa_num_attention_heads": 64,
                                     "swa_kv_lora_rank": 1024, "sliding_window_size": 512})
    assert arch.total_params == 279_551_729_536 and arch.swa_layers == tuple(i for i, t in enumerate(TYPES) if t == S)


def test_kv_cache_per_layer_kind_and_runtime():
    arch = Architecture.from_config(DEFAULT)
    # transformers: 13 indexed layers keep 512 + 64 latent and 128 indexer keys per token, the 33 sliding ones
    # 1024 + 64 latent for the last 511 tokens (DynamicSlidingWindowLayer: sliding_window - 1), 2 B — worked by hand
    kv, _ = kv_cache_bytes(arch, Workload(context=4096, runtime="transformers"))
    assert kv == (13 * (576 + 128) * 4096 + 33 * 1088 * 511) * 2 == 111_667_072
    # llama.cpp with swa_full (llama-cpp-python's default): every cache at 4,096 cells
    kv, _ = kv_cache_bytes(arch, Workload(context=4096, runtime="llama.cpp"))
    assert kv == (13 * (576 + 128) + 33 * 1088) * 4096 * 2 == 369_098_752


# the tiny model of the bench as transformers saves its config (the estimator's reading): indexed, indexed,
# sliding, sliding; the sliding layers 8 heads, kv_lora 96, nope 48, V 48
TINY = {"model_type": "dots3_note_text", "vocab_size": 49152, "hidden_size": 256, "intermediate_size": 512,
        "moe_intermediate_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4,
        "n_routed_experts": 8, "num_experts_per_tok": 2, "kv_lora_rank": 64, "q_lora_rank": 96, "qk_rope_head_dim": 16,
        "qk_nope_head_dim": 32, "v_head_dim": 32, "head_dim": 64, "index_n_heads": 4, "index_head_dim": 64,
        "shared_experts_intermediate_size": 64, "sliding_window": 256, "layer_types": [I, I, S, S],
        "mlp_layer_types": ["dense", "sparse", "sparse", "sparse"],
        "per_layer_config": {str(i): {"num_attention_heads": 8, "num_key_value_heads": 8, "kv_lora_rank": 96,
                                      "qk_nope_head_dim": 48, "head_dim": 64, "v_head_dim": 48} for i in (2, 3)}}


def test_tiny_tensors_and_file_bytes_equal_the_converted_files():
    # gguf.GGUFReader: 88 tensors; F16 55,542,880 and Q4_K_M 19,265,376 bytes of tensor data
    arch = Architecture.from_config(TINY)
    names = {n: s for n, s, _ in arch.tensors()}
    assert len(names) == 88
    assert gguf_file_tensor_bytes(arch, "F16") == 55_542_880
    assert gguf_file_tensor_bytes(arch, "Q4_K_M") == 19_265_376
    assert names["blk.0.attn_k_b.weight"] == (32, 64, 4) and names["blk.2.attn_k_b.weight"] == (48, 96, 8)
    assert names["blk.2.attn_v_b.weight"] == (96, 48, 8) and names["blk.2.attn_gate.weight"] == (256, 8)
    assert names["blk.1.indexer.attn_q_b.weight"] == (96, 4 * 64) and "blk.2.indexer.proj.weight" not in names


def test_tiny_kv_equals_llama_cpp_log():
    # "llama_kv_cache: size = 1.25 MiB (4096 cells, 2 layers …)" (DSA main cache, 64 + 16 per cell),
    # "1.00 MiB (4096 cells, 2 layers …)" (indexer keys, 64), "1.75 MiB (4096 cells, 2 layers …)" (SWA cache,
    # 96 + 16); with swa_full=False the SWA cache has 768 cells: "0.33 MiB (768 cells, 2 layers …)"
    arch = Architecture.from_config(TINY)
    kv, _ = kv_cache_bytes(arch, Workload(context=4096, runtime="llama.cpp"))
    assert kv == (1.25 + 1.00 + 1.75) * 2**20
    kv, _ = kv_cache_bytes(arch, Workload(context=4096, runtime="llama.cpp", swa_full=False))
    assert kv == 2 * 80 * 4096 * 2 + 2 * 64 * 4096 * 2 + 2 * 112 * 768 * 2 == 2_703_360


def test_gguf_rows_are_refused_with_the_measured_reason():
    # measured: the tiny model's config.json with model_type dots3_note_text (swa_* keys included) fails in
    # the converter with KeyError 'swa_qk_nope_head_dim'; only the dots3_note spelling converts
    for cfg in (DEFAULT, TINY):
        assert "swa_qk_nope_head_dim" in Architecture.from_config(cfg).gguf_unsupported
    # measured: index_head_dim 32 and 96 convert but llama.cpp 0.3.36 aborts (GGML_ASSERT(ggml_can_mul_mat(a, b)));
    # 64 (the tiny model above) and 128 load
    assert "index_head_dim 32" in Architecture.from_config({**TINY, "index_head_dim": 32}).gguf_unsupported
    assert "attention biases" in Architecture.from_config({**TINY, "attention_bias": True}).gguf_unsupported
    late_dense = {**TINY, "mlp_layer_types": ["sparse", "dense", "sparse", "sparse"]}
    assert "leading" in Architecture.from_config(late_dense).gguf_unsupported
    no_dsa = {k: v for k, v in TINY.items() if k != "per_layer_config"} | {"use_dsa": False}
    arch = Architecture.from_config(no_dsa)
    assert "use_dsa" in arch.gguf_unsupported and not any("indexer" in n for n, _, _ in arch.tensors())


def test_bad_fields_are_refused_naming_them():
    with pytest.raises(EstimatorError, match="num_key_value_heads"):
        Architecture.from_config({**TINY, "num_key_value_heads": 2})
    with pytest.raises(EstimatorError, match="q_lora_rank"):
        Architecture.from_config({**TINY, "q_lora_rank": None})
    with pytest.raises(EstimatorError, match="layer_types"):
        Architecture.from_config({**TINY, "layer_types": [I]})
    with pytest.raises(EstimatorError, match="per_layer_config"):
        Architecture.from_config({**TINY, "per_layer_config": {"2": {"hidden_size": 128}}})
    with pytest.raises(EstimatorError, match="per_layer_config"):
        Architecture.from_config({**TINY, "per_layer_config": {"9": {"kv_lora_rank": 8}}})
    # the multimodal wrapper stays refused: its vision and audio towers are not counted
    with pytest.raises(EstimatorError, match="model_type"):
        Architecture.from_config({"model_type": "dots3_note", "text_config": TINY})
