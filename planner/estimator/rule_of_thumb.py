"""The figure people quote — parameters × bytes per parameter — and why the estimate is larger.

"A 7B model needs 14 GB in FP16, 3.5 GB at 4 bit" counts only the nominal bits of the weights,
in decimal GB. Every row shows it beside the estimate with a one-line account of the difference.
"""

from __future__ import annotations

import re

from .architecture import Architecture
from .param_count import format_decimal_bytes, format_param_count
from .quantized_tensors import kept_labels
from .schemes import Scheme, gguf_type_summary, method_of

_GGUF_BITS_RE = re.compile(r"^(?:I?Q|MXFP)(\d)")  # Q4_K_M, IQ2_XS, MXFP4_MOE: the digit is the nominal bits
_NOT_WEIGHT_ROLES = ("norm", "bias", "rope_freqs")


def nominal_bits(scheme: Scheme) -> float:
    """The bits a scheme's name promises: FP16 16, INT8/FP8/Q8_0 8, NF4/Q4_K_M/AWQ-4bit/MXFP4 4, EXL2-5.0bpw 5."""
    if scheme.family != "gguf":
        return scheme.bits
    match = _GGUF_BITS_RE.match(scheme.name)
    return float(match.group(1)) if match else 16.0  # F16


def _kept_higher(arch: Architecture, scheme: Scheme) -> str:
    """Which weights the format stores above its nominal bits (short, for the note)."""
    if scheme.family == "gguf":
        roles = []
        for line in gguf_type_summary(arch, scheme.name):
            role = line.split(":")[0].removesuffix(".weight")
            if not any(word in role for word in _NOT_WEIGHT_ROLES):
                roles.append(role)
        if len(roles) > 4:  # small models: k-quant fallbacks everywhere (rows not a multiple of 256)
            return f"{len(roles)} kinds of tensor at other types"
        return f"{', '.join(roles)} kept higher" if roles else ""
    if scheme.family == "exl2":
        return "embeddings at 16-bit" + ("" if arch.tie_word_embeddings else ", lm_head at 6 bpw")
    kept = kept_labels(arch, method_of(scheme))
    return ", ".join(["embeddings" + ("" if arch.tie_word_embeddings else ", lm_head"), *kept]) + " and norms at 16-bit"


def rule_of_thumb(arch: Architecture, scheme: Scheme, *, weights: int, kv: int, compute: int, overhead: int,
                  training: int, state: int = 0) -> tuple[int, str]:
    """(parameters × nominal bits / 8, what the estimate adds to it).

    The parameters are the count the user gave in quick mode (`stated_params`), else the model's
    total. E.g. 7.3B: FP32 29.2 GB, FP16 14.6 GB, INT8 7.3 GB, INT4 3.65 GB.
    """
    params = arch.stated_params or arch.total_params
    bits = nominal_bits(scheme)
    rule = round(params * bits / 8)
    why = []
    if abs(arch.total_params - params) > 0.005 * params:
        why.append(f"the shape has {format_param_count(arch.total_params)} parameters")
    bpw = weights * 8 / arch.total_params
    if bpw > bits * 1.005:
        scales = "" if scheme.name in ("FP32", "FP16", "BF16", "F16") else "scales"
        why.append(", ".join(w for w in (f"{bpw:.2f} bpw, not {bits:g}: {scales}".rstrip(": "),
                                          _kept_higher(arch, scheme)) if w))
    parts = []
    delta = weights - rule
    if abs(delta) > 0.005 * rule:
        parts.append(f"{'+' if delta > 0 else '−'}{format_decimal_bytes(abs(delta))} weights"
                     + (f" ({'; '.join(why)})" if why else ""))
    for label, value in (("KV cache", kv), ("recurrent state", state), ("compute buffers", compute),
                         ("overhead", overhead), ("training state", training)):
        if value:
            parts.append(f"+{format_decimal_bytes(value)} {label}")
    note = f"{format_param_count(params)} × {bits / 8:g} B = {format_decimal_bytes(rule)}"
    return rule, note + ("; the estimate: " + ", ".join(parts) if parts else "")
