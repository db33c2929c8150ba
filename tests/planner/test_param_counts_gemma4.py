"""Gemma 4 text (gemma4_text, planner/estimator/gemma4.py) pinned to transformers and llama.cpp.

Totals: transformers 5.23 Gemma4ForCausalLM built on the meta device, sum of its state_dict (the
checkpoint's tensors, `layer_scalar` included, a tied head once). Tensor lists and KV sizes: the tiny
models of bench/gemma4_ground_truth.py converted by convert_hf_to_gguf.py (gguf.GGUFReader shapes)
and loaded by llama-cpp-python 0.3.36 at n_ctx 4096 ("llama_kv_cache: size = … MiB" lines, summed).
"""

from planner.estimator import Architecture
from planner.estimator.errors import EstimatorError
from planner.estimator.memory import kv_cache_bytes
from planner.estimator.workload import Workload

import pytest

MiB = 2**20
S, F = "sliding_attention", "full_attention"


def _every_sixth(n: int) -> list[str]:
    return [F if (i + 1) % 6 == 0 else S for i in range(n)]


_SHARED = {"model_type": "gemma4_text", "attention_bias": False, "attention_k_eq_v": True, "global_head_dim": 512,
           "head_dim": 256, "hidden_size_per_layer_input": 0, "num_kv_shared_layers": 0, "sliding_window": 1024,
           "tie_word_embeddings": True, "use_double_wide_mlp": False, "vocab_size": 262144,
           "vocab_size_per_layer_input": 262144, "max_position_embeddings": 262144}
# text_config of google/gemma-4-26B-A4B and google/gemma-4-31B-it (config.json as published)
GEMMA_4_26B_A4B = {**_SHARED, "enable_moe_block": True, "hidden_size": 2816, "intermediate_size": 2112,
                   "layer_types": _every_sixth(30), "moe_intermediate_size": 704, "num_attention_heads": 16,
                   "num_experts": 128, "num_global_key_value_heads": 2, "num_hidden_layers": 30,
                   "num_key_value_heads": 8, "top_k_experts": 8}
GEMMA_4_31B = {**_SHARED, "enable_moe_block": False, "hidden_size": 5376, "intermediate_size": 21504,
               "layer_types": _every_sixth(60), "num_attention_heads": 32, "num_experts": None,
               "num_global_key_value_heads": 4, "num_hidden_layers": 60, "num_key_value_heads": 16,
               "top_k_experts": None}
TINY_PLE = {"model_type": "gemma4_text", "hidden_size": 64, "num_hidden_layers": 8, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": 16, "global_head_dim": 32, "intermediate_size": 96,
            "layer_types": [S, S, S, F, S, S, S, F], "num_kv_shared_layers": 4, "hidden_size_per_layer_input": 16,
            "vocab_size_per_layer_input": 49152, "use_double_wide_mlp": True, "sliding_window": 64,
            "tie_word_embeddings": True, "vocab_size": 49152}
TINY_MOE = {"model_type": "gemma4_text", "hidden_size": 64, "num_hidden_layers": 6, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": 16, "global_head_dim": 32, "num_global_key_value_heads": 1,
            "attention_k_eq_v": True, "intermediate_size": 96, "enable_moe_block": True, "num_experts": 4,
            "top_k_experts": 2, "moe_intermediate_size": 32, "hidden_size_per_layer_input": 0,
            "sliding_window": 64, "tie_word_embeddings": True, "vocab_size": 49152}


def test_default_config_total():
    assert Architecture.from_config({"model_type": "gemma4_text"} | _default()).total_params == 5_077_177_886


def _default() -> dict:
    # Gemma4TextConfig() defaults, as config.to_dict() spells them (per_layer_config from global_head_dim 512)
    return {"vocab_size": 262144, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 30,
            "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "layer_types": _every_sixth(30),
            "sliding_window": 512, "per_layer_config": {f"{i:02d}": {"head_dim": 512} for i in range(5, 30, 6)}}


def test_published_totals():
    assert Architecture.from_config(GEMMA_4_26B_A4B).total_params == 25_233_141_790
    assert Architecture.from_config(GEMMA_4_31B).total_params == 30_697_345_340


def test_tiny_ple_tensors_of_a_full_kv_shared_layer():
    arch = Architecture.from_config(TINY_PLE)
    assert arch.total_params == 9_788_232
    got = {n: s for n, s, _ in arch.tensors() if n.startswith("blk.7.")}
    assert got == {
        "blk.7.attn_norm.weight": (64,), "blk.7.layer_output_scale.weight": (1,),
        "blk.7.ffn_down.weight": (192, 64), "blk.7.ffn_gate.weight": (64, 192), "blk.7.ffn_up.weight": (64, 192),
        "blk.7.inp_gate.weight": (64, 16), "blk.7.proj.weight": (16, 64), "blk.7.post_attention_norm.weight": (64,),
        "blk.7.post_ffw_norm.weight": (64,), "blk.7.post_norm.weight": (64,), "blk.7.ffn_norm.weight": (64,),
        "blk.7.attn_output.weight": (128, 64), "blk.7.attn_q_norm.weight": (32,), "blk.7.attn_q.weight": (64, 128)}
    top = {n: s for n, s, _ in arch.tensors() if not n.startswith("blk.")}
    assert top == {"rope_freqs.weight": (16,), "token_embd.weight": (64, 49152),
                   "per_layer_token_embd.weight": (128, 49152), "output_norm.weight": (64,),
                   "per_layer_model_proj.weight": (64, 128), "per_layer_proj_norm.weight": (16,)}


def test_tiny_moe_tensors_of_a_full_k_eq_v_layer():
    arch = Architecture.from_config(TINY_MOE)
    assert arch.total_params == 3_488_574
    got = {n: s for n, s, _ in arch.tensors() if n.startswith("blk.5.")}
    assert got == {
        "blk.5.ffn_down_exps.weight": (32, 64, 4), "blk.5.ffn_gate_up_exps.weight": (64, 64, 4),
        "blk.5.attn_norm.weight": (64,), "blk.5.layer_output_scale.weight": (1,), "blk.5.ffn_down.weight": (96, 64),
        "blk.5.ffn_gate.weight": (64, 96), "blk.5.ffn_up.weight": (64, 96), "blk.5.post_attention_norm.weight": (64,),
        "blk.5.post_ffw_norm.weight": (64,), "blk.5.post_ffw_norm_1.weight": (64,),
        "blk.5.post_ffw_norm_2.weight": (64,), "blk.5.ffn_norm.weight": (64,), "blk.5.pre_ffw_norm_2.weight": (64,),
        "blk.5.ffn_down_exps.scale": (4,), "blk.5.ffn_gate_inp.weight": (64, 4), "blk.5.ffn_gate_inp.scale": (64,),
        "blk.5.attn_k_norm.weight": (32,), "blk.5.attn_k.weight": (64, 32), "blk.5.attn_output.weight": (128, 64),
        "blk.5.attn_q_norm.weight": (32,), "blk.5.attn_q.weight": (64, 128)}


@pytest.mark.parametrize("cfg, mib", [(TINY_PLE, 1.00 + 1.50), (TINY_MOE, 0.50 + 2.50)])
def test_tiny_kv_cache_as_llama_cpp_allocates_it(cfg, mib):
    kv, _ = kv_cache_bytes(Architecture.from_config(cfg), Workload(runtime="llama.cpp", context=4096))
    assert kv == mib * MiB


def test_multimodal_wrapper_is_refused():
    with pytest.raises(EstimatorError):
        Architecture.from_config({"model_type": "gemma4", "text_config": GEMMA_4_31B, "vision_config": {}})
