"""Hybrid / recurrent models (Qwen3-Next, Jamba, Falcon-H1, Nemotron-H, Granite 4, LFM2): parameter
counts and GGUF tensors equal what the real tools produce.

Pinned numbers, measured outside the estimator:
- totals: transformers 5.23.0 building each config of hybrid_configs.py on the meta device and
  summing `parameters()` (the test does not rebuild them: Qwen3-Next alone takes ~10 s);
- tensor names and shapes: convert_hf_to_gguf.py (llama-cpp-python 0.3.36's) on the tiny
  random-weight models of bench/hybrid_ground_truth.py, where the estimator matched transformers'
  count, every tensor, and the F16 / Q4_K_M tensor bytes of the converted / quantized files.
"""

import pytest

from planner.estimator import Architecture, EstimatorError
from planner.estimator.gguf_quant import gguf_weights_bytes
from tests.planner.hybrid_configs import (FALCON_H1_7B, GRANITE_4_H_SMALL, GRANITE_4_H_TINY, HYBRID_CONFIGS, JAMBA_V01,
                                          LFM2_1_2B, NEMOTRON_H_8B, QWEN3_NEXT_80B)

# transformers 5.23.0, meta device, sum(p.numel() for p in model.parameters())
TRANSFORMERS_TOTAL = {
    "qwen3-next-80b-a3b": 79_674_391_296,   # model card: "80B in total and 3B activated"
    "jamba-v0.1": 51_570_323_328,           # model card: "12B active parameters and a total of 52B"
    "falcon-h1-7b": 7_585_513_568,          # "Falcon-H1-7B"
    "nemotron-h-8b": 8_100_852_736,         # "Nemotron-H-8B"
    "granite-4.0-h-small": 32_207_337_984,  # model card: 32B total, 9B active
    "granite-4.0-h-tiny": 6_939_037_248,    # model card: "a 7B parameter" model, 1B active
    "lfm2-1.2b": 1_170_340_608,             # model card: 1,170,340,608 parameters
}


@pytest.mark.parametrize("key", sorted(HYBRID_CONFIGS))
def test_total_equals_transformers(key):
    assert Architecture.from_config(HYBRID_CONFIGS[key]).total_params == TRANSFORMERS_TOTAL[key]


@pytest.mark.parametrize("cfg,idle", [
    # idle per token = MoE layers × (experts − top-k) × 3 matrices × hidden × expert width
    (QWEN3_NEXT_80B, 48 * (512 - 10) * 3 * 2048 * 512),
    (JAMBA_V01, 16 * (16 - 2) * 3 * 4096 * 14336),   # MoE on every 2nd layer from 1
    (GRANITE_4_H_TINY, 40 * (64 - 6) * 3 * 1536 * 512),
])
def test_active_params_drop_only_the_unselected_experts(cfg, idle):
    a = Architecture.from_config(cfg)
    assert a.total_params - a.active_params == idle


def test_active_params_match_model_cards():
    # Qwen3-Next "A3B" and Granite-4.0-H-Tiny "1B active" leave out the embeddings and the head.
    qwen = Architecture.from_config(QWEN3_NEXT_80B)
    assert round((qwen.active_params - 2 * 151936 * 2048) / 1e9) == 3
    assert round(Architecture.from_config(JAMBA_V01).active_params / 1e9) == 12
    granite = Architecture.from_config(GRANITE_4_H_TINY)
    assert round((granite.active_params - 100352 * 1536) / 1e9) == 1


def test_granite_reads_its_layout_under_either_name_transformers_accepts():
    """configuration_granitemoehybrid.py maps layers_block_type to layer_types; with neither, every
    layer is Mamba-2. transformers 5.23 on the meta device: 32,207,337,984 parameters for both
    spellings, 32,448,713,728 for the all-Mamba-2 stack (no attention layer, so no KV cache)."""
    layout = GRANITE_4_H_SMALL["layer_types"]
    renamed = {k: v for k, v in GRANITE_4_H_SMALL.items() if k != "layer_types"}
    for cfg in (GRANITE_4_H_SMALL, {**renamed, "layers_block_type": layout}):
        a = Architecture.from_config(cfg)
        assert a.total_params == 32_207_337_984 and a.hybrid.attention_layers == (5, 15, 25, 35)
        assert round(a.active_params / 1e9) == 9   # the card: 9B active
    mamba_only = Architecture.from_config(renamed)
    assert mamba_only.total_params == 32_448_713_728 and mamba_only.kv_layers == 0


def test_layer_layouts():
    qwen = Architecture.from_config(QWEN3_NEXT_80B).hybrid
    assert qwen.attention_layers == tuple(range(3, 48, 4)) and len(qwen.recurrent_layers) == 36
    jamba = Architecture.from_config(JAMBA_V01)
    assert jamba.hybrid.attention_layers == (4, 12, 20, 28)
    assert [i for i in range(32) if jamba.is_moe_layer(i)] == list(range(1, 32, 2))
    nemotron = Architecture.from_config(NEMOTRON_H_8B).hybrid
    assert (nemotron.mixers.count("mamba2"), nemotron.mixers.count("attn"), nemotron.ffns.count("dense")) == (24, 4, 24)
    falcon = Architecture.from_config(FALCON_H1_7B)
    assert falcon.kv_layers == 44 and len(falcon.hybrid.recurrent_layers) == 44   # both in every layer
    lfm2 = Architecture.from_config(LFM2_1_2B)
    assert lfm2.kv_layers == 6 and lfm2.intermediate_size == 8192


def test_qwen3_next_tensors_as_the_converter_writes_them():
    """Shapes seen in a converted tiny Qwen3-Next, at the real model's widths: in_proj_qkvz split
    into attn_qkv + attn_gate, in_proj_ba as ssm_ba, the gated q_proj twice as wide."""
    shapes = {n: s for n, s, _ in Architecture.from_config(QWEN3_NEXT_80B).tensors()}
    assert shapes["blk.0.attn_qkv.weight"] == (2048, 2 * 16 * 128 + 32 * 128)
    assert shapes["blk.0.attn_gate.weight"] == (2048, 4096)
    assert shapes["blk.0.ssm_ba.weight"] == (2048, 64)
    assert shapes["blk.0.ssm_conv1d.weight"] == (4, 8192)
    assert shapes["blk.0.ssm_a"] == (32,) and shapes["blk.0.ssm_norm.weight"] == (128,)
    assert shapes["blk.3.attn_q.weight"] == (2048, 2 * 16 * 256)
    assert shapes["blk.3.attn_k.weight"] == (2048, 512)
    assert "blk.0.attn_q.weight" not in shapes and "blk.3.attn_qkv.weight" not in shapes
    assert shapes["blk.0.ffn_gate_inp_shexp.weight"] == (2048, 1)
    assert "blk.48.attn_norm.weight" not in shapes   # the MTP layer is counted apart


def test_mamba_tensors_as_the_converter_writes_them():
    nemotron = {n: s for n, s, _ in Architecture.from_config(NEMOTRON_H_8B).tensors()}
    assert nemotron["blk.0.ssm_in.weight"] == (4096, 2 * 8192 + 2 * 8 * 128 + 128)
    assert nemotron["blk.0.ssm_norm.weight"] == (1024, 8)
    assert nemotron["blk.1.ffn_up.weight"] == (4096, 21504) and "blk.1.ffn_gate.weight" not in nemotron  # relu²
    jamba = {n: s for n, s, _ in Architecture.from_config(JAMBA_V01).tensors()}
    assert jamba["blk.0.ssm_x.weight"] == (8192, 256 + 2 * 16)
    assert jamba["blk.0.ssm_a"] == (16, 8192)
    assert jamba["blk.1.ffn_gate_exps.weight"] == (4096, 14336, 16)
    falcon = {n: s for n, s, _ in Architecture.from_config(FALCON_H1_7B).tensors()}
    assert falcon["blk.0.ffn_norm"] == (3072,)   # no .weight suffix in the converter's tensor map
    assert "blk.0.ssm_norm.weight" not in falcon   # mamba_rms_norm false
    lfm2 = {n: s for n, s, _ in Architecture.from_config(LFM2_1_2B).tensors()}
    assert lfm2["blk.0.shortconv.conv.weight"] == (3, 2048) and "token_embd_norm.weight" in lfm2


# Measured on the tiny models of bench/hybrid_ground_truth.py: sum of tensor bytes in the GGUF
# that convert_hf_to_gguf.py --outtype f16 wrote and llama_model_quantize made Q4_K_M of it.
TINY = {
    "falcon-h1": ({"model_type": "falcon_h1", "vocab_size": 49152, "hidden_size": 256, "num_hidden_layers": 4,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "intermediate_size": 512,
                   "mamba_d_ssm": 512, "mamba_n_heads": 8, "mamba_d_head": 64, "mamba_n_groups": 1,
                   "mamba_d_state": 32, "mamba_d_conv": 4, "tie_word_embeddings": False},
                  29_185_632, 58_399_104, 19_793_280),
    "granite-4": ({"model_type": "granitemoehybrid", "vocab_size": 49152, "hidden_size": 256, "num_hidden_layers": 4,
                   "layer_types": ["mamba", "mamba", "attention", "mamba"], "num_attention_heads": 4,
                   "num_key_value_heads": 2, "intermediate_size": 512, "num_local_experts": 4, "num_experts_per_tok": 2,
                   "shared_intermediate_size": 256, "mamba_n_heads": 8, "mamba_d_head": 64, "mamba_d_state": 32,
                   "mamba_n_groups": 1, "mamba_d_conv": 4, "mamba_expand": 2, "tie_word_embeddings": False},
                  33_691_912, 67_417_120, 22_565_536),
    "qwen3-next": ({"model_type": "qwen3_next", "vocab_size": 49152, "hidden_size": 256, "num_hidden_layers": 4,
                    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "intermediate_size": 512,
                    "linear_conv_kernel_dim": 4, "linear_key_head_dim": 32, "linear_value_head_dim": 32,
                    "linear_num_key_heads": 2, "linear_num_value_heads": 4, "num_experts": 8,
                    "num_experts_per_tok": 2, "moe_intermediate_size": 64, "shared_expert_intermediate_size": 64,
                    "tie_word_embeddings": False, "mtp_num_hidden_layers": 0},   # converted with --no-mtp
                   27_611_640, 55_252_960, 19_162_464),   # (H, 1) shared-expert gate: 1-D to ggml, kept F32
    "lfm2": ({"model_type": "lfm2", "vocab_size": 49152, "hidden_size": 256, "num_hidden_layers": 4,
              "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 768, "conv_L_cache": 3,
              "layer_types": ["conv", "full_attention", "conv", "full_attention"], "tie_word_embeddings": False},
             27_660_288, 55_328_768, 18_893_056),
}


@pytest.mark.parametrize("key", sorted(TINY))
def test_tiny_models_match_transformers_and_the_gguf_files(key):
    cfg, params, f16_bytes, q4_bytes = TINY[key]
    a = Architecture.from_config(cfg)
    assert a.total_params == params
    assert gguf_weights_bytes(a, "F16") == f16_bytes
    assert gguf_weights_bytes(a, "Q4_K_M") == q4_bytes


def test_qwen3_next_mtp_layer_is_counted_apart():
    """One MTP layer (mtp.*, which transformers does not build): a full-attention MoE layer plus
    fc (2·hidden → hidden) and three norms; its embedding and head are the main model's.
    The converter keeps it in the GGUF (blk.48.*) unless --no-mtp; llama.cpp skips it on load."""
    a = Architecture.from_config(QWEN3_NEXT_80B)
    attention = 2048 * 8192 + 2 * 2048 * 512 + 4096 * 2048 + 2 * 256 + 2 * 2048
    moe = 2048 * 512 + 512 * 3 * 2048 * 512 + 2048 + 3 * 2048 * 512
    assert a.mtp_params == attention + moe + 2 * 2048 * 2048 + 3 * 2048
    assert a.mtp_in_gguf
    assert round((a.total_params + a.mtp_params) / 1e8) == 813  # the checkpoint's 81.3B
    assert Architecture.from_config(dict(QWEN3_NEXT_80B, mtp_num_hidden_layers=0)).mtp_params == 0


def test_from_gguf_metadata_matches_the_config():
    # keys as convert_hf_to_gguf.py writes them (seen in the converted tiny files)
    qwen = {"general.architecture": "qwen3next", "qwen3next.block_count": 48, "qwen3next.embedding_length": 2048,
            "qwen3next.feed_forward_length": 5120, "qwen3next.attention.head_count": 16,
            "qwen3next.attention.head_count_kv": 2, "qwen3next.attention.key_length": 256,
            "qwen3next.expert_count": 512, "qwen3next.expert_used_count": 10,
            "qwen3next.expert_feed_forward_length": 512, "qwen3next.expert_shared_feed_forward_length": 512,
            "qwen3next.ssm.conv_kernel": 4, "qwen3next.ssm.state_size": 128, "qwen3next.ssm.group_count": 16,
            "qwen3next.ssm.time_step_rank": 32, "qwen3next.ssm.inner_size": 4096,
            "qwen3next.full_attention_interval": 4, "qwen3next.vocab_size": 151936,
            "tensor_names": ["token_embd.weight", "output.weight"]}
    assert Architecture.from_gguf_metadata(qwen).total_params == TRANSFORMERS_TOTAL["qwen3-next-80b-a3b"]
    # converted with its MTP layer: block_count 49 and nextn_predict_layers 1 (conversion/qwen.py)
    with_mtp = Architecture.from_gguf_metadata({**qwen, "qwen3next.block_count": 49, "qwen3next.nextn_predict_layers": 1})
    assert with_mtp.n_layers == 48 and with_mtp.total_params == TRANSFORMERS_TOTAL["qwen3-next-80b-a3b"]
    assert with_mtp.mtp_params == Architecture.from_config(QWEN3_NEXT_80B).mtp_params
    granite = {"general.architecture": "granitehybrid", "granitehybrid.block_count": 40,
               "granitehybrid.embedding_length": 1536, "granitehybrid.feed_forward_length": 512,
               "granitehybrid.attention.head_count": 12,
               "granitehybrid.attention.head_count_kv": [4 if i in (5, 15, 25, 35) else 0 for i in range(40)],
               "granitehybrid.expert_count": 64, "granitehybrid.expert_used_count": 6,
               "granitehybrid.expert_shared_feed_forward_length": 1024, "granitehybrid.ssm.conv_kernel": 4,
               "granitehybrid.ssm.state_size": 128, "granitehybrid.ssm.group_count": 1,
               "granitehybrid.ssm.inner_size": 3072, "granitehybrid.ssm.time_step_rank": 48,
               "granitehybrid.vocab_size": 100352, "tensor_names": ["token_embd.weight", "blk.0.ssm_conv1d.bias"]}
    a = Architecture.from_gguf_metadata(granite)
    assert a.total_params == TRANSFORMERS_TOTAL["granite-4.0-h-tiny"] and a.kv_layers == 4 and a.n_kv_heads == 4


def test_unknown_layer_kinds_are_refused():
    with pytest.raises(EstimatorError, match="hybrid_override_pattern"):
        Architecture.from_config(dict(NEMOTRON_H_8B, hybrid_override_pattern="M" * 51 + "X"))
    with pytest.raises(EstimatorError, match="layer_types"):
        Architecture.from_config(dict(GRANITE_4_H_TINY, layer_types=["mamba"] * 39 + ["retention"]))


def test_nemotron_h_never_ties_its_head():
    # transformers' NemotronH has no tied weights (_tied_weights_keys = {}): with tie_word_embeddings
    # true, a 3-layer model at the 8B's widths still counted 556,345,728 parameters, head included,
    # and the converter wrote output.weight (bench/hybrid_ground_truth.py --dims)
    tied = Architecture.from_config(dict(NEMOTRON_H_8B, tie_word_embeddings=True))
    assert tied.total_params == TRANSFORMERS_TOTAL["nemotron-h-8b"]
