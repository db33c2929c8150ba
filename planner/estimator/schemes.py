"""Quantization schemes: weight bytes, effective bits per weight, engines, kept-precision tensors.

"Quantized linears" below means the 2-D/3-D weights inside transformer blocks (q/k/v/o,
gate/up/down, experts). Token embeddings, lm_head, norms, biases and the MoE router stay in the
16-bit compute dtype for every non-GGUF method (transformers' bitsandbytes integration skips
`lm_head` via `get_keys_to_not_convert`; GPTQModel/AutoAWQ quantize only the block linears).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .architecture import Architecture, layer_index
from .errors import EstimatorError
from .gguf_quant import GGUF_FTYPES, gguf_tensor_plan

FAMILIES = ("float", "bnb", "gptq", "awq", "exl2", "gguf")

ENGINES: dict[str, list[str]] = {
    "float": ["transformers", "vLLM", "TGI"],
    "fp8": ["vLLM", "TGI", "transformers"],
    "bnb": ["transformers", "vLLM", "TGI"],
    "gptq": ["transformers", "vLLM", "TGI"],
    "gptq4": ["transformers", "vLLM", "TGI", "ExLlamaV2"],
    "awq": ["transformers", "vLLM", "TGI"],
    "exl2": ["ExLlamaV2", "TGI"],
    "gguf": ["llama.cpp/Ollama"],
}

FLOAT_BYTES = {"FP32": 4, "FP16": 2, "BF16": 2}
BNB_SCHEMES = ("INT8", "INT4", "NF4", "NF4-DQ")
GPTQ_BITS = (2, 3, 4, 8)
AWQ_BITS = (4,)  # AutoAWQ (GEMM/GEMV kernels) only implements 4-bit weights
GGUF_SCHEMES = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_0",
                "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K", "IQ4_XS", "IQ3_XXS", "IQ2_XS")


# One line per scheme family member for the UI ("description" in each row).
DESCRIPTIONS: dict[str, str] = {
    "FP32": "full precision, 4 bytes per parameter",
    "FP16": "half precision, 2 bytes per parameter",
    "BF16": "bfloat16, 2 bytes per parameter (the usual training/inference dtype)",
    "FP8": "FP8 E4M3 linear weights with per-channel fp32 scales (llm-compressor FP8 / vLLM)",
    "INT8": "bitsandbytes LLM.int8 (load_in_8bit): int8 weights + fp32 scale per output row",
    "INT4": "bitsandbytes FP4 (load_in_4bit, bnb_4bit_quant_type='fp4'): 4-bit + fp32 absmax per 64",
    "NF4": "bitsandbytes NF4 (load_in_4bit, quant_type='nf4'): 4-bit + fp32 absmax per 64 = 4.5 bpw",
    "NF4-DQ": "bitsandbytes NF4 with double quantization (QLoRA): absmax in 8 bits, ≈ 4.127 bpw",
    "gptq": "GPTQ (GPTQModel/auto-gptq): packed weights + fp16 scale and packed zero per group + g_idx",
    "awq": "AWQ (AutoAWQ GEMM): packed 4-bit weights + fp16 scale and packed zero per group",
    "exl2": "ExLlamaV2 EXL2: mixed-precision linears averaging the target bpw, head at 6 bpw",
    "gguf": "GGUF for llama.cpp: per-tensor types chosen as llama-quantize does",
}


def describe(scheme: "Scheme") -> str:
    return DESCRIPTIONS.get(scheme.name) or DESCRIPTIONS[scheme.family]


def scheme_names(group_size: int = 128, exl2_bpw: float = 4.0) -> list[str]:
    names = ["FP32", "FP16", "BF16", "FP8", *BNB_SCHEMES]
    names += [f"GPTQ-{b}bit-g{group_size}" for b in GPTQ_BITS]
    names += [f"AWQ-{b}bit-g{group_size}" for b in AWQ_BITS]
    names.append(f"EXL2-{exl2_bpw:.1f}bpw")
    names += list(GGUF_SCHEMES)
    return names


SCHEME_NAMES: list[str] = scheme_names()

_GPTQ_RE = re.compile(r"^(GPTQ|AWQ)-(\d)bit-g(\d+)$")
_EXL2_RE = re.compile(r"^EXL2-(\d+(?:\.\d+)?)bpw$")


@dataclass(frozen=True)
class Scheme:
    name: str
    family: str
    bits: float = 16.0      # nominal bits of the quantized linears
    group_size: int = 0     # GPTQ/AWQ
    engines: tuple[str, ...] = ()


def parse_scheme(name: str) -> Scheme:
    """Scheme name as people write it → Scheme. Raises EstimatorError('schemes', ...)."""
    if not isinstance(name, str):
        raise EstimatorError("schemes", f"scheme names are strings, got {type(name).__name__}")
    if name in FLOAT_BYTES:
        return Scheme(name, "float", FLOAT_BYTES[name] * 8, engines=tuple(ENGINES["float"]))
    if name == "FP8":
        return Scheme(name, "float", 8, engines=tuple(ENGINES["fp8"]))
    if name in BNB_SCHEMES:
        return Scheme(name, "bnb", 8 if name == "INT8" else 4, engines=tuple(ENGINES["bnb"]))
    if name in GGUF_FTYPES:
        return Scheme(name, "gguf", engines=tuple(ENGINES["gguf"]))
    m = _GPTQ_RE.match(name)
    if m:
        method, bits, group = m.group(1), int(m.group(2)), int(m.group(3))
        allowed = GPTQ_BITS if method == "GPTQ" else AWQ_BITS
        if bits not in allowed or group < 16 or group & (group - 1):
            raise EstimatorError("schemes", f"{name}: bits must be one of {allowed}, group a power of two ≥ 16")
        family = method.lower()
        engines = ENGINES["gptq4"] if (family == "gptq" and bits == 4) else ENGINES[family]
        return Scheme(name, family, bits, group, tuple(engines))
    m = _EXL2_RE.match(name)
    if m:
        bpw = float(m.group(1))
        if not 2.0 <= bpw <= 8.0:
            raise EstimatorError("schemes", f"{name}: EXL2 bpw must be 2.0 to 8.0")
        return Scheme(name, "exl2", bpw, engines=tuple(ENGINES["exl2"]))
    raise EstimatorError("schemes", f"unknown scheme {name!r}")


def is_quantized_linear(name: str, shape: tuple[int, ...]) -> bool:
    return (len(shape) >= 2 and layer_index(name) is not None and name.endswith(".weight")
            and "ffn_gate_inp" not in name)


@lru_cache(maxsize=64)
def _linear_stats(arch: Architecture) -> tuple[int, int, list[tuple[int, int, int]]]:
    """(quantized elements, other elements, [(in, out, n_matrices)] of the quantized linears)."""
    quant, other, mats = 0, 0, []
    for name, shape, n in arch.tensors():
        if name.startswith("rope_freqs"):
            continue
        if is_quantized_linear(name, shape):
            quant += n
            mats.append((shape[0], shape[1], shape[2] if len(shape) > 2 else 1))
        else:
            other += n
    return quant, other, mats


def weights_bytes_and_formula(arch: Architecture, scheme: Scheme) -> tuple[int, str]:
    """Bytes of all weights in the scheme's format, with the formula used (numbers substituted)."""
    return _weights_cached(arch, scheme)


@lru_cache(maxsize=1024)
def _weights_cached(arch: Architecture, scheme: Scheme) -> tuple[int, str]:
    P = arch.total_params
    if scheme.family == "gguf":
        plan = gguf_tensor_plan(arch, scheme.name)
        total = sum(b for _, _, b in plan)
        by_type: dict[str, list[int]] = {}
        for _, t, b in plan:
            by_type.setdefault(t, [0, 0])
            by_type[t][0] += 1
            by_type[t][1] += b
        parts = " + ".join(f"{n}×{t} {b:,}" for t, (n, b) in sorted(by_type.items(), key=lambda kv: -kv[1][1]))
        return total, (f"Σ {len(plan)} tensors, (ne0 / block) × block_bytes × rows with llama-quantize's "
                       f"per-tensor types: {parts} = {total:,} B")
    if scheme.name in FLOAT_BYTES:
        b = FLOAT_BYTES[scheme.name]
        return P * b, f"{P:,} params × {b} B = {P * b:,} B"
    Q, R, mats = _linear_stats(arch)
    rest = R * 2
    rest_txt = f"{R:,} embedding/lm_head/norm/bias params × 2 B"
    if scheme.name == "FP8":
        # Per-output-channel fp32 weight scale (llm-compressor "FP8-Dynamic" / vLLM fp8 checkpoints).
        scales = sum(out * e for _, out, e in mats) * 4
        total = Q + scales + rest
        return total, f"{Q:,} linear weights × 1 B + {scales:,} B per-channel fp32 scales + {rest_txt} = {total:,} B"
    if scheme.name == "INT8":
        # bitsandbytes LLM.int8 (Int8Params): int8 CB [out, in] + fp32 SCB [out] (bitsandbytes/nn/modules.py)
        scb = sum(out * e for _, out, e in mats) * 4
        total = Q + scb + rest
        return total, f"{Q:,} × 1 B int8 + {scb:,} B fp32 row scales (SCB) + {rest_txt} = {total:,} B"
    if scheme.name in ("INT4", "NF4", "NF4-DQ"):
        # bitsandbytes quantize_4bit(blocksize=64), per Linear of n weights: n/2 bytes of packed codes
        # + ⌈n/64⌉ fp32 absmax. With compress_statistics=True (double quant) the absmax become uint8
        # (quantize_blockwise, blocksize=256) + ⌈(n/64)/256⌉ fp32 second-level absmax.
        # Checked against transformers 5.23 + bitsandbytes 0.50.2 on a SmolLM2-135M-shaped model.
        dq = scheme.name == "NF4-DQ"
        codes = stats = 0
        for din, dout, e in mats:
            n = din * dout
            blocks = -(-n // 64)
            codes += (n // 2) * e
            stats += (blocks + -(-blocks // 256) * 4 if dq else blocks * 4) * e
        total = codes + stats + rest
        if dq:
            return total, (f"{Q:,} × 4 bit + {stats:,} B absmax (int8 per 64, fp32 per 64·256: double quant, "
                           f"≈ 4 + 8/64 + 32/(64·256) bpw) + {rest_txt} = {total:,} B")
        return total, f"{Q:,} × 4 bit + {stats:,} B fp32 absmax (one per 64 weights) + {rest_txt} = {total:,} B"
    if scheme.family in ("gptq", "awq"):
        b, g = int(scheme.bits), scheme.group_size
        # GPTQModel (gptqmodel/nn_modules/qlinear/__init__.py, PackableQuantLinear buffers):
        #   qweight int32 [⌈in·b/32⌉, out], qzeros int32 [⌈in/g⌉, ⌈out·b/32⌉],
        #   scales fp16 [⌈in/g⌉, out], g_idx int32 [in].
        # AutoAWQ GEMM (WQLinear_GEMM): qweight int32 [in, out/8], qzeros int32 [⌈in/g⌉, out/8],
        #   scales fp16 [⌈in/g⌉, out]; no g_idx.
        total = rest
        for din, dout, e in mats:
            groups = -(-din // g)
            if scheme.family == "gptq":
                per = -(-din * b // 32) * dout * 4 + groups * -(-dout * b // 32) * 4 + groups * dout * 2 + din * 4
            else:
                per = din * -(-dout * b // 32) * 4 + groups * -(-dout * b // 32) * 4 + groups * dout * 2
            total += per * e
        extra = " + int32 g_idx per input column" if scheme.family == "gptq" else ""
        return total, (f"Σ linears: in×out×{b} bit + ⌈in/{g}⌉×out×({b} bit zero + 16 bit scale){extra}"
                       f" + {rest_txt} = {total:,} B")
    if scheme.family == "exl2":
        # ExLlamaV2 converter: block linears at the target bpw (scales included), head at 6 bpw (head_bits).
        lin = int(Q * scheme.bits / 8)
        head_params = 0 if arch.tie_word_embeddings else arch.hidden_size * arch.vocab_size
        head = head_params * 6 // 8
        rest_exl = (R - head_params) * 2
        total = lin + head + rest_exl
        return total, (f"{Q:,} × {scheme.bits} bpw + lm_head {head_params:,} × 6 bpw + "
                       f"{R - head_params:,} other params × 2 B = {total:,} B")
    raise EstimatorError("schemes", f"no weight model for {scheme.name}")


def high_precision_tensors(arch: Architecture, scheme: Scheme) -> list[str]:
    """Which tensors the method keeps above its nominal precision (human-readable)."""
    if scheme.name in FLOAT_BYTES:
        return []
    common = ["token_embd (embed_tokens)", "norms", "biases"]
    if arch.is_moe:
        common.append("MoE router (ffn_gate_inp)")
    lm = [] if arch.tie_word_embeddings else ["output (lm_head)"]
    if scheme.family == "float" or scheme.family == "bnb":
        return [t + ": 16-bit" for t in common + lm]
    if scheme.family in ("gptq", "awq"):
        return [t + ": 16-bit" for t in common + lm] + ["per-group scales: fp16"]
    if scheme.family == "exl2":
        return ([t + ": 16-bit" for t in common] + ["(ExLlamaV2 keeps token_embd in system RAM; counted in weights here)"]
                + ([] if arch.tie_word_embeddings else ["output (lm_head): 6 bpw"]))
    return gguf_type_summary(arch, scheme.name)


def gguf_type_summary(arch: Architecture, ftype: str) -> list[str]:
    """Tensor roles whose GGUF type differs from the ftype's base type, e.g. 'attn_v.weight: 10×Q6_K, 20×Q5_0'."""
    return list(_gguf_type_summary(arch, ftype))


@lru_cache(maxsize=1024)
def _gguf_type_summary(arch: Architecture, ftype: str) -> tuple[str, ...]:
    base = GGUF_FTYPES[ftype]
    roles: dict[str, dict[str, int]] = {}
    for name, t, _ in gguf_tensor_plan(arch, ftype):
        role = name.split(".", 2)[2] if name.startswith("blk.") else name
        roles.setdefault(role, {})
        roles[role][t] = roles[role].get(t, 0) + 1
    out = []
    for role, types in roles.items():
        if set(types) != {base}:
            out.append(f"{role}: " + ", ".join(f"{n}×{t}" for t, n in sorted(types.items(), key=lambda kv: -kv[1])))
    return tuple(out)
