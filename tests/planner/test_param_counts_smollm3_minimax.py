"""SmolLM3 and MiniMax-M2 (llama.cpp archs smollm3 and minimax-m2): parameter totals pinned from
transformers, tensor lists and KV sizes pinned from converted tiny models.

Totals were measured with transformers 5.23 on the meta device (planner.model_definition: every
parameter and persistent buffer, what the checkpoint stores; MiniMax-M2's router
e_score_correction_bias is a buffer). Tensor names/shapes and KV sizes were measured by
bench/smollm3_minimax_ground_truth.py: tiny random-weight models converted to F16 GGUF by the
vendored convert_hf_to_gguf.py (names and ggml shapes read with gguf.GGUFReader) and loaded by
llama-cpp-python 0.3.36 at n_ctx 4096 ("llama_kv_cache: size = …" lines).
"""

from __future__ import annotations

import pytest

from planner.estimator import Architecture, Workload
from planner.estimator.memory import kv_cache_bytes
from planner.preset_configs import MINIMAX_M25, SMOLLM3_3B
from tests.planner.architecture_sweep import default_config

MiB = 2**20

# the tiny models of bench/smollm3_minimax_ground_truth.py, as their saved config.json has them
_TINY_SMOLLM3 = {
    "model_type": "smollm3", "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 4,
    "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 49152, "max_position_embeddings": 4096,
    "tie_word_embeddings": True, "no_rope_layers": [1, 1, 1, 0], "use_sliding_window": False, "sliding_window": None,
    "layer_types": ["full_attention"] * 4,
}
TINY = {
    "smollm3": _TINY_SMOLLM3,
    # the window sits on the NoPE layer; llama.cpp's smollm3 has no SWA, so its cache is full there too
    "smollm3-swa": {**_TINY_SMOLLM3, "tie_word_embeddings": False, "use_sliding_window": True, "sliding_window": 512,
                    "layer_types": ["full_attention"] * 3 + ["sliding_attention"]},
    "minimax-m2": {
        "model_type": "minimax_m2", "hidden_size": 256, "intermediate_size": 128, "num_hidden_layers": 3,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "num_local_experts": 8,
        "num_experts_per_tok": 2, "rotary_dim": 32, "vocab_size": 49152, "max_position_embeddings": 4096,
        "tie_word_embeddings": False},
}


@pytest.mark.parametrize("model_type, total", [
    ("smollm3", 3_075_098_624),
    ("minimax_m2", 228_689_764_864),
])
def test_class_default_totals_match_transformers(model_type, total):
    assert Architecture.from_config(default_config(model_type)).total_params == total


@pytest.mark.parametrize("cfg, total", [
    (SMOLLM3_3B, 3_075_098_624),
    (MINIMAX_M25, 228_689_764_864),
], ids=["smollm3-3b", "minimax-m2.5"])
def test_published_totals_match_transformers(cfg, total):
    assert Architecture.from_config(cfg).total_params == total


@pytest.mark.parametrize("name, total", [
    ("smollm3", 14_944_512), ("smollm3-swa", 27_527_424), ("minimax-m2", 28_124_056),
])
def test_tiny_totals_match_transformers(name, total):
    assert Architecture.from_config(TINY[name]).total_params == total


# blk.1.* of the converted tiny models (ggml order, ne0 first)
SMOLLM3_LAYER = {
    "blk.1.attn_norm.weight": (256,), "blk.1.attn_q.weight": (256, 256), "blk.1.attn_k.weight": (256, 128),
    "blk.1.attn_v.weight": (256, 128), "blk.1.attn_output.weight": (256, 256), "blk.1.ffn_norm.weight": (256,),
    "blk.1.ffn_gate.weight": (256, 512), "blk.1.ffn_up.weight": (256, 512), "blk.1.ffn_down.weight": (512, 256),
}
MINIMAX_M2_LAYER = {
    "blk.1.attn_norm.weight": (256,), "blk.1.attn_q.weight": (256, 256), "blk.1.attn_k.weight": (256, 128),
    "blk.1.attn_v.weight": (256, 128), "blk.1.attn_output.weight": (256, 256),
    "blk.1.attn_q_norm.weight": (256,), "blk.1.attn_k_norm.weight": (128,),   # whole q / k projection width
    "blk.1.ffn_norm.weight": (256,), "blk.1.ffn_gate_inp.weight": (256, 8), "blk.1.exp_probs_b.bias": (8,),
    "blk.1.ffn_gate_exps.weight": (256, 128, 8), "blk.1.ffn_up_exps.weight": (256, 128, 8),
    "blk.1.ffn_down_exps.weight": (128, 256, 8),
}
# the tensors outside the blocks: tied SmolLM3 has no output.weight
GLOBAL = {"smollm3": {"token_embd.weight", "output_norm.weight"},
          "minimax-m2": {"token_embd.weight", "output_norm.weight", "output.weight"}}


@pytest.mark.parametrize("name, layer, count", [
    ("smollm3", SMOLLM3_LAYER, 38), ("minimax-m2", MINIMAX_M2_LAYER, 42),
])
def test_tensors_are_the_converted_ones(name, layer, count):
    tensors = Architecture.from_config(TINY[name]).tensors()
    assert len(tensors) == count
    assert {n: s for n, s, _ in tensors if n.startswith("blk.1.")} == layer
    assert {n for n, _, _ in tensors if not n.startswith("blk.")} == GLOBAL[name]


@pytest.mark.parametrize("name, mib", [
    ("smollm3", 8.00), ("smollm3-swa", 8.00), ("minimax-m2", 6.00),
])
def test_kv_cache_is_what_llama_cpp_allocates(name, mib):
    arch = Architecture.from_config(TINY[name])
    assert kv_cache_bytes(arch, Workload(runtime="llama.cpp", context=4096))[0] == mib * MiB


def test_minimax_m2_gguf_metadata_reads_the_same_block():
    """The converted tiny MiniMax-M2's metadata (minimax-m2.* keys as the file holds them)."""
    meta = {"general.architecture": "minimax-m2", "minimax-m2.block_count": 3, "minimax-m2.context_length": 4096,
            "minimax-m2.embedding_length": 256, "minimax-m2.feed_forward_length": 128,
            "minimax-m2.attention.head_count": 4, "minimax-m2.attention.head_count_kv": 2,
            "minimax-m2.attention.key_length": 64, "minimax-m2.expert_count": 8, "minimax-m2.expert_used_count": 2,
            "minimax-m2.expert_feed_forward_length": 128, "minimax-m2.vocab_size": 49152,
            "tie_word_embeddings": False}
    from_gguf = Architecture.from_gguf_metadata(meta).tensors()
    assert {n: s for n, s, _ in from_gguf if n.startswith("blk.1.")} == MINIMAX_M2_LAYER
    assert sum(n for *_, n in from_gguf) == 28_124_056


def test_minimax_m25_active_parameters_are_the_readme_ones():
    # MiniMax-M2 README: "10 billion active parameters"; like the gpt-oss card, without the embedding table
    arch = Architecture.from_config(MINIMAX_M25)
    assert round((arch.active_params - arch.embedding_params) / 10**9) == 10
