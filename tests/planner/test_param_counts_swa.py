"""gpt-oss (MoE with expert and router biases, attention sinks) and Gemma 3 (qk-norm, four norms
per layer): parameter counts equal what transformers builds from the published config.json.

The pin is transformers itself, on the meta device (no memory allocated), as in
test_param_counts_moe.py. The gpt-oss checkpoints store the experts in MXFP4 blocks; the count
here is of the dequantized (bf16) model transformers builds (neither has a persistent buffer,
so parameters() is the checkpoint total), the one the model card's "21B" /
"117B" total describes.
"""

from functools import cache

import pytest
import torch
from transformers import AutoModelForCausalLM, Gemma3TextConfig, GptOssConfig

from planner.estimator import Architecture, EstimatorError
from tests.planner.published_configs import GEMMA3_27B, GPT_OSS_20B, GPT_OSS_120B

CONFIGS = {
    "gpt-oss-20b": (GPT_OSS_20B, GptOssConfig),
    "gpt-oss-120b": (GPT_OSS_120B, GptOssConfig),
    "gemma-3-27b": (GEMMA3_27B, Gemma3TextConfig),
}


@cache
def transformers_count(key: str) -> int:
    cfg, config_class = CONFIGS[key]
    fields = dict(cfg.get("text_config", cfg))
    fields.pop("model_type")
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config_class(**fields))
    return sum(p.numel() for p in model.parameters())  # counts Gemma's tied lm_head once


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_total_equals_transformers(key):
    assert Architecture.from_config(CONFIGS[key][0]).total_params == transformers_count(key)


def test_published_sizes():
    # Model cards: gpt-oss-20b "21B parameters" (20.9B), gpt-oss-120b "117B" (116.8B); Gemma 3 27B
    # is 27.4B with its 0.4B vision tower, 27.0B for the text model counted here.
    assert round(transformers_count("gpt-oss-20b") / 1e8) == 209
    assert round(transformers_count("gpt-oss-120b") / 1e8) == 1168
    assert round(transformers_count("gemma-3-27b") / 1e9) == 27


def test_gpt_oss_tensors_as_llama_cpp_loads_them():
    """Names and ggml shapes of models/openai-moe.cpp load_arch_tensors (n_embd 2880, 64 heads ×
    64, 8 KV heads, 32 experts of 2880)."""
    shapes = {n: s for n, s, _ in Architecture.from_config(GPT_OSS_20B).tensors()}
    assert shapes["blk.0.attn_sinks.weight"] == (64,)
    assert shapes["blk.0.attn_q.bias"] == (4096,) and shapes["blk.0.attn_k.bias"] == (512,)
    assert shapes["blk.0.attn_output.bias"] == (2880,)
    assert shapes["blk.0.ffn_gate_inp.bias"] == (32,)
    assert shapes["blk.0.ffn_gate_exps.bias"] == (2880, 32)
    assert shapes["blk.0.ffn_down_exps.bias"] == (2880, 32)
    assert shapes["blk.0.post_attention_norm.weight"] == (2880,)
    assert "blk.0.ffn_norm.weight" not in shapes


def test_gpt_oss_active_params():
    # Model cards: 3.6B active (20b), 5.1B active (120b), leaving out the input embedding
    # (201088 × 2880), as DeepSeek's card does; idle per token = layers × (E − 4) experts
    # × (3 matrices 2880 × 2880 + biases 2880 + 2880 + 2880)
    a20, a120 = Architecture.from_config(GPT_OSS_20B), Architecture.from_config(GPT_OSS_120B)
    assert a20.total_params - a20.active_params == 24 * 28 * (3 * 2880 * 2880 + 3 * 2880)
    assert round((a20.active_params - 201088 * 2880) / 1e8) == 36
    assert round((a120.active_params - 201088 * 2880) / 1e8) == 51


def test_gpt_oss_and_gemma3_local_layers():
    # transformers' layer_types: gpt-oss alternates from a sliding layer 0; Gemma 3's
    # sliding_window_pattern 6 = five local then one global (llama.cpp set_swa_pattern the same)
    gpt = Architecture.from_config(GPT_OSS_20B)
    assert gpt.swa_layers == tuple(range(0, 24, 2)) and gpt.sliding_window == 128
    gemma = Architecture.from_config(GEMMA3_27B)
    assert len(gemma.swa_layers) == 52 and 5 not in gemma.swa_layers and 4 in gemma.swa_layers
    assert gemma.sliding_window == 1024


def test_unknown_layer_type_is_refused():
    bad = dict(GPT_OSS_20B, layer_types=["sliding_attention", "linear_attention"] * 12)
    with pytest.raises(EstimatorError, match="layer_types"):
        Architecture.from_config(bad)
    with pytest.raises(EstimatorError, match="layer_types"):
        Architecture.from_config(dict(GPT_OSS_20B, layer_types=["full_attention"] * 3))
