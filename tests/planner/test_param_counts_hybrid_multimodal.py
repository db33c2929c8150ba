"""Newer hybrid decoders (Qwen3.5 / 3.5-MoE with their vision tower, Bamba): parameter counts,
GGUF tensors and llama.cpp's KV / recurrent buffers equal what the real tools produce.

Pinned numbers, measured outside the estimator:
- totals: transformers 5.23.0 building each config on the meta device (planner/model_definition.py:
  parameters plus persistent buffers), text and vision apart; the published configs are Qwen's
  config.json files (Qwen/Qwen3.5-27B, -35B-A3B, -122B-A10B, -397B-A17B);
- tensor names and shapes, KV and recurrent sizes: the tiny random-weight models of
  bench/hybrid_multimodal_ground_truth.py converted by convert_hf_to_gguf.py (llama-cpp-python
  0.3.36's, --no-mtp for Qwen3.5) and loaded by llama-cpp-python at n_ctx 4096, one sequence.
"""

import pytest

from planner.estimator import Architecture, EstimatorError, Workload
from planner.estimator.memory import kv_cache_bytes, recurrent_bytes

MiB = 2**20


def _qwen3_5_text(**fields):
    layers = fields["num_hidden_layers"]
    return {"model_type": "qwen3_5_text", "attention_bias": False, "full_attention_interval": 4, "head_dim": 256,
            "layer_types": ["full_attention" if i % 4 == 3 else "linear_attention" for i in range(layers)],
            "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_num_key_heads": 16,
            "linear_value_head_dim": 128, "max_position_embeddings": 262144, "mlp_only_layers": [],
            "mtp_num_hidden_layers": 1, "vocab_size": 248320, **fields}


def _qwen3_5(outer, out_hidden, text):
    vision = {"deepstack_visual_indexes": [], "depth": 27, "hidden_act": "gelu_pytorch_tanh", "hidden_size": 1152,
              "in_channels": 3, "intermediate_size": 4304, "model_type": outer, "num_heads": 16,
              "num_position_embeddings": 2304, "out_hidden_size": out_hidden, "patch_size": 16,
              "spatial_merge_size": 2, "temporal_patch_size": 2}
    return {"model_type": outer, "tie_word_embeddings": False, "text_config": text, "vision_config": vision}


_MOE = dict(model_type="qwen3_5_moe_text", num_experts_per_tok=8)
PUBLISHED = {
    "Qwen3.5-27B": _qwen3_5("qwen3_5", 5120, _qwen3_5_text(
        hidden_size=5120, intermediate_size=17408, linear_num_value_heads=48, num_attention_heads=24,
        num_hidden_layers=64, num_key_value_heads=4)),
    "Qwen3.5-35B-A3B": _qwen3_5("qwen3_5_moe", 2048, _qwen3_5_text(
        **_MOE, hidden_size=2048, linear_num_value_heads=32, moe_intermediate_size=512, num_attention_heads=16,
        num_experts=256, num_hidden_layers=40, num_key_value_heads=2, shared_expert_intermediate_size=512)),
    "Qwen3.5-122B-A10B": _qwen3_5("qwen3_5_moe", 3072, _qwen3_5_text(
        **_MOE, hidden_size=3072, linear_num_value_heads=64, moe_intermediate_size=1024, num_attention_heads=32,
        num_experts=256, num_hidden_layers=48, num_key_value_heads=2, shared_expert_intermediate_size=1024)),
    "Qwen3.5-397B-A17B": _qwen3_5("qwen3_5_moe", 4096, _qwen3_5_text(
        **dict(_MOE, num_experts_per_tok=10), hidden_size=4096, linear_num_value_heads=64, moe_intermediate_size=1024,
        num_attention_heads=32, num_experts=512, num_hidden_layers=60, num_key_value_heads=2,
        shared_expert_intermediate_size=1024)),
}
# transformers 5.23.0, meta device: (text decoder, vision tower + merger)
PUBLISHED_TOTALS = {
    "Qwen3.5-27B": (26_895_998_464, 460_730_096),
    "Qwen3.5-35B-A3B": (34_660_610_688, 446_571_248),
    "Qwen3.5-122B-A10B": (122_111_526_912, 451_290_864),
    "Qwen3.5-397B-A17B": (396_346_350_336, 456_010_480),
}
# transformers 5.23.0, meta device, each config class's defaults: (text decoder, vision tower + merger)
DEFAULT_TOTALS = {
    "qwen3_5": (8_953_803_264, 453_650_672),
    "qwen3_5_moe": (34_660_610_688, 453_650_672),
    "qwen3_5_text": (8_953_803_264, 0),
    "qwen3_5_moe_text": (34_660_610_688, 0),
    "bamba": (9_992_765_440, 0),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_configs_equal_transformers(name):
    a = Architecture.from_config(PUBLISHED[name])
    assert (a.total_params, a.vision_params) == PUBLISHED_TOTALS[name]


@pytest.mark.parametrize("model_type", sorted(DEFAULT_TOTALS))
def test_default_configs_equal_transformers(model_type):
    from tests.planner.architecture_sweep import default_config
    a = Architecture.from_config(default_config(model_type))
    assert (a.total_params, a.vision_params) == DEFAULT_TOTALS[model_type]


def test_qwen3_5_mtp_layer_is_in_the_gguf_not_the_total():
    """mtp_num_hidden_layers 1: transformers does not build mtp.*; the converter writes it as the
    block after the last layer (conversion/qwen.py _QwenMtpMixin), llama.cpp skips it on load."""
    a = Architecture.from_config(PUBLISHED["Qwen3.5-27B"])
    assert a.mtp_in_gguf and a.n_layers_all == 65 and a.mtp_params > 0
    names = {n for n, _, _ in a.gguf_tensors()} - {n for n, _, _ in a.tensors()}
    assert "blk.64.nextn.eh_proj.weight" in names and "blk.64.ffn_gate.weight" in names   # a dense MTP block


# Tiny models of bench/hybrid_multimodal_ground_truth.py (vocabulary 49152: the demo tokenizer's)
_TINY_DELTANET = {"vocab_size": 49152, "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
                  "num_key_value_heads": 2, "head_dim": 64, "linear_conv_kernel_dim": 4, "linear_key_head_dim": 32,
                  "linear_value_head_dim": 32, "linear_num_key_heads": 2, "linear_num_value_heads": 4,
                  "tie_word_embeddings": False, "mtp_num_hidden_layers": 0}   # converted with --no-mtp
TINY = {
    "qwen3.5": {"model_type": "qwen3_5_text", "intermediate_size": 512, **_TINY_DELTANET},
    "qwen3.5-moe": {"model_type": "qwen3_5_moe_text", "num_experts": 8, "num_experts_per_tok": 2,
                    "moe_intermediate_size": 64, "shared_expert_intermediate_size": 96, **_TINY_DELTANET},
    "bamba": {"model_type": "bamba", "vocab_size": 49152, "hidden_size": 256, "num_hidden_layers": 4,
              "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 512, "attn_layer_indices": [2],
              "mamba_n_heads": 8, "mamba_d_head": 64, "mamba_d_state": 32, "mamba_d_conv": 4, "mamba_expand": 2,
              "mamba_n_groups": 1, "tie_word_embeddings": False},
}
# transformers' count of the tiny model (sum of state_dict numels)
TINY_PARAMS = {"qwen3.5": 27_405_816, "qwen3.5-moe": 27_709_944, "bamba": 28_182_792}

# One recurrent and one attention block of each converted file (gguf.GGUFReader, ggml order)
_DELTANET_BLOCK = {
    "blk.0.attn_norm.weight": (256,), "blk.0.ssm_a": (4,), "blk.0.ssm_conv1d.weight": (4, 256),
    "blk.0.ssm_dt.bias": (4,), "blk.0.ssm_alpha.weight": (256, 4), "blk.0.ssm_beta.weight": (256, 4),
    "blk.0.attn_qkv.weight": (256, 256), "blk.0.attn_gate.weight": (256, 128), "blk.0.ssm_norm.weight": (32,),
    "blk.0.ssm_out.weight": (128, 256), "blk.0.post_attention_norm.weight": (256,),
    "blk.3.attn_norm.weight": (256,), "blk.3.post_attention_norm.weight": (256,), "blk.3.attn_k_norm.weight": (64,),
    "blk.3.attn_k.weight": (256, 128), "blk.3.attn_output.weight": (256, 256), "blk.3.attn_q_norm.weight": (64,),
    "blk.3.attn_q.weight": (256, 512), "blk.3.attn_v.weight": (256, 128),
}
CONVERTED = {
    "qwen3.5": {**_DELTANET_BLOCK, **{f"blk.{i}.{n}": s for i in (0, 3) for n, s in (
        ("ffn_down.weight", (512, 256)), ("ffn_gate.weight", (256, 512)), ("ffn_up.weight", (256, 512)))}},
    "qwen3.5-moe": {**_DELTANET_BLOCK, **{f"blk.{i}.{n}": s for i in (0, 3) for n, s in (
        ("ffn_down_exps.weight", (64, 256, 8)), ("ffn_gate_exps.weight", (256, 64, 8)),
        ("ffn_up_exps.weight", (256, 64, 8)), ("ffn_gate_inp.weight", (256, 8)),
        ("ffn_down_shexp.weight", (96, 256)), ("ffn_gate_shexp.weight", (256, 96)),
        ("ffn_up_shexp.weight", (256, 96)), ("ffn_gate_inp_shexp.weight", (256, 1)))}},
    "bamba": {
        "blk.0.ffn_down.weight": (512, 256), "blk.0.ffn_gate.weight": (256, 512), "blk.0.ffn_up.weight": (256, 512),
        "blk.0.attn_norm.weight": (256,), "blk.0.ssm_a": (1, 8), "blk.0.ssm_d": (1, 8),
        "blk.0.ssm_conv1d.bias": (576,), "blk.0.ssm_conv1d.weight": (4, 576), "blk.0.ssm_dt.bias": (8,),
        "blk.0.ssm_in.weight": (256, 1096), "blk.0.ssm_norm.weight": (512, 1), "blk.0.ssm_out.weight": (512, 256),
        "blk.0.ffn_norm.weight": (256,), "blk.2.ffn_down.weight": (512, 256), "blk.2.ffn_gate.weight": (256, 512),
        "blk.2.ffn_up.weight": (256, 512), "blk.2.attn_norm.weight": (256,), "blk.2.ffn_norm.weight": (256,),
        "blk.2.attn_k.weight": (256, 128), "blk.2.attn_output.weight": (256, 256), "blk.2.attn_q.weight": (256, 256),
        "blk.2.attn_v.weight": (256, 128)},
}
# llama-cpp-python 0.3.36 load log at n_ctx 4096: "llama_kv_cache: size = 2.00 MiB (4096 cells, 1 layers,
# 1/1 seqs), K (f16): 1.00 MiB, V (f16): 1.00 MiB"; "llama_memory_recurrent: size = X MiB" (R + S, f32)
LLAMA_CPP_MiB = {"qwen3.5": (2.00, 0.06), "qwen3.5-moe": (2.00, 0.06), "bamba": (2.00, 0.21)}


@pytest.mark.parametrize("key", sorted(TINY_PARAMS))
def test_tiny_models_equal_transformers(key):
    assert Architecture.from_config(TINY[key]).total_params == TINY_PARAMS[key]


@pytest.mark.parametrize("key", sorted(CONVERTED))
def test_tensors_as_the_converter_writes_them(key):
    mine = {n: s for n, s, _ in Architecture.from_config(TINY[key]).tensors()}
    blocks = {n.split(".")[1] for n in CONVERTED[key]}
    assert {n: s for n, s in mine.items() if n.split(".")[0] == "blk" and n.split(".")[1] in blocks} == CONVERTED[key]


@pytest.mark.parametrize("key", sorted(LLAMA_CPP_MiB))
def test_kv_and_recurrent_state_as_llama_cpp_allocates_them(key):
    a = Architecture.from_config(TINY[key])
    wl = Workload(runtime="llama.cpp", context=4096)
    kv, state = LLAMA_CPP_MiB[key]
    assert kv_cache_bytes(a, wl)[0] / MiB == pytest.approx(kv, abs=0.005)
    assert recurrent_bytes(a, wl)[0] / MiB == pytest.approx(state, abs=0.005)


def test_nemotron_h_moe_with_mlp_biases_is_refused_by_name():
    cfg = {"model_type": "nemotron_h", "hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2,
           "head_dim": 64, "intermediate_size": 512, "vocab_size": 1000, "num_hidden_layers": 3,
           "layers_block_type": ["mamba", "moe", "attention"], "n_routed_experts": 8, "num_experts_per_tok": 2,
           "mlp_bias": True}
    with pytest.raises(EstimatorError, match="biases") as exc:
        Architecture.from_config(cfg)
    assert exc.value.field == "mlp_bias"
