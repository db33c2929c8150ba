"""llama.cpp's repacked CPU weights: which tensors ggml-cpu copies into its CPU_REPACK buffer.

On the CPU backend llama.cpp offers each weight an "extra" buffer type before the plain CPU one
(llama-model.cpp `make_cpu_buft_list`: ACCEL → host → CPU extra → CPU) and keeps the first that
supports the op the weight is used in (llama-model-loader.cpp `select_weight_buft` /
`weight_buft_supported`, with the op from llama-arch.cpp `LLM_TENSOR_INFOS`). The repack type
(ggml/src/ggml-cpu/repack.cpp, `extra_buffer_type::supports_op`) takes
  * MUL_MAT weights that are 2-D (attention and FFN projections, shared experts, the output
    layer — also the token-embedding duplicate that a tied model uses as its output), and
  * MUL_MAT_ID weights that are 3-D (the stacked experts, ffn_*_exps),
when `ggml_repack_get_optimal_repack_type` has a layout for the type and row count ne[1]:
  x86 with AVX2 (this project's build: -DGGML_NATIVE=OFF AVX/AVX2/FMA/F16C/BMI2, no AVX-512):
      Q4_0 → 8x8, Q4_K → 8x8, IQ4_NL → 8x8, MXFP4 → 8x8, each when ne[1] % 8 == 0
      (Q2_K needs AVX-512; Q8_0, Q5_K, Q6_K have no x86 layout);
  ARM with NEON + dotprod + i8mm (phones, Apple CPUs when the CPU backend runs):
      Q4_0 4x8, IQ4_NL 4x4, MXFP4 4x4, Q8_0 4x8 when ne[1] % 4 == 0; Q4_K, Q5_K, Q6_K 8x8 when
      ne[1] % 8 == 0.
token_embd is read with GET_ROWS and stays in the mmap'd file; 3-D MUL_MAT weights (DeepSeek's
attn_k_b / attn_v_b) and 1-D tensors are never repacked. Sources: llama-cpp-python 0.3.36's
vendored llama.cpp.

The repacked copy is allocated (ggml_backend_alloc_ctx_tensors_from_buft: each tensor padded to
the 32-byte TENSOR_ALIGNMENT) in addition to the file mapping: "CPU_Mapped model buffer" spans
the file from the first to the last tensor that stays mapped (llama_model_loader
`get_mapping_range`), so with mmap the model buffers add up to ≈ the file's tensor data plus the
repacked bytes, and the repacked tensors' file pages are read (resident) once at load.
"""

from __future__ import annotations

from functools import lru_cache

from .architecture import Architecture
from .gguf_quant import gguf_tensor_plan

TENSOR_ALIGNMENT = 32
ISAS = ("x86-avx2", "arm-i8mm")
# The CPU a hardware kind runs llama.cpp's CPU backend on (GPU and Apple kinds keep weights in VRAM/Metal).
CPU_ISA = {"cpu": "x86-avx2", "phone": "arm-i8mm"}
# type -> ne[1] multiple that has a repack layout
REPACK_ROWS: dict[str, dict[str, int]] = {
    "x86-avx2": {"Q4_0": 8, "Q4_K": 8, "IQ4_NL": 8, "MXFP4": 8},
    "arm-i8mm": {"Q4_0": 4, "IQ4_NL": 4, "MXFP4": 4, "Q8_0": 4, "Q4_K": 8, "Q5_K": 8, "Q6_K": 8},
}


def _pad(n: int) -> int:
    return -(-n // TENSOR_ALIGNMENT) * TENSOR_ALIGNMENT


def used_in_matmul(name: str, n_dims: int) -> bool:
    """The weight is src0 of a 2-D MUL_MAT or a 3-D MUL_MAT_ID (LLM_TENSOR_INFOS ops)."""
    if not name.endswith(".weight") or name == "token_embd.weight" or "norm" in name:
        return False
    if "_exps." in name:
        return n_dims == 3
    return n_dims == 2


def is_repacked(name: str, ggml_type: str, shape: tuple[int, ...], isa: str = "x86-avx2") -> bool:
    rows = REPACK_ROWS[isa].get(ggml_type)
    return rows is not None and used_in_matmul(name, len(shape)) and len(shape) > 1 and shape[1] % rows == 0


@lru_cache(maxsize=512)
def repacked_tensors(arch: Architecture, ftype: str, isa: str = "x86-avx2") -> tuple[tuple[str, str, int], ...]:
    """[(tensor, type, bytes)] of the CPU_REPACK buffer for `arch` quantized as `ftype`."""
    shapes = {name: shape for name, shape, _ in arch.tensors()}
    out = []
    for name, ggml_type, nbytes in gguf_tensor_plan(arch, ftype):
        if is_repacked(name, ggml_type, shapes[name], isa):
            out.append((name, ggml_type, _pad(nbytes)))
        if name == "token_embd.weight" and arch.tie_word_embeddings:
            # a tied model's output layer is token_embd loaded a second time (TENSOR_DUPLICATED, MUL_MAT)
            if is_repacked("output.weight", ggml_type, shapes[name], isa):
                out.append(("output.weight (tied token_embd)", ggml_type, _pad(nbytes)))
    return tuple(out)


def repack_bytes(arch: Architecture, ftype: str, isa: str = "x86-avx2") -> tuple[int, str]:
    """Bytes of llama.cpp's CPU_REPACK model buffer, with a formula listing what goes there."""
    tensors = repacked_tensors(arch, ftype, isa)
    total = sum(b for _, _, b in tensors)
    if not tensors:
        return 0, f"{ftype} on {isa}: no tensor has a repack layout (CPU_REPACK buffer 0 B)"
    by_type: dict[str, tuple[int, int]] = {}
    for _, t, b in tensors:
        n, s = by_type.get(t, (0, 0))
        by_type[t] = (n + 1, s + b)
    parts = ", ".join(f"{n} {t} matmul weights {s:,} B" for t, (n, s) in sorted(by_type.items()))
    return total, (f"llama.cpp CPU_REPACK copy ({isa}, rows a multiple of the layout): {parts} = {total:,} B "
                   f"(besides the mmap'd file)")



def mapped_bytes(arch: Architecture, ftype: str, isa: str = "x86-avx2") -> int:
    """llama.cpp's "CPU_Mapped model buffer size": the file span from the first to the end of the last
    tensor that is not repacked (llama_model_loader::get_mapping_range), in llama-quantize's tensor
    order (gguf_tensor_plan's) with each tensor's data aligned to 32 bytes (GGUF_DEFAULT_ALIGNMENT)."""
    repacked = {name for name, _, _ in repacked_tensors(arch, ftype, isa)}
    offset, first, last = 0, None, 0
    for name, _, nbytes in gguf_tensor_plan(arch, ftype):
        if name not in repacked:
            first = offset if first is None else first
            last = offset + nbytes
        offset += _pad(nbytes)
    return last - (first or 0)
