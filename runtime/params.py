"""Sampling parameters from a form or an API body, validated field by field."""

from __future__ import annotations

from typing import Any

from engines.base import SamplingParams
from runtime.errors import RuntimeRequestError

MAX_STOP_STRINGS = 4
MAX_LOGIT_BIAS = 300  # entries, as OpenAI allows
# field: (type, low, high); None bounds are open.
BOUNDS: dict[str, tuple[type, float | None, float | None]] = {
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "top_k": (int, 0, 1000),
    "min_p": (float, 0.0, 1.0),
    "repeat_penalty": (float, 0.5, 2.0),
    "presence_penalty": (float, -2.0, 2.0),
    "frequency_penalty": (float, -2.0, 2.0),
    "max_tokens": (int, 1, None),
    "seed": (int, 0, 2**32 - 1),
    "logprobs": (int, 0, 20),  # the playground's: alternatives per token (None: off)
}


def number(name: str, raw: Any, kind: type, low, high):
    """`raw` as an int or float within [low, high], else a 400 naming `name`."""
    if isinstance(raw, bool):
        raise RuntimeRequestError(f"{name} must be a number", param=name)
    try:
        value = kind(raw)
        if kind is int and isinstance(raw, float) and raw != int(raw):
            raise ValueError
    except (TypeError, ValueError):
        raise RuntimeRequestError(f"{name} must be {'an integer' if kind is int else 'a number'}",
                                  param=name) from None
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise RuntimeRequestError(f"{name} must be {span}, got {raw}", param=name)
    return value


def _logit_bias(raw: Any) -> tuple[tuple[int, float], ...]:
    """OpenAI's {"<token id>": bias} map, bias in -100..100, as (id, bias) pairs."""
    if not isinstance(raw, dict):
        raise RuntimeRequestError('logit_bias must be an object {"<token id>": bias}', param="logit_bias")
    if len(raw) > MAX_LOGIT_BIAS:
        raise RuntimeRequestError(f"logit_bias takes at most {MAX_LOGIT_BIAS} tokens", param="logit_bias")
    pairs = []
    for key, bias in raw.items():
        if not str(key).isdigit():
            raise RuntimeRequestError(f"logit_bias keys must be token ids (integers), got {key!r}",
                                      param="logit_bias")
        pairs.append((int(key), number("logit_bias", bias, float, -100.0, 100.0)))
    return tuple(pairs)


def parse_sampling(data: dict, *, max_tokens_default: int = 256,
                   scoring: bool = False) -> SamplingParams:
    """Blank or missing fields keep SamplingParams' defaults; `stop` is a string or a list.
    `scoring` allows max_tokens 0 (score the prompt, generate nothing)."""
    values: dict[str, Any] = {"max_tokens": max_tokens_default}
    for name, (kind, low, high) in BOUNDS.items():
        raw = data.get(name)
        if raw is None or raw == "":
            continue
        values[name] = number(name, raw, kind, 0 if name == "max_tokens" and scoring else low, high)
    stop = data.get("stop")
    if isinstance(stop, str):
        stop = [s for s in stop.split("\n") if s] if "\n" in stop else ([stop] if stop else [])
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
            raise RuntimeRequestError("stop must be a string or a list of strings", param="stop")
        if len(stop) > MAX_STOP_STRINGS:
            raise RuntimeRequestError(f"stop takes at most {MAX_STOP_STRINGS} strings", param="stop")
        values["stop"] = tuple(stop)
    if data.get("logit_bias"):
        values["logit_bias"] = _logit_bias(data["logit_bias"])
    return SamplingParams(**values)
