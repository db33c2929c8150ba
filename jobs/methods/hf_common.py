"""Helpers shared by the transformers-based quantizers (bitsandbytes, GPTQ).

Pure Python only at import time: safetensors headers are read by formats.safetensors_header (the
bounds-checked reader the catalog uses for uploads), so validate/estimate in the web process and
bits-per-weight in the child never import torch for it.
"""

from __future__ import annotations

import math
import re
from importlib import metadata
from pathlib import Path

from formats.safetensors_header import read_safetensors_header
from jobs.methods.base import JobError

COMPUTE_DTYPES = ("float32", "bfloat16", "float16")
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
GIB = 1024**3
# Python + torch + transformers + the quantizer's own buffers, beyond the checkpoint pages and the
# output tensors: measured peak RSS 1.82 GB for both bnb runs of SmolLM2-135M (540 MB float32 input
# + 112 MB NF4 / 220 MB int8 output), i.e. 1.0-1.1 GiB; rounded up.
RUNTIME_OVERHEAD_BYTES = int(1.2 * GIB)

# A decoder block's linear layers: module path inside the block → which config width feeds it.
# Names are those of transformers' Llama/Mistral/Qwen2 modelling code.
_LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
_LINEAR_KEY = re.compile(r"^(?:.*\.)?layers\.\d+\.(?:" + "|".join(re.escape(n) for n in _LINEARS) + r")\.")


# ---- validation (web process) ----

def require_hf_input(variant, method: str) -> None:
    """The transformers quantizers read an HF safetensors folder; refuse GGUF and the rest."""
    fmt = getattr(variant, "format", None)
    if fmt == "hf":
        return
    if fmt == "gguf":
        raise JobError.field("input", f"{method} needs an HF safetensors variant, not GGUF; "
                                      "make an HF safetensors variant of this model first")
    raise JobError.field("input", f"{method} needs an HF safetensors variant, got format {fmt!r}")


def model_config(variant) -> dict:
    cfg = getattr(getattr(variant, "model", None), "config", None) or {}
    if not isinstance(cfg, dict):
        raise JobError.field("input", "the model's config is not a JSON object")
    if isinstance(cfg.get("text_config"), dict):
        cfg = {**cfg, **cfg["text_config"]}
    return cfg


def _cfg_int(cfg: dict, key: str, default: int | None = None) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise JobError.field("input", f"the model's config.json lacks a positive integer {key}")
    return value


def linear_shapes(cfg: dict) -> dict[str, tuple[int, int]]:
    """Each block linear → (input width, output width), from config.json numbers."""
    hidden = _cfg_int(cfg, "hidden_size")
    heads = _cfg_int(cfg, "num_attention_heads")
    kv_heads = _cfg_int(cfg, "num_key_value_heads", heads)
    head_dim = cfg.get("head_dim") or hidden // heads
    inter = _cfg_int(cfg, "intermediate_size")
    q, kv = heads * head_dim, kv_heads * head_dim
    return {
        "self_attn.q_proj": (hidden, q), "self_attn.k_proj": (hidden, kv),
        "self_attn.v_proj": (hidden, kv), "self_attn.o_proj": (q, hidden),
        "mlp.gate_proj": (hidden, inter), "mlp.up_proj": (hidden, inter),
        "mlp.down_proj": (inter, hidden),
    }


def param_counts(cfg: dict) -> tuple[int, int]:
    """(weights in quantized block linears, all other weights) from config.json.

    Other = embeddings (+ untied lm_head) + 2 RMSNorms per layer + final norm; biases ignored."""
    layers = _cfg_int(cfg, "num_hidden_layers")
    hidden, vocab = _cfg_int(cfg, "hidden_size"), _cfg_int(cfg, "vocab_size")
    linear = layers * sum(i * o for i, o in linear_shapes(cfg).values())
    tied = bool(cfg.get("tie_word_embeddings", False))
    other = vocab * hidden * (1 if tied else 2) + (2 * layers + 1) * hidden
    return linear, other


def clean_choice(params: dict, name: str, choices: tuple, default):
    value = params.get(name, default)
    if value not in choices:
        raise JobError.field(name, f"must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def clean_bool(params: dict, name: str, default: bool) -> bool:
    value = params.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        return value.lower() in ("true", "1", "yes", "on")
    raise JobError.field(name, f"must be true or false; got {value!r}")


def clean_number(params: dict, name: str, default, *, kind=float, low=None, high=None,
                 low_open=False, high_open=False):
    value = params.get(name, default)
    if isinstance(value, bool):
        raise JobError.field(name, f"must be a number; got {value!r}")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise JobError.field(name, f"must be {'an integer' if kind is int else 'a number'}; got {value!r}")
    if kind is int and isinstance(value, float) and value != number:
        raise JobError.field(name, f"must be an integer; got {value!r}")
    if number != number or number in (float("inf"), float("-inf")):
        raise JobError.field(name, f"must be finite; got {value!r}")
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        lo = "" if low is None else f"{'>' if low_open else '≥'} {low}"
        hi = "" if high is None else f"{'<' if high_open else '≤'} {high}"
        raise JobError.field(name, f"must be {' and '.join(x for x in (lo, hi) if x)}; got {value!r}")
    return number


def reject_unknown(params: dict, known: set[str]) -> None:
    unknown = sorted(set(params) - known)
    if unknown:
        raise JobError.field(unknown[0], f"unknown parameter; allowed: {', '.join(sorted(known))}")


# ---- estimate (web process) ----

def planner_weight_bytes(cfg: dict, scheme: str) -> int | None:
    """Output weight bytes from the planner's scheme formulas (planner/estimator/schemes.py), or
    None when the planner is absent or does not know the scheme (e.g. GPTQ group_size -1)."""
    try:
        from planner.estimator import Architecture
        from planner.estimator.schemes import parse_scheme, weights_bytes_and_formula

        return weights_bytes_and_formula(Architecture.from_config(cfg), parse_scheme(scheme))[0]
    except Exception:  # ImportError, EstimatorError: fall back to our own formula
        return None


def source_checkpoint_bytes(variant, cfg: dict) -> int:
    """Bytes of the input's *.safetensors (the catalog's File rows), or params × config dtype.

    Loading mmaps the safetensors and reads every page once, so they count in peak RSS."""
    try:
        total = sum(f.bytes for f in variant.files.all() if f.path.endswith(".safetensors"))
    except Exception:  # an unsaved variant or a stand-in without files
        total = 0
    if total:
        return total
    linear, other = param_counts(cfg)
    dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16").replace("torch.", "")
    return (linear + other) * DTYPE_BYTES.get(dtype, 2)


# ---- run (child process) ----

def tensor_stats(folder: Path) -> tuple[dict[str, int], dict[str, int]]:
    """({tensor name: element count}, {tensor name: stored bytes}) over every *.safetensors,
    read through the bounds-checked header reader."""
    numel, nbytes = {}, {}
    for path in sorted(Path(folder).glob("*.safetensors")):
        for name, info in read_safetensors_header(path).tensors.items():
            numel[name] = math.prod(info["shape"])
            start, end = info["data_offsets"]
            nbytes[name] = end - start
    return numel, nbytes


def is_block_linear_tensor(name: str) -> bool:
    return bool(_LINEAR_KEY.match(name))


def bits_per_weight(input_dir: Path, output_dir: Path) -> tuple[float, dict]:
    """Bits per original weight of the saved checkpoint, and a breakdown for Output.metrics.

    bits_per_weight = 8 × (bytes of every tensor saved in output_dir, quantization state included:
    absmax/quant_map for NF4, SCB for int8, qzeros/scales/g_idx for GPTQ) / (number of weights in
    the input checkpoint). Embeddings, norms (and an untied lm_head) are not quantized and count at
    their saved precision, so for a small model with a big vocabulary this is well above the
    nominal bits. `linear_bits_per_weight` counts only the quantized block linears (the nominal
    figure + quantization-state overhead)."""
    in_numel, _ = tensor_stats(input_dir)
    _, out_bytes = tensor_stats(output_dir)
    weights = sum(in_numel.values())
    linear_weights = sum(n for k, n in in_numel.items() if is_block_linear_tensor(k))
    total = sum(out_bytes.values())
    linear = sum(b for k, b in out_bytes.items() if is_block_linear_tensor(k))
    metrics = {
        "original_weights": weights,
        "saved_tensor_bytes": total,
        "linear_bits_per_weight": round(linear * 8 / linear_weights, 4) if linear_weights else None,
    }
    return round(total * 8 / weights, 4), metrics


def versions(*packages: str) -> dict[str, str]:
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def save_tokenizer(input_dir: Path, out: Path) -> None:
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(input_dir)).save_pretrained(str(out))
