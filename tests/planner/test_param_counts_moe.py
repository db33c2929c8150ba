"""DeepSeek-V2/V3 (MLA, leading dense layers, shared experts), Kimi K2 and Llama 4 (interleaved
MoE, shared expert): parameter counts equal what transformers builds from the same config.json.

The pin is transformers itself: each config is instantiated on the meta device (no memory is
allocated; DeepSeek-V3 takes about 2 s) and its tensors summed. The estimator's total is the
checkpoint total, i.e. `state_dict()`: for DeepSeek-V3 that includes the router's
`e_score_correction_bias`, a persistent buffer (in the safetensors, not in `parameters()`).
"""

from functools import cache

import pytest
import torch
from transformers import AutoModelForCausalLM, DeepseekV2Config, DeepseekV3Config, Llama4TextConfig

from planner.estimator import Architecture, EstimatorError
from tests.planner.published_configs import (DEEPSEEK_V2_LITE, DEEPSEEK_V3, KIMI_K2,
                                             LEGACY_DEEPSEEK_V2_LITE_GGUF, LLAMA4_MAVERICK,
                                             LLAMA4_SCOUT)

CONFIGS = {
    "deepseek-v3": (DEEPSEEK_V3, DeepseekV3Config),
    "deepseek-v2-lite": (DEEPSEEK_V2_LITE, DeepseekV2Config),
    "kimi-k2": (KIMI_K2, DeepseekV3Config),       # Kimi K2 ships DeepSeek-V3's modelling code
    "llama-4-scout": (LLAMA4_SCOUT, Llama4TextConfig),
    "llama-4-maverick": (LLAMA4_MAVERICK, Llama4TextConfig),
}

# Router bias elements per model: (MoE layers) × (routed experts); DeepSeek-V2 has none.
ROUTER_BIAS = {"deepseek-v3": (61 - 3) * 256, "kimi-k2": (61 - 1) * 384}


@cache
def transformers_counts(key: str) -> tuple[int, int]:
    """(sum over parameters(), sum over state_dict()) of the model transformers builds."""
    cfg, config_class = CONFIGS[key]
    fields = dict(cfg.get("text_config", cfg))
    fields.pop("model_type")
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config_class(**fields))
    return (sum(p.numel() for p in model.parameters()),
            sum(t.numel() for t in model.state_dict().values()))


def arch(key: str) -> Architecture:
    return Architecture.from_config(CONFIGS[key][0])


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_total_equals_transformers_checkpoint_tensors(key):
    params, checkpoint = transformers_counts(key)
    assert arch(key).total_params == checkpoint
    assert checkpoint - params == ROUTER_BIAS.get(key, 0)


def test_published_sizes():
    # transformers' counts, rounded as the model cards state them: DeepSeek-V3 "671B total",
    # Kimi K2 "1T total", Llama 4 Scout 109B with its vision encoder, Maverick "400B total".
    assert round(transformers_counts("deepseek-v3")[0] / 1e9) == 671
    assert round(transformers_counts("kimi-k2")[0] / 1e12) == 1
    assert round(transformers_counts("deepseek-v2-lite")[0] / 1e8) == 157  # "15.7B"
    assert round(transformers_counts("llama-4-maverick")[0] / 1e9) == 401  # 400,711,848,960


@pytest.mark.parametrize("key,idle", [
    # idle per token = MoE layers × (routed experts − top-k) × 3 matrices × hidden × expert width
    ("deepseek-v3", 58 * (256 - 8) * 3 * 7168 * 2048),
    ("deepseek-v2-lite", 26 * (64 - 6) * 3 * 2048 * 1408),
    ("kimi-k2", 60 * (384 - 8) * 3 * 7168 * 2048),
    ("llama-4-scout", 48 * (16 - 1) * 3 * 5120 * 8192),
    ("llama-4-maverick", 24 * (128 - 1) * 3 * 5120 * 8192),
])
def test_active_params_keep_shared_experts_dense_layers_and_top_k(key, idle):
    a = arch(key)
    assert a.total_params - a.active_params == idle


def test_active_params_match_model_cards():
    # Llama 4 model cards: "17B active parameters" (Scout 17,172,894,720; Maverick 17,184,691,200).
    # Kimi K2: "32 billion activated". DeepSeek-V3's "37B activated" leaves out the input
    # embedding (37,552,297,472 − 129,280 × 7168 = 36.6B), as its model card counts it.
    assert round(arch("llama-4-scout").active_params / 1e9) == 17
    assert round(arch("llama-4-maverick").active_params / 1e9) == 17
    assert int(arch("kimi-k2").active_params / 1e9) == 32
    assert round((arch("deepseek-v3").active_params - 129280 * 7168) / 1e9) == 37


def test_deepseek_v3_layers_and_mla_tensors_as_llama_cpp_writes_them():
    """Names and ggml shapes as convert_hf_to_gguf.py (DeepseekV2Model) wrote them for a tiny
    DeepSeek-V3 (checked tensor by tensor): kv_b_proj split into attn_k_b / attn_v_b per head."""
    shapes = {name: shape for name, shape, _ in arch("deepseek-v3").tensors()}
    for i in range(3):  # first_k_dense_replace = 3 dense layers
        assert shapes[f"blk.{i}.ffn_gate.weight"] == (7168, 18432)
        assert f"blk.{i}.ffn_gate_exps.weight" not in shapes
    assert shapes["blk.3.ffn_gate_exps.weight"] == (7168, 2048, 256)
    assert shapes["blk.3.ffn_gate_inp.weight"] == (7168, 256)
    assert shapes["blk.3.exp_probs_b.bias"] == (256,)
    assert shapes["blk.3.ffn_up_shexp.weight"] == (7168, 2048)
    assert shapes["blk.0.attn_q_a.weight"] == (7168, 1536)
    assert shapes["blk.0.attn_q_a_norm.weight"] == (1536,)
    assert shapes["blk.0.attn_q_b.weight"] == (1536, 128 * 192)
    assert shapes["blk.0.attn_kv_a_mqa.weight"] == (7168, 512 + 64)
    assert shapes["blk.0.attn_kv_a_norm.weight"] == (512,)
    assert shapes["blk.0.attn_k_b.weight"] == (128, 512, 128)
    assert shapes["blk.0.attn_v_b.weight"] == (512, 128, 128)
    assert shapes["blk.0.attn_output.weight"] == (128 * 128, 7168)
    assert "blk.60.attn_norm.weight" in shapes and "blk.61.attn_norm.weight" not in shapes  # no MTP
    assert not any("attn_k.weight" in n or "attn_v.weight" in n for n in shapes)


def test_deepseek_v2_lite_has_a_plain_q_projection_and_no_router_bias():
    shapes = {name: shape for name, shape, _ in arch("deepseek-v2-lite").tensors()}
    assert shapes["blk.0.attn_q.weight"] == (2048, 16 * 192)
    assert "blk.0.attn_q_a.weight" not in shapes
    assert shapes["blk.1.ffn_down_shexp.weight"] == (2 * 1408, 2048)  # n_shared_experts = 2
    assert not any("exp_probs_b" in n for n in shapes)


def test_deepseek_v3_mtp_layer_is_counted_apart():
    """One MTP layer (DeepSeek-V3 README_WEIGHTS.md, layer 61) by hand from config.json:
    attention q_a 7168·1536 + q_a norm 1536 + q_b 1536·128·192 + kv_a 7168·576 + kv_a norm 512
    + kv_b 512·128·(128+128) + o 128·128·7168; 2 layer norms; router 7168·256 + bias 256;
    256 routed + 1 shared expert of 3·7168·2048; then embed_tokens and shared_head.head
    (129280·7168 each), enorm, hnorm, shared_head.norm and eh_proj (2·7168 → 7168).
    The card's "671B main + 14B MTP = 685B" rounds 671.0 + 13.5 (the FP8 checkpoint adds its
    block scales on top, ~0.04B)."""
    attention = 7168 * 1536 + 1536 + 1536 * 128 * 192 + 7168 * 576 + 512 + 512 * 128 * 256 + 128 * 128 * 7168
    moe = 7168 * 256 + 256 + (256 + 1) * 3 * 7168 * 2048
    mtp = attention + 2 * 7168 + moe + 2 * 129280 * 7168 + 3 * 7168 + 2 * 7168 * 7168
    a = arch("deepseek-v3")
    assert a.mtp_params == mtp == 13_463_426_304
    assert a.total_params == transformers_counts("deepseek-v3")[1]  # the total leaves MTP out
    assert round((a.total_params + a.mtp_params) / 1e9, 1) == 684.5
    assert arch("kimi-k2").mtp_params == 0


def test_llama4_maverick_alternates_dense_and_moe_layers_with_a_shared_expert():
    shapes = {name: shape for name, shape, _ in arch("llama-4-maverick").tensors()}
    assert shapes["blk.0.ffn_gate.weight"] == (5120, 16384)       # intermediate_size_mlp
    assert "blk.0.ffn_gate_exps.weight" not in shapes
    assert shapes["blk.1.ffn_gate_exps.weight"] == (5120, 8192, 128)
    assert shapes["blk.1.ffn_gate_shexp.weight"] == (5120, 8192)  # one shared expert
    assert "blk.1.ffn_gate.weight" not in shapes


def test_deepseek_v3_from_gguf_metadata_matches_transformers():
    # Keys as convert_hf_to_gguf.py writes them for DeepSeek-V3 (head_count_kv 1, key_length the latent)
    meta = {
        "general.architecture": "deepseek2", "deepseek2.block_count": 61, "deepseek2.embedding_length": 7168,
        "deepseek2.feed_forward_length": 18432, "deepseek2.attention.head_count": 128,
        "deepseek2.attention.head_count_kv": 1, "deepseek2.attention.key_length": 576,
        "deepseek2.attention.value_length": 512, "deepseek2.attention.key_length_mla": 192,
        "deepseek2.attention.value_length_mla": 128, "deepseek2.attention.q_lora_rank": 1536,
        "deepseek2.attention.kv_lora_rank": 512, "deepseek2.rope.dimension_count": 64,
        "deepseek2.leading_dense_block_count": 3, "deepseek2.expert_count": 256,
        "deepseek2.expert_used_count": 8, "deepseek2.expert_feed_forward_length": 2048,
        "deepseek2.expert_shared_count": 1, "deepseek2.vocab_size": 129280, "deepseek2.context_length": 163840,
        "tensor_names": ["token_embd.weight", "output.weight", "blk.3.exp_probs_b.bias"],
    }
    a = Architecture.from_gguf_metadata(meta)
    assert a.total_params == transformers_counts("deepseek-v3")[1]
    assert a.total_params - a.active_params == 58 * (256 - 8) * 3 * 7168 * 2048


def test_llama4_scout_from_gguf_metadata_matches_transformers():
    meta = {
        "general.architecture": "llama4", "llama4.block_count": 48, "llama4.embedding_length": 5120,
        "llama4.feed_forward_length": 16384, "llama4.attention.head_count": 40,
        "llama4.attention.head_count_kv": 8, "llama4.attention.key_length": 128, "llama4.expert_count": 16,
        "llama4.expert_used_count": 1, "llama4.expert_feed_forward_length": 8192,
        "llama4.interleave_moe_layer_step": 1, "llama4.vocab_size": 202048,
        "tensor_names": ["token_embd.weight", "output.weight"],
    }
    assert Architecture.from_gguf_metadata(meta).total_params == transformers_counts("llama-4-scout")[1]


def test_legacy_deepseek_gguf_keeps_one_kv_b_tensor():
    # DeepSeek-V2-Lite converted before llama.cpp split kv_b: no key_length_mla / value_length_mla,
    # key_length / value_length per head, head_count_kv = n_head, one attn_kv_b per layer.
    meta = {**LEGACY_DEEPSEEK_V2_LITE_GGUF,
            "tensor_names": ["token_embd.weight", "output.weight", "blk.0.attn_kv_b.weight"]}
    a = Architecture.from_gguf_metadata(meta)
    assert a.total_params == transformers_counts("deepseek-v2-lite")[1]
    shapes = {name: shape for name, shape, _ in a.tensors()}
    assert shapes["blk.0.attn_kv_b.weight"] == (512, 16 * (128 + 128))
    assert "blk.0.attn_k_b.weight" not in shapes


def test_first_k_dense_replace_beyond_layers_is_refused():
    with pytest.raises(EstimatorError, match="first_k_dense_replace"):
        Architecture.from_config(dict(DEEPSEEK_V3, first_k_dense_replace=62))
