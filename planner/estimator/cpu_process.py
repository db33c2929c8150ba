"""What a CPU-only inference process holds in RAM besides weights and KV: peak RSS, modelled.

On a CPU nothing is committed until it is touched, so the planner's CPU total follows peak RSS
(VmHWM) rather than the allocations llama.cpp logs:
  * llama.cpp reserves its compute buffer for n_ubatch logits rows (memory.py), but generation
    asks for one row per sequence, so only that graph's pages are touched: the compute counted in
    the total is `compute_bytes(..., n_outputs=batch)` (the logged figure stays in compute_bytes);
  * ggml-cpu's work buffer, which llama.cpp does not log (`cpu_work_bytes`);
  * the process itself — interpreter, shared libraries, the GGUF header and tokenizer, loader
    structures — measured by bench/estimator_accuracy.py as peak RSS minus everything above, for
    SmolLM2-135M (F16/Q8_0/Q4_K_M, contexts 512-8192, KV f16/q8_0) and the tiny MoE/MLA/SWA models.
transformers on a CPU: the process (torch, transformers, tokenizers imported) plus the
safetensors checkpoint, whose mmap'd pages are resident while from_pretrained copies them into
the model's tensors — the load peak that dominates peak RSS for a short prompt.
"""

from __future__ import annotations

from dataclasses import replace

from .architecture import Architecture
from .memory import compute_bytes, llama_cpp_kv_cells
from .workload import Workload

MiB = 2**20
# bench/estimator_accuracy.py "measured llama.cpp process overhead": peak RSS − (file tensors +
# repack + KV/recurrent state + touched compute + work buffer) in llama-cpp-python 0.3.36 processes:
# median 75.6 MiB, 73.1-82.8 MiB over the demo model's runs and the tiny MoE/MLA/SWA/hybrid models,
# 89.8 for the tiny Qwen3-Next (its delta-net graph touches more compute than the phases modelled).
# About 51 MiB is the interpreter with llama_cpp imported (rss_base); the rest the GGUF header and
# vocabulary, ggml contexts and the llama_cpp.Llama object.
LLAMA_CPP_PROCESS_BYTES = 76 * MiB
# bench/estimator_accuracy.py, transformers 5.23 + torch CPU: the child's RSS with torch and
# transformers imported, before from_pretrained (rss_base: 571.0-571.5 MiB in all 10 runs of
# 2026-12-02; an earlier bench session on the same machine read 629.2-629.5 MiB, so allow for
# ±60 MiB between environments).
TRANSFORMERS_PROCESS_BYTES = 571 * MiB


def cpu_work_bytes(arch: Architecture, wl: Workload, context: int | None = None) -> tuple[int, str]:
    """ggml-cpu's work buffer (`cplan.work_size`, malloc'd by ggml_backend_cpu_graph_compute and kept).

    ggml-cpu.c `ggml_graph_plan` sizes it for the node that needs most scratch. Without flash
    attention that is kqv = mul_mat(V, KQ): V is f16 (its vec_dot_type), so the f32 scores
    [n_kv, n_ubatch, n_head] are converted to f16 there: n_kv × n_ubatch × n_head × 2 B. With
    flash attention the per-thread tiles are a few KiB (counted as 0).
    """
    if wl.flash_attn:
        return 0, "flash attention: ggml-cpu work buffer of per-thread tiles only (a few KiB) = 0 B"
    ctx = wl.context if context is None else context
    at = wl if ctx == wl.context else replace(wl, context=ctx, notes=())
    ub = min(wl.n_ubatch, ctx * wl.batch)
    n_kv = llama_cpp_kv_cells(arch, at) // wl.batch
    total = n_kv * ub * arch.n_heads * 2
    return total, (f"ggml-cpu work buffer (KQ as f16 for V·KQ): {n_kv:,} n_kv × {ub} ubatch × {arch.n_heads} heads "
                   f"× 2 B = {total:,} B")


def llama_cpp_resident(arch: Architecture, wl: Workload, context: int | None = None) -> tuple[int, int, str]:
    """(touched compute, overhead = process + work buffer, formula) of a llama.cpp CPU process."""
    compute, _ = compute_bytes(arch, wl, context, n_outputs=wl.batch)
    work, work_f = cpu_work_bytes(arch, wl, context)
    overhead = LLAMA_CPP_PROCESS_BYTES + work
    return compute, overhead, (f"{LLAMA_CPP_PROCESS_BYTES // MiB} MiB llama-cpp-python process (measured, "
                               f"bench/estimator_accuracy.py) + {work_f} = {overhead:,} B")


def transformers_overhead(checkpoint_bytes: int, quantized_at_load: bool) -> tuple[int, str]:
    """Overhead of a transformers CPU process loading a safetensors checkpoint of `checkpoint_bytes`.

    The checkpoint's pages are resident while from_pretrained copies them into the model; a
    bitsandbytes load (INT8/NF4/FP4) also materialises each weight in 16 bits before quantizing it
    (the 16-bit staging copy, the checkpoint's size again).
    """
    staging = checkpoint_bytes if quantized_at_load else 0
    total = TRANSFORMERS_PROCESS_BYTES + checkpoint_bytes + staging
    return total, (f"{TRANSFORMERS_PROCESS_BYTES // MiB} MiB torch/transformers process (measured, "
                   f"bench/estimator_accuracy.py) + {checkpoint_bytes:,} B checkpoint pages mmap'd while loading"
                   f"{f' + {staging:,} B 16-bit staging copy for bitsandbytes' if staging else ''} = {total:,} B")
