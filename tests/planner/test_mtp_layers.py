"""MTP (NextN) layers that convert_hf_to_gguf.py keeps in the GGUF (GLM-4.5, Qwen3-Next) and
llama.cpp skips on load: in the file's tensor bytes, not in the model buffer.

Pinned numbers measured by bench/mtp_ground_truth.py (llama-cpp-python 0.3.36's converter and
llama_model_quantize, GGUFReader, a verbose load): tiny random-weight models with synthetic MTP
tensors under the real checkpoints' names. There every tensor name, shape and per-tensor type of
the F16 and Q4_K_M files matched the estimator, and so did the loaded model buffer.
"""

import pytest

from planner.estimator import Architecture
from planner.estimator.gguf_quant import gguf_file_tensor_bytes, gguf_weights_bytes
from planner.preset_configs import GLM45_AIR

GLM_TINY = {"model_type": "glm4_moe", "vocab_size": 49152, "hidden_size": 256, "num_hidden_layers": 4,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "intermediate_size": 512,
            "moe_intermediate_size": 64, "n_routed_experts": 8, "n_shared_experts": 1, "num_experts_per_tok": 2,
            "first_k_dense_replace": 1, "n_group": 1, "topk_group": 1, "attention_bias": True,
            "num_nextn_predict_layers": 1, "use_qk_norm": False, "tie_word_embeddings": False}
QWEN_TINY = {"model_type": "qwen3_next", "vocab_size": 49152, "hidden_size": 256, "num_hidden_layers": 4,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "intermediate_size": 512,
             "linear_conv_kernel_dim": 4, "linear_key_head_dim": 32, "linear_value_head_dim": 32,
             "linear_num_key_heads": 2, "linear_num_value_heads": 4, "num_experts": 8, "num_experts_per_tok": 2,
             "moe_intermediate_size": 64, "shared_expert_intermediate_size": 64, "full_attention_interval": 4,
             "tie_word_embeddings": False}

# (config, checkpoint tensors without MTP, GGUF tensors, {ftype: (file tensor bytes, MTP block bytes)})
MEASURED = {
    "glm-4.5": (GLM_TINY, 27_683_096, 89, {"F16": (107_274_368, 51_887_136), "Q4_K_M": (33_845_376, 14_719_008)}),
    "qwen3-next": (QWEN_TINY, 27_611_640, 93, {"F16": (56_938_976, 1_686_016), "Q4_K_M": (19_706_720, 599_552)}),
}


@pytest.mark.parametrize("key", sorted(MEASURED))
def test_file_holds_the_mtp_block_and_the_model_buffer_does_not(key):
    cfg, params, n_tensors, sizes = MEASURED[key]
    a = Architecture.from_config(cfg)
    assert a.total_params == params and a.n_layers_all == 5
    assert len(a.gguf_tensors()) == n_tensors
    for ftype, (file_bytes, mtp_bytes) in sizes.items():
        assert gguf_file_tensor_bytes(a, ftype) == file_bytes
        assert gguf_weights_bytes(a, ftype) == file_bytes - mtp_bytes


def test_mtp_tensor_names_are_llama_cpps():
    names = {n for n, _, _ in Architecture.from_config(GLM_TINY).gguf_tensors() if n.startswith("blk.4.")}
    assert {"blk.4.nextn.eh_proj.weight", "blk.4.nextn.embed_tokens.weight", "blk.4.nextn.enorm.weight",
            "blk.4.nextn.hnorm.weight", "blk.4.nextn.shared_head_head.weight", "blk.4.nextn.shared_head_norm.weight",
            "blk.4.ffn_gate_exps.weight", "blk.4.exp_probs_b.bias", "blk.4.post_attention_norm.weight"} <= names
    qwen = {n for n, _, _ in Architecture.from_config(QWEN_TINY).gguf_tensors() if n.startswith("blk.4.")}
    assert "blk.4.attn_q.weight" in qwen and "blk.4.nextn.embed_tokens.weight" not in qwen


def test_glm_45_air_reads_its_mtp_layer():
    a = Architecture.from_config(GLM45_AIR)
    assert a.n_nextn_layers == 1 and a.mtp_in_gguf and a.n_layers_all == 47
    assert gguf_file_tensor_bytes(a, "Q4_K_M") > gguf_weights_bytes(a, "Q4_K_M")


def test_estimate_rows_carry_the_file_size_with_the_mtp_block():
    from planner.estimator import HARDWARE_PROFILES, Workload, estimate

    a = Architecture.from_config(GLM45_AIR)
    row = estimate(a, HARDWARE_PROFILES["h200"], Workload(), ["Q4_K_M"]).rows[0]
    assert row.gguf_file_tensor_bytes == gguf_file_tensor_bytes(a, "Q4_K_M") > row.weights_bytes
    assert "MTP block(s) that llama.cpp skips at load" in row.formulas["weights_bytes"]
