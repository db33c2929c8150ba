"""Configs for the every-architecture sweep: each text-generation model type of the pinned
transformers with its config class's defaults, and a small randomized variant of them (layers,
widths, experts, windows and tying changed; per-layer lists cycled to the new depth), and the
verdict of the planner on each: exact, refused (with the reason), or a mismatch."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from typing import Any

from planner.estimator import Architecture, EstimatorError
from planner.model_definition import architecture_for_config, load_libraries, model_definition

LAYER_KEYS = ("num_hidden_layers", "num_layers", "n_layer", "n_layers")
EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
WIDTH_KEYS = ("intermediate_size", "moe_intermediate_size", "shared_expert_intermediate_size",
              "ffn_hidden_size", "n_inner")


def default_config(model_type: str) -> dict[str, Any]:
    """The config class's defaults as config.json holds them; {"model_type": ...} alone where the
    class refuses its own defaults (the definition then says why)."""
    try:
        return load_libraries()["configs"].CONFIG_MAPPING[model_type]().to_dict()
    except Exception:  # noqa: BLE001
        return {"model_type": model_type}


def randomized_config(cfg: dict[str, Any], seed: int) -> dict[str, Any]:
    """A small variant of cfg, the same for the same seed."""
    rng = random.Random(seed)
    out = _randomize_part(dict(cfg), rng)
    for key in ("text_config", "language_config", "llm_config"):
        if isinstance(out.get(key), dict):
            out[key] = _randomize_part(dict(out[key]), rng)
    return out


def _randomize_part(cfg: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    old_layers = next((cfg[k] for k in LAYER_KEYS if isinstance(cfg.get(k), int)), None)
    if old_layers:
        new_layers = rng.randint(2, 7)
        for key in LAYER_KEYS:
            if isinstance(cfg.get(key), int):
                cfg[key] = new_layers
        for key, value in list(cfg.items()):   # per-layer lists and patterns follow the new depth
            if isinstance(value, (list, str)) and len(value) == old_layers and old_layers > 1:
                cycled = [value[i % old_layers] for i in range(new_layers)]
                cfg[key] = "".join(cycled) if isinstance(value, str) else cycled
        # keyed by layer index and derived from layer_types (Gemma4TextConfig): the class rebuilds it
        cfg.pop("per_layer_config", None)
    for key in WIDTH_KEYS:
        if isinstance(cfg.get(key), int) and cfg[key] > 0:
            cfg[key] = 64 * rng.randint(2, 48)
    if isinstance(cfg.get("vocab_size"), int) and cfg["vocab_size"] > 0:
        cfg["vocab_size"] = rng.randint(1000, 70000)
    heads, kv = cfg.get("num_attention_heads"), cfg.get("num_key_value_heads")
    if isinstance(heads, int) and heads > 0 and isinstance(kv, int) and kv > 0:
        cfg["num_key_value_heads"] = rng.choice([d for d in range(1, heads + 1) if heads % d == 0])
    for key in EXPERT_KEYS:
        if isinstance(cfg.get(key), int) and cfg[key] > 1:
            cfg[key] = rng.randint(4, 16)
            if isinstance(cfg.get("num_experts_per_tok"), int) and cfg["num_experts_per_tok"] > 0:
                cfg["num_experts_per_tok"] = rng.randint(1, min(4, cfg[key]))
    if isinstance(cfg.get("sliding_window"), int) and cfg["sliding_window"] > 0:
        cfg["sliding_window"] = rng.choice([128, 512, 1000, 4096])
    if isinstance(cfg.get("tie_word_embeddings"), bool):
        cfg["tie_word_embeddings"] = rng.random() < 0.5
    return cfg


def seed_of(model_type: str) -> int:
    return zlib.crc32(model_type.encode())


@dataclass
class Verdict:
    status: str          # "exact" | "refused" | "mismatch" | "crash"
    reason: str = ""
    class_name: str = ""
    params: int = 0


def verdict(cfg: dict[str, Any]) -> Verdict:
    """The estimator read directly (not through the checking gate), compared with transformers,
    and the product's path (the gate) alongside: both must agree."""
    try:
        definition = model_definition(cfg)
    except EstimatorError as exc:
        return Verdict("refused", f"{exc.field}: {exc.message}")
    cls, total = definition.class_name, definition.total_params
    try:
        arch = Architecture.from_config(definition.config)
    except EstimatorError as exc:
        reason = f"{exc.field}: {exc.message}"
    except Exception as exc:  # noqa: BLE001  (a crash is the verdict)
        return Verdict("crash", f"{type(exc).__name__}: {exc}", cls, total)
    else:
        per = definition.layer_params()
        if (arch.total_params != definition.text_params or arch.vision_params != definition.non_text_params
                or (per and sorted(per) == list(range(arch.n_layers))
                    and any(arch.layer_params[i] != per[i] for i in per))):
            return Verdict("mismatch", f"estimator {arch.total_params:,} + {arch.vision_params:,} vision, "
                                       f"transformers {definition.text_params:,} + {definition.non_text_params:,}",
                           cls, total)
        reason = ""
    try:
        architecture_for_config(cfg)
    except EstimatorError as exc:
        if not reason:
            return Verdict("mismatch", f"the gate refused what the estimator counts exactly: {exc}", cls, total)
        return Verdict("refused", f"{exc.field}: {exc.message}", cls, total)
    except Exception as exc:  # noqa: BLE001
        return Verdict("crash", f"{type(exc).__name__}: {exc}", cls, total)
    if reason:
        return Verdict("mismatch", f"the estimator refused ({reason}) but the gate planned it", cls, total)
    return Verdict("exact", "", cls, total)
