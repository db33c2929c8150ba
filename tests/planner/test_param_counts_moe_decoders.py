"""ERNIE 4.5 MoE, GLM-4.5, GLM-5 and DeepSeek-V3.2 (planner/estimator/moe_decoders.py): parameter
totals pinned from transformers, tensor lists and KV sizes pinned from converted tiny models.

Totals were measured with transformers 5.23 on the meta device (planner.model_definition: every
parameter and persistent buffer, what the checkpoint stores). Tensor names/shapes and KV sizes
were measured by bench/moe_decoders_ground_truth.py: tiny random-weight models converted to F16 GGUF
by the vendored convert_hf_to_gguf.py (names and ggml shapes read with gguf.GGUFReader) and loaded
by llama-cpp-python 0.3.36 at n_ctx 4096 ("llama_kv_cache: size = …" lines).
"""

from __future__ import annotations

import pytest

from planner.estimator import Architecture, EstimatorError, Workload
from planner.estimator.memory import kv_cache_bytes
from tests.planner.architecture_sweep import default_config

MiB = 2**20

# baidu/ERNIE-4.5-21B-A3B-PT: the config class's defaults (its docstring checkpoint)
ERNIE_21B = {
    "model_type": "ernie4_5_moe", "vocab_size": 103424, "hidden_size": 2560, "intermediate_size": 12288,
    "num_hidden_layers": 28, "num_attention_heads": 20, "num_key_value_heads": 4, "max_position_embeddings": 131072,
    "tie_word_embeddings": True, "use_bias": False, "moe_intermediate_size": 1536, "moe_k": 6, "moe_num_experts": 64,
    "moe_num_shared_experts": 2, "moe_layer_start_index": 1, "moe_layer_end_index": -1, "moe_layer_interval": 1,
}
# baidu/ERNIE-4.5-300B-A47B-PT as quoted by third-party test fixtures (tie_word_embeddings unconfirmed: both)
ERNIE_300B = {
    "model_type": "ernie4_5_moe", "vocab_size": 103424, "hidden_size": 8192, "intermediate_size": 28672,
    "num_hidden_layers": 54, "num_attention_heads": 64, "num_key_value_heads": 8, "max_position_embeddings": 131072,
    "moe_num_experts": 64, "moe_num_shared_experts": 0, "moe_layer_start_index": 3, "moe_layer_end_index": 53,
    "moe_intermediate_size": 3584, "moe_k": 8, "moe_layer_interval": 1,
}
# zai-org/GLM-5 config.json (GLM-5.1 has the same shape fields)
GLM_5 = {
    "model_type": "glm_moe_dsa", "vocab_size": 154880, "hidden_size": 6144, "intermediate_size": 12288,
    "moe_intermediate_size": 2048, "num_hidden_layers": 78, "num_nextn_predict_layers": 1, "num_attention_heads": 64,
    "num_key_value_heads": 64, "n_shared_experts": 1, "n_routed_experts": 256, "num_experts_per_tok": 8,
    "first_k_dense_replace": 3, "kv_lora_rank": 512, "q_lora_rank": 2048, "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 192, "v_head_dim": 256, "head_dim": 64, "index_head_dim": 128, "index_n_heads": 32,
    "index_topk": 2048, "attention_bias": False, "max_position_embeddings": 202752, "tie_word_embeddings": False,
}
# zai-org/GLM-5.2 config.json: index_topk_freq 4 / index_skip_topk_offset 3, written out as indexer_types
GLM_5_2 = {
    **GLM_5, "head_dim": 192, "max_position_embeddings": 1048576,
    "mlp_layer_types": ["dense"] * 3 + ["sparse"] * 75,
    "indexer_types": ["full"] * 3 + (["shared"] * 3 + ["full"]) * 18 + ["shared"] * 3,
}
# deepseek-ai/DeepSeek-V3.2 config.json
DEEPSEEK_V3_2 = {
    "model_type": "deepseek_v32", "vocab_size": 129280, "hidden_size": 7168, "intermediate_size": 18432,
    "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_nextn_predict_layers": 1, "num_attention_heads": 128,
    "num_key_value_heads": 128, "n_shared_experts": 1, "n_routed_experts": 256, "num_experts_per_tok": 8,
    "n_group": 8, "topk_group": 4, "first_k_dense_replace": 3, "kv_lora_rank": 512, "q_lora_rank": 1536,
    "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128, "index_head_dim": 128, "index_n_heads": 64,
    "index_topk": 2048, "attention_bias": False, "max_position_embeddings": 163840, "tie_word_embeddings": False,
}


@pytest.mark.parametrize("cfg, total", [
    (ERNIE_21B, 21_825_437_888),
    (ERNIE_300B, 298_636_913_856),                              # tied (the class default)
    ({**ERNIE_300B, "tie_word_embeddings": False}, 299_484_163_264),
    (GLM_5, 743_911_218_432),
    (GLM_5_2, 743_377_019_904),
    (DEEPSEEK_V3_2, 671_877_944_064),
], ids=["ernie-4.5-21b", "ernie-4.5-300b-tied", "ernie-4.5-300b-untied", "glm-5", "glm-5.2", "deepseek-v3.2"])
def test_published_totals_match_transformers(cfg, total):
    assert Architecture.from_config(cfg).total_params == total


@pytest.mark.parametrize("model_type, total", [
    ("ernie4_5_moe", 21_825_437_888),
    ("glm4_moe", 103_481_206_400),   # 96 heads over 4096: transformers floors head_dim to 42
    ("glm_moe_dsa", 743_911_218_432),
    ("deepseek_v32", 671_877_944_064),
])
def test_class_default_totals_match_transformers(model_type, total):
    assert Architecture.from_config(default_config(model_type)).total_params == total


# The bench's tiny configs as their config.json holds them (shape fields; the class fills the rest)
TINY_ERNIE = {
    "model_type": "ernie4_5_moe", "vocab_size": 49152, "hidden_size": 256, "intermediate_size": 512,
    "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "moe_intermediate_size": 128,
    "moe_k": 2, "moe_num_experts": 8, "moe_num_shared_experts": 2, "moe_layer_start_index": 1,
    "moe_layer_end_index": 3, "moe_layer_interval": 1, "use_bias": False, "tie_word_embeddings": False,
    "max_position_embeddings": 4096,
}
_TINY_MLA = {
    "vocab_size": 49152, "hidden_size": 256, "intermediate_size": 512, "moe_intermediate_size": 64,
    "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4, "n_shared_experts": 1,
    "n_routed_experts": 8, "num_experts_per_tok": 2, "first_k_dense_replace": 1, "kv_lora_rank": 64,
    "q_lora_rank": 96, "qk_nope_head_dim": 32, "qk_rope_head_dim": 16, "v_head_dim": 32, "head_dim": 16,
    "index_n_heads": 4, "index_head_dim": 32, "index_topk": 64, "mlp_layer_types": ["dense"] + ["sparse"] * 3,
    "attention_bias": False, "tie_word_embeddings": False, "max_position_embeddings": 4096,
    "num_nextn_predict_layers": 0,   # converted with --no-mtp
}
TINY_DEEPSEEK_V3_2 = {**_TINY_MLA, "model_type": "deepseek_v32"}
TINY_GLM_5 = {**_TINY_MLA, "model_type": "glm_moe_dsa"}
TINY_GLM_5_2 = {**TINY_GLM_5, "indexer_types": ["full", "full", "shared", "full"]}

_MLA_MOE_LAYER = [
    ("attn_norm.weight", (256,)), ("attn_q_a.weight", (256, 96)), ("attn_q_a_norm.weight", (96,)),
    ("attn_q_b.weight", (96, 192)), ("attn_kv_a_mqa.weight", (256, 80)), ("attn_kv_a_norm.weight", (64,)),
    ("attn_k_b.weight", (32, 64, 4)), ("attn_v_b.weight", (64, 32, 4)), ("attn_output.weight", (128, 256)),
    ("ffn_norm.weight", (256,)), ("ffn_gate_inp.weight", (256, 8)), ("exp_probs_b.bias", (8,)),
    ("ffn_gate_exps.weight", (256, 64, 8)), ("ffn_up_exps.weight", (256, 64, 8)), ("ffn_down_exps.weight", (64, 256, 8)),
    ("ffn_gate_shexp.weight", (256, 64)), ("ffn_up_shexp.weight", (256, 64)), ("ffn_down_shexp.weight", (64, 256)),
]
_INDEXER = [
    ("indexer.attn_q_b.weight", (96, 128)), ("indexer.attn_k.weight", (256, 32)), ("indexer.k_norm.weight", (32,)),
    ("indexer.k_norm.bias", (32,)), ("indexer.proj.weight", (256, 4)),
]
# measured from the converted files (gguf.GGUFReader: name, ggml shape)
CONVERTED_LAYERS = {
    "ernie4.5-moe blk.0 (dense)": (TINY_ERNIE, 0, [
        ("attn_norm.weight", (256,)), ("attn_q.weight", (256, 256)), ("attn_k.weight", (256, 128)),
        ("attn_v.weight", (256, 128)), ("attn_output.weight", (256, 256)), ("ffn_norm.weight", (256,)),
        ("ffn_gate.weight", (256, 512)), ("ffn_up.weight", (256, 512)), ("ffn_down.weight", (512, 256))]),
    "ernie4.5-moe blk.1 (MoE)": (TINY_ERNIE, 1, [
        ("attn_norm.weight", (256,)), ("attn_q.weight", (256, 256)), ("attn_k.weight", (256, 128)),
        ("attn_v.weight", (256, 128)), ("attn_output.weight", (256, 256)), ("ffn_norm.weight", (256,)),
        ("ffn_gate_inp.weight", (256, 8)), ("exp_probs_b.bias", (8, 1)), ("ffn_gate_exps.weight", (256, 128, 8)),
        ("ffn_up_exps.weight", (256, 128, 8)), ("ffn_down_exps.weight", (128, 256, 8)),
        ("ffn_gate_shexp.weight", (256, 256)), ("ffn_up_shexp.weight", (256, 256)),
        ("ffn_down_shexp.weight", (256, 256))]),
    "deepseek-v3.2 blk.1": (TINY_DEEPSEEK_V3_2, 1, _MLA_MOE_LAYER + _INDEXER),
    "glm-5.2 blk.1 (full indexer)": (TINY_GLM_5_2, 1, _MLA_MOE_LAYER + _INDEXER),
    "glm-5.2 blk.2 (shared indexer)": (TINY_GLM_5_2, 2, _MLA_MOE_LAYER),
}


@pytest.mark.parametrize("key", list(CONVERTED_LAYERS))
def test_layer_tensors_match_the_converted_gguf(key):
    cfg, layer, expected = CONVERTED_LAYERS[key]
    p = f"blk.{layer}."
    mine = {(name, shape) for name, shape, _ in Architecture.from_config(cfg).tensors() if name.startswith(p)}
    assert mine == {(p + name, shape) for name, shape in expected}


@pytest.mark.parametrize("cfg, total", [
    (TINY_ERNIE, 29_303_064), (TINY_DEEPSEEK_V3_2, 27_432_088), (TINY_GLM_5, 27_432_088), (TINY_GLM_5_2, 27_410_520),
], ids=["ernie4.5-moe", "deepseek-v3.2", "glm-5", "glm-5.2"])
def test_tiny_totals_match_transformers(cfg, total):
    assert Architecture.from_config(cfg).total_params == total


@pytest.mark.parametrize("cfg, mib", [
    (TINY_ERNIE, 8.00),              # K 4.00 + V 4.00 MiB, 4 layers
    (TINY_GLM_5, 2.50 + 1.00),       # MLA latent K 2.50 MiB + indexer keys 1.00 MiB (4 layers)
    (TINY_GLM_5_2, 2.50 + 0.75),     # indexer keys on the 3 "full" layers only
    (TINY_DEEPSEEK_V3_2, 2.50 + 1.00),   # converted with expert_gating_func added (see below)
], ids=["ernie4.5-moe", "glm-5", "glm-5.2", "deepseek-v3.2"])
def test_llama_cpp_kv_matches_the_log(cfg, mib):
    arch = Architecture.from_config(cfg)
    assert kv_cache_bytes(arch, Workload(runtime="llama.cpp", context=4096))[0] == mib * MiB


def test_deepseek_v3_2_gguf_is_unsupported_by_the_vendored_pair():
    """The vendored converter writes no deepseek32.expert_gating_func; llama-cpp-python 0.3.36
    refuses the file ("key not found in model: deepseek32.expert_gating_func")."""
    assert "expert_gating_func" in Architecture.from_config(DEEPSEEK_V3_2).gguf_unsupported
    assert Architecture.from_config(GLM_5).gguf_unsupported == ""


def test_ernie_shared_expert_width_llama_cpp_cannot_load():
    """The converter writes the shared width as intermediate_size // num_key_value_heads; a tiny
    model where that (128) is not the checkpoint's 2 × 128 failed to load ("tensor
    'blk.1.ffn_gate_shexp.weight' has wrong shape"); ERNIE-4.5-21B's 12288 // 4 = 2 × 1536 loads."""
    assert Architecture.from_config(ERNIE_21B).gguf_unsupported == ""
    bad = {**TINY_ERNIE, "num_key_value_heads": 4}
    assert "shared expert width" in Architecture.from_config(bad).gguf_unsupported


def test_ernie_moe_range_ending_early_is_unsupported_in_llama_cpp():
    arch = Architecture.from_config({**TINY_ERNIE, "moe_layer_end_index": 2})
    assert arch.dense_layers == (0, 3)
    assert "moe_layer_end_index" in arch.gguf_unsupported


def test_dsa_mtp_layer_is_in_the_gguf():
    """convert_hf_to_gguf.py keeps DeepSeek-V3.2's / GLM-5's MTP block (skip_mtp = False)."""
    arch = Architecture.from_config(GLM_5)
    assert arch.n_layers_all == 79
    assert any(name.startswith("blk.78.nextn.") for name, _, _ in arch.gguf_tensors())


@pytest.mark.parametrize("arch", ["ernie4_5-moe", "deepseek32", "glm-dsa"])
def test_gguf_metadata_of_these_architectures_is_refused(arch):
    with pytest.raises(EstimatorError) as err:
        Architecture.from_gguf_metadata({"general.architecture": arch})
    assert err.value.field == "general.architecture"
