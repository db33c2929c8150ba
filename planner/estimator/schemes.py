"""Quantization schemes: weight bytes, bits per weight (two ways), engines, kept-precision tensors.

Which tensors each method quantizes is in quantized_tensors.py (with its sources); everything a
method does not quantize is stored in the 16-bit compute dtype. GGUF files follow llama-quantize's
per-tensor types (gguf_quant.py). The byte layouts of the quantized tensors are cited where they
are computed below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .architecture import Architecture, layer_index
from .errors import EstimatorError
from .ggml_types import GGML_TYPE_SIZES
from .gguf_quant import GGUF_FTYPES, gguf_tensor_plan
from .quantized_tensors import kept_labels, quantized_matrices, quantized_params

FAMILIES = ("float", "bnb", "gptq", "awq", "exl2", "fp4", "gguf")

ENGINES: dict[str, list[str]] = {
    "float": ["transformers", "vLLM", "TGI"],
    "fp8": ["vLLM", "TGI", "transformers"],
    "fp8-block": ["vLLM", "SGLang", "transformers"],
    "bnb": ["transformers", "vLLM", "TGI"],
    "gptq": ["transformers", "vLLM", "TGI"],
    "gptq4": ["transformers", "vLLM", "TGI", "ExLlamaV2"],
    "awq": ["transformers", "vLLM", "TGI"],
    "exl2": ["ExLlamaV2", "TGI"],
    "mxfp4": ["vLLM", "transformers", "SGLang"],
    "nvfp4": ["vLLM", "TensorRT-LLM", "SGLang", "transformers"],  # transformers 5: quantizer_nvfp4.py,
                                                                  # on load, one CUDA GPU, no offload
    "gguf": ["llama.cpp/Ollama"],
}

FLOAT_BYTES = {"FP32": 4, "FP16": 2, "BF16": 2}
BNB_SCHEMES = ("INT8", "INT4", "NF4", "NF4-DQ")
GPTQ_BITS = (2, 3, 4, 8)
AWQ_BITS = (4,)  # AutoAWQ (GEMM/GEMV kernels) only implements 4-bit weights
MICROSCALING = ("FP8-128x128", "MXFP4", "NVFP4")
GGUF_SCHEMES = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_0",
                "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K", "IQ4_XS", "IQ3_XXS", "IQ2_XS", "MXFP4_MOE")
# scheme name -> quantized_tensors method (which tensors it quantizes)
METHOD = {"FP8": "fp8", "FP8-128x128": "fp8-block", "MXFP4": "mxfp4", "NVFP4": "nvfp4",
          **{name: "bnb" for name in BNB_SCHEMES}}


# One line per scheme family member for the UI ("description" in each row).
DESCRIPTIONS: dict[str, str] = {
    "FP32": "full precision, 4 bytes per parameter",
    "FP16": "half precision, 2 bytes per parameter",
    "BF16": "bfloat16, 2 bytes per parameter (the usual training/inference dtype)",
    "FP8": "FP8 E4M3 linear weights with per-channel fp32 scales (llm-compressor FP8 / vLLM)",
    "FP8-128x128": "FP8 E4M3 weights + one fp32 scale per 128×128 block (DeepSeek-V3's checkpoint format)",
    "MXFP4": "OCP MXFP4: 4-bit E2M1 + one E8M0 scale per 32 = 4.25 bpw; MoE: experts only (gpt-oss's format)",
    "NVFP4": "NVFP4: 4-bit E2M1 + one FP8 E4M3 scale per 16 + an fp32 tensor scale ≈ 4.5 bpw (Blackwell)",
    "INT8": "bitsandbytes LLM.int8 (load_in_8bit): int8 weights + fp32 scale per output row",
    "INT4": "bitsandbytes FP4 (load_in_4bit, bnb_4bit_quant_type='fp4'): 4-bit + fp32 absmax per 64",
    "NF4": "bitsandbytes NF4 (load_in_4bit, quant_type='nf4'): 4-bit + fp32 absmax per 64 = 4.5 bpw",
    "NF4-DQ": "bitsandbytes NF4 with double quantization (QLoRA): absmax in 8 bits, ≈ 4.127 bpw",
    "MXFP4_MOE": "GGUF MXFP4_MOE: expert tensors MXFP4 (4.25 bpw), every other matrix Q8_0",
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
    names += list(MICROSCALING)
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
    if name == "FP8-128x128":
        return Scheme(name, "float", 8, engines=tuple(ENGINES["fp8-block"]))
    if name in ("MXFP4", "NVFP4"):
        return Scheme(name, "fp4", 4, engines=tuple(ENGINES[name.lower()]))
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


def method_of(scheme: Scheme) -> str:
    """The quantized_tensors method of a non-GGUF, non-float scheme."""
    return METHOD.get(scheme.name, scheme.family)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _matrix_bytes(scheme: Scheme, din: int, dout: int) -> int:
    """Stored bytes of one quantized din→dout matrix, scales and zeros included."""
    n = din * dout
    name, b, g = scheme.name, int(scheme.bits), scheme.group_size
    if name in ("FP8", "INT8"):
        # FP8: E4M3 + fp32 scale per output channel (llm-compressor FP8 / vLLM); LLM.int8:
        # int8 CB [out, in] + fp32 SCB [out] (bitsandbytes/nn/modules.py Int8Params).
        return n + dout * 4
    if name == "FP8-128x128":
        # DeepSeek-V3 README_WEIGHTS.md: F8_E4M3 weight + F32 weight_scale_inv per 128×128 tile
        return n + _ceil(dout, 128) * _ceil(din, 128) * 4
    if name == "MXFP4":
        # OCP MX v1.0: 32 E2M1 values share one E8M0 scale; gpt-oss stores `*_blocks` (uint8, two
        # values a byte) and `*_scales` (uint8) along the input dimension = ggml block_mxfp4's 17 B.
        return dout * _ceil(din, 32) * 17
    if name == "NVFP4":
        # NVFP4 (llm-compressor / ModelOpt): weight_packed n/2 B, weight_scale FP8 E4M3 per 16
        # inputs, weight_global_scale and input_global_scale fp32 per matrix.
        return n // 2 + dout * _ceil(din, 16) + 8
    if name in ("INT4", "NF4", "NF4-DQ"):
        # bitsandbytes quantize_4bit(blocksize=64) over the flattened weight: n/2 B of codes +
        # ⌈n/64⌉ fp32 absmax; double quant (compress_statistics) makes the absmax uint8
        # (quantize_blockwise, blocksize=256) + ⌈(n/64)/256⌉ fp32 second-level absmax.
        # Checked against transformers 5.23 + bitsandbytes 0.50.2 on a SmolLM2-135M-shaped model.
        blocks = _ceil(n, 64)
        return n // 2 + (blocks + _ceil(blocks, 256) * 4 if name == "NF4-DQ" else blocks * 4)
    if scheme.family == "gptq":
        # GPTQModel (nn_modules/qlinear/__init__.py, PackableQuantLinear): qweight int32 [⌈in·b/32⌉,
        # out], qzeros int32 [⌈in/g⌉, ⌈out·b/32⌉], scales fp16 [⌈in/g⌉, out], g_idx int32 [in].
        groups = _ceil(din, g)
        return _ceil(din * b, 32) * dout * 4 + groups * _ceil(dout * b, 32) * 4 + groups * dout * 2 + din * 4
    if scheme.family == "awq":
        # AutoAWQ GEMM (WQLinear_GEMM): qweight int32 [in, out/8], qzeros int32 [⌈in/g⌉, out/8],
        # scales fp16 [⌈in/g⌉, out]; no g_idx.
        groups = _ceil(din, g)
        return din * _ceil(dout * b, 32) * 4 + groups * _ceil(dout * b, 32) * 4 + groups * dout * 2
    raise EstimatorError("schemes", f"no weight model for {name}")


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
    method = method_of(scheme)
    Q = quantized_params(arch, method)
    R = P - Q
    rest_txt = f"{R:,} params kept 16-bit × 2 B"
    if scheme.family == "exl2":
        # ExLlamaV2 converter: block linears at the target bpw (scales included), head at 6 bpw (head_bits).
        lin = int(Q * scheme.bits / 8)
        head_params = 0 if arch.tie_word_embeddings else arch.hidden_size * arch.vocab_size
        head = head_params * 6 // 8
        total = lin + head + (R - head_params) * 2
        return total, (f"{Q:,} × {scheme.bits} bpw + lm_head {head_params:,} × 6 bpw + "
                       f"{R - head_params:,} other params × 2 B = {total:,} B")
    quantized = sum(_matrix_bytes(scheme, din, dout) * n for _, din, dout, n in quantized_matrices(arch, method))
    total = quantized + R * 2
    return total, (f"{Q:,} quantized weights in {quantized:,} B ({per_weight_formula(scheme)}) + "
                   f"{rest_txt} = {total:,} B")


def per_weight_formula(scheme: Scheme) -> str:
    """The per-weight bits as the format's documentation states them, for one typical matrix."""
    name, b, g = scheme.name, int(scheme.bits), scheme.group_size
    return {
        "FP8": "8 bit + 32 bit per output row", "INT8": "8 bit + 32 bit per output row",
        "FP8-128x128": "8 + 32/(128·128) = 8.002 bpw", "MXFP4": "4 + 8/32 = 4.25 bpw",
        "NVFP4": "4 + 8/16 = 4.5 bpw + 64 bit per matrix", "INT4": "4 + 32/64 = 4.5 bpw",
        "NF4": "4 + 32/64 = 4.5 bpw", "NF4-DQ": "4 + 8/64 + 32/(64·256) ≈ 4.127 bpw",
    }.get(name) or (f"{b} + (16 + {b})/{g} bpw" + (" + 32 bit g_idx per input" if scheme.family == "gptq" else ""))


@dataclass(frozen=True)
class BitsPerWeight:
    quantized: float      # bits per quantized weight, its own scales/zeros included
    model: float          # bits over every parameter, 16-bit tensors included
    quantized_params: int
    formula: str


def bits_per_weight(arch: Architecture, scheme: Scheme) -> BitsPerWeight:
    """Bits per weight two ways: over the weights the scheme quantizes, and over the whole model.

    NF4 block 64 gives 4 + 32/64 = 4.5 per quantized weight, while a model whose embeddings and
    lm_head stay 16-bit shows more over all its parameters. GGUF: the quantized weights are the
    tensors of a quantized ggml type (not F32/F16/BF16). Float schemes: both are the dtype's bits.
    """
    return _bits_cached(arch, scheme)


@lru_cache(maxsize=1024)
def _bits_cached(arch: Architecture, scheme: Scheme) -> BitsPerWeight:
    weights, _ = weights_bytes_and_formula(arch, scheme)
    P = arch.total_params
    model = weights * 8 / P
    if scheme.name in FLOAT_BYTES:
        bits = FLOAT_BYTES[scheme.name] * 8.0
        return BitsPerWeight(bits, bits, P, f"{scheme.name}: {bits:g} bits for each of {P:,} params")
    if scheme.family == "gguf":
        q_bytes = q_params = 0
        params = {name: n for name, _, n in arch.tensors()}
        for name, t, b in gguf_tensor_plan(arch, scheme.name):
            if t not in ("F32", "F16", "BF16") and GGML_TYPE_SIZES[t][0] > 1:
                q_bytes, q_params = q_bytes + b, q_params + params[name]
    else:
        Q = quantized_params(arch, method_of(scheme))
        q_params, q_bytes = Q, weights - (P - Q) * 2
    per = q_bytes * 8 / q_params if q_params else model
    return BitsPerWeight(per, model, q_params,
                         f"{q_bytes:,} B × 8 / {q_params:,} quantized weights = {per:.4f} bpw; "
                         f"{weights:,} B × 8 / {P:,} params = {model:.4f} bpw over the whole model")


def high_precision_tensors(arch: Architecture, scheme: Scheme) -> list[str]:
    """Which tensors the method keeps above its nominal precision (human-readable)."""
    if scheme.name in FLOAT_BYTES:
        return []
    if scheme.family == "gguf":
        return gguf_type_summary(arch, scheme.name)
    kept = ["token_embd (embed_tokens)"] + ([] if arch.tie_word_embeddings else ["output (lm_head)"])
    kept += ["norms", "biases", *kept_labels(arch, method_of(scheme))]
    if scheme.family == "exl2":
        return ([t + ": 16-bit" for t in kept if t != "output (lm_head)"]
                + ["(ExLlamaV2 keeps token_embd in system RAM; counted in weights here)"]
                + ([] if arch.tie_word_embeddings else ["output (lm_head): 6 bpw"]))
    out = [t + ": 16-bit" for t in kept]
    if scheme.family in ("gptq", "awq"):
        out.append("per-group scales: fp16")
    return out


def gguf_type_summary(arch: Architecture, ftype: str) -> list[str]:
    """Tensor roles whose GGUF type differs from the ftype's base type, e.g. 'attn_v.weight: 10×Q6_K, 20×Q5_0'."""
    return list(_gguf_type_summary(arch, ftype))


@lru_cache(maxsize=1024)
def _gguf_type_summary(arch: Architecture, ftype: str) -> tuple[str, ...]:
    base = GGUF_FTYPES[ftype]
    roles: dict[str, dict[str, int]] = {}
    for name, t, _ in gguf_tensor_plan(arch, ftype):
        role = name.split(".", 2)[2] if layer_index(name) is not None else name
        roles.setdefault(role, {})
        roles[role][t] = roles[role].get(t, 0) + 1
    out = []
    for role, types in roles.items():
        if set(types) != {base}:
            out.append(f"{role}: " + ", ".join(f"{n}×{t}" for t, n in sorted(types.items(), key=lambda kv: -kv[1])))
    return tuple(out)
