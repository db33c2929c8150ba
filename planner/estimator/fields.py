"""Validated reads of config.json / GGUF metadata fields; problems raise EstimatorError naming the field."""

from __future__ import annotations

import math
import numbers

from .errors import EstimatorError

# Sanity limits: anything beyond these is a hostile or broken config, not a model.
LIMITS: dict[str, int] = {
    "hidden_size": 1_000_000,
    "num_hidden_layers": 10_000,
    "num_attention_heads": 100_000,
    "num_key_value_heads": 100_000,
    "head_dim": 100_000,
    "intermediate_size": 10_000_000,
    "vocab_size": 10_000_000,
    "max_position_embeddings": 100_000_000,
    "num_experts": 100_000,
    "num_experts_per_tok": 100_000,
    "moe_intermediate_size": 10_000_000,
    "shared_expert_intermediate_size": 10_000_000,
    "sliding_window": 100_000_000,
    "q_lora_rank": 1_000_000,
    "kv_lora_rank": 1_000_000,
    "qk_nope_head_dim": 100_000,
    "qk_rope_head_dim": 100_000,
    "v_head_dim": 100_000,
    "first_k_dense_replace": 10_000,
    "moe_layer_freq": 10_000,
    "interleave_moe_layer_step": 10_000,
    "intermediate_size_mlp": 10_000_000,
    "num_nextn_predict_layers": 100,
    "mtp_num_hidden_layers": 100,
    # hybrid / recurrent models (hybrid.py)
    "linear_num_key_heads": 100_000, "linear_num_value_heads": 100_000, "linear_key_head_dim": 100_000,
    "linear_value_head_dim": 100_000, "linear_conv_kernel_dim": 1_000, "full_attention_interval": 10_000,
    "mamba_n_heads": 100_000, "mamba_num_heads": 100_000, "mamba_d_head": 100_000, "mamba_head_dim": 100_000,
    "mamba_d_ssm": 10_000_000, "mamba_d_state": 100_000, "ssm_state_size": 100_000, "mamba_n_groups": 100_000,
    "n_groups": 100_000, "mamba_d_conv": 1_000, "conv_kernel": 1_000, "conv_L_cache": 1_000, "mamba_expand": 100,
    "mamba_dt_rank": 1_000_000, "attn_layer_period": 10_000, "expert_layer_period": 10_000,
    "shared_intermediate_size": 10_000_000, "block_multiple_of": 1_000_000,
}


def _int(cfg: dict, key: str, default: int | None = None, minimum: int = 1) -> int:
    """Read a positive integer field, with range checks; `default=None` means required."""
    value = cfg.get(key, default)
    if value is None:
        if default is None:
            raise EstimatorError(key, "is required")
        value = default
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy ints/floats are Real
        raise EstimatorError(key, f"must be an integer, got {type(value).__name__}")
    if isinstance(value, numbers.Integral):
        value = int(value)
    else:
        value = float(value)
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise EstimatorError(key, f"must be an integer, got {value!r}")
        value = int(value)
    if value < minimum:
        raise EstimatorError(key, f"must be >= {minimum}, got {value}")
    limit = LIMITS.get(key)
    if limit is not None and value > limit:
        raise EstimatorError(key, f"{value} is beyond the sane limit {limit}")
    return value


def _bool(cfg: dict, key: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise EstimatorError(key, f"must be true or false, got {value!r}")
    return value
