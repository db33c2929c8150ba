"""Quick mode: a bare parameter count ("7B", "7e9", "135M") → the shape of a real model that size.

A count alone does not decide memory: KV cache depends on layers × KV heads × head_dim, and
llama.cpp's k-quants fall back to bigger types when a row length is not a multiple of 256. So
quick mode does not invent an aspect ratio; it borrows a published config and adjusts its depth.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from decimal import Decimal
from functools import lru_cache
from typing import Any

from .architecture import Architecture
from .errors import EstimatorError
from .loaders import _check_total, architecture_from_config

MIN_PARAMS = 10**6
MAX_PARAMS = 10**13
TOLERANCE = 0.02  # the shape lands within 2 % of the target (see architecture_from_param_count)


def _config(model_type: str, hidden: int, layers: int, heads: int, kv: int, head_dim: int, ff: int, vocab: int,
            max_pos: int, tied: bool, llama3_rope: bool = False) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "model_type": model_type, "hidden_size": hidden, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": head_dim,
        "intermediate_size": ff, "vocab_size": vocab, "max_position_embeddings": max_pos,
        "tie_word_embeddings": tied,
    }
    if llama3_rope:
        cfg["rope_scaling"] = {"rope_type": "llama3"}
    return cfg


# (name, Hugging Face repo whose config.json the numbers are copied from, config fields).
# Columns: hidden, layers, heads, KV heads, head_dim, intermediate, vocab, max positions, tied.
# Smallest first; the same numbers are in planner/presets.py (tests check that they agree).
REFERENCE_SHAPES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("SmolLM2 135M", "HuggingFaceTB/SmolLM2-135M", _config("llama", 576, 30, 9, 3, 64, 1536, 49152, 8192, True)),
    ("SmolLM2 360M", "HuggingFaceTB/SmolLM2-360M", _config("llama", 960, 32, 15, 5, 64, 2560, 49152, 8192, True)),
    ("Llama 3.2 1B", "meta-llama/Llama-3.2-1B",
     _config("llama", 2048, 16, 32, 8, 64, 8192, 128256, 131072, True, llama3_rope=True)),
    ("Llama 3.2 3B", "meta-llama/Llama-3.2-3B",
     _config("llama", 3072, 28, 24, 8, 128, 8192, 128256, 131072, True, llama3_rope=True)),
    ("Mistral 7B v0.3", "mistralai/Mistral-7B-v0.3",
     _config("mistral", 4096, 32, 32, 8, 128, 14336, 32768, 32768, False)),
    ("Llama 3.1 8B", "meta-llama/Llama-3.1-8B",
     _config("llama", 4096, 32, 32, 8, 128, 14336, 128256, 131072, False, llama3_rope=True)),
    ("Qwen2.5 14B", "Qwen/Qwen2.5-14B", _config("qwen2", 5120, 48, 40, 8, 128, 13824, 152064, 131072, False)),
    ("Qwen2.5 32B", "Qwen/Qwen2.5-32B", _config("qwen2", 5120, 64, 40, 8, 128, 27648, 152064, 131072, False)),
    ("Llama 3.1 70B", "meta-llama/Llama-3.1-70B",
     _config("llama", 8192, 80, 64, 8, 128, 28672, 128256, 131072, False, llama3_rope=True)),
    ("Llama 3.1 405B", "meta-llama/Llama-3.1-405B",
     _config("llama", 16384, 126, 128, 8, 128, 53248, 128256, 131072, False, llama3_rope=True)),
)

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_COUNT_RE = re.compile(
    r"^\s*(?P<number>(?:\d{1,3}(?:[,_]\d{3})+|\d+)(?:\.\d+)?)(?:e(?P<exp>[+-]?\d{1,3}))?\s*(?P<suffix>[kmgbt]?)\s*$",
    re.IGNORECASE)


def parse_param_count(text: Any, *, minimum: int = MIN_PARAMS) -> int:
    """A parameter count as people write it → an int; errors name the field `param_count`.

    Accepts a suffix K/M/B/T (G = B), case-insensitive, with spaces around ("7b", " 7 B "),
    scientific notation ("7e9", "7E9"), thousands separators in groups of three
    ("7,000,000,000"; "1,5B" is refused rather than read as 15B) and plain ints.
    Counts below `minimum` (1M by default) or above 10T are refused.
    """
    if isinstance(text, bool):
        raise EstimatorError("param_count", "must be a number like 7B or 135M")
    if isinstance(text, int):
        value = Decimal(text)
    else:
        match = _COUNT_RE.match(str(text))
        if not match:
            raise EstimatorError("param_count", f"cannot parse {_shown(text)}; write e.g. 7B, 1.5B, 135M or 7e9")
        value = Decimal(match["number"].replace(",", "").replace("_", "")) * _SUFFIX[match["suffix"].lower()]
        value = value.scaleb(int(match["exp"] or 0))
    if value > MAX_PARAMS:  # checked before int(): "1e999" must not build a 1000-digit int
        raise EstimatorError("param_count", f"{_shown(text)} is beyond 10T parameters")
    count = round(value)
    if count < minimum:
        raise EstimatorError("param_count", f"{count:,} is below {format_param_count(minimum)} parameters")
    return count


def _shown(text: Any) -> str:
    shown = repr(text)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def format_param_count(n: int | float) -> str:
    """7_000_000_000 → "7B", 1.5e12 → "1.5T", 135_000_000 → "135M": three significant digits, no exponent."""
    return _si(n, ("", "K", "M", "B", "T"))


def format_decimal_bytes(n: int | float) -> str:
    """29_200_000_000 → "29.2 GB" (decimal units, as the rule of thumb "7.3B × 4 B = 29.2 GB" is said)."""
    return _si(n, (" B", " kB", " MB", " GB", " TB"))


def _si(n: int | float, suffixes: tuple[str, ...]) -> str:
    value = float(n)
    for suffix in suffixes[:-1]:
        if abs(value) < 999.5:  # "999.6M" would print as 1e+03M: move to the next unit instead
            return f"{value:.3g}{suffix}"
        value /= 1000
    return f"{value:.3g}{suffixes[-1]}" if abs(value) < 999.5 else f"{value:,.0f}{suffixes[-1]}"


@lru_cache(maxsize=1)
def reference_architectures() -> tuple[Architecture, ...]:
    return tuple(architecture_from_config(cfg, name=name) for name, _, cfg in REFERENCE_SHAPES)


def nearest_reference(target: int) -> Architecture:
    """The reference whose parameter count is nearest to `target` by ratio (|log(total / target)|)."""
    return min(reference_architectures(), key=lambda ref: abs(math.log(ref.total_params / target)))


def architecture_from_param_count(count: Any, name: str = "") -> Architecture:
    """The shape of a real model about `count` parameters big (quick mode).

    Heuristic:
    1. Take the reference in REFERENCE_SHAPES nearest in size (by ratio). If it is already within
       2 % of the target, use it as published.
    2. Otherwise keep its widths, heads and vocabulary and change only the number of layers:
       L = round((target − non-layer params) / params per layer), at least 1. Every layer of a dense
       reference has the same size, so the total is exact for that shape.
    3. If that is still more than 2 % off (few layers: each one is a big step), also set the MLP
       width: ff = (target − non-layer params) / L − attention and norms, over 3·hidden (gate, up,
       down), rounded to a multiple of 256 (at least 256).
    From 1B up every reference has widths that are multiples of 256 and GQA (8 KV heads from
    Llama 3.2 1B up), as the models people mean by "7B" or "70B" do; SmolLM2 135M/360M keep their
    published 576/960 widths. Below about 40M parameters even one SmolLM2 135M layer is too big
    (28M of it is embeddings); the shape is then larger than asked, and its note says so.
    """
    target = parse_param_count(count)
    ref = nearest_reference(target)
    per_layer = ref.layer_params[0]
    fixed = ref.total_params - per_layer * ref.n_layers
    shape = ref
    if abs(ref.total_params - target) > TOLERANCE * target:
        layers = max(1, round((target - fixed) / per_layer))
        shape = replace(ref, n_layers=layers)
        if abs(shape.total_params - target) > TOLERANCE * target:
            mlp = 3 * ref.hidden_size * ref.intermediate_size
            ff = ((target - fixed) / layers - (per_layer - mlp)) / (3 * ref.hidden_size)
            shape = replace(shape, intermediate_size=max(256, round(ff / 256) * 256))
    changes = []
    if shape.n_layers != ref.n_layers:
        changes.append(f"{shape.n_layers} layers instead of {ref.n_layers}")
    if shape.intermediate_size != ref.intermediate_size:
        changes.append(f"MLP width {shape.intermediate_size} instead of {ref.intermediate_size}")
    notes = [f"quick mode: shape of {ref.name} ({ref.hidden_size} hidden, {ref.n_heads} heads / "
             f"{ref.n_kv_heads} KV heads, vocab {ref.vocab_size:,})"
             + (f" with {' and '.join(changes)}" if changes else ", as published")
             + f" for {format_param_count(target)} parameters"]
    off = (shape.total_params - target) / target
    if abs(off) > TOLERANCE:
        notes.append(f"{shape.total_params:,} parameters is {off:+.0%} off the {target:,} asked: "
                     "the nearest real shape cannot get closer (embeddings and one layer are that big)")
    result = replace(shape, name=name or f"~{format_param_count(target)} (modelled on {ref.name})",
                     source="param_count", anonymous=not name, stated_params=target, notes=tuple(notes))
    return _check_total(result)
