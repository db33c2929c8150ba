"""fit(): choose llama.cpp arguments that fit a model on the GPU(s), like `llama-server --fit` / Ollama.

Order of choices (llama.cpp's --fit shrinks the context down to --fit-ctx first, then offloads):
  1. everything on the device(s): the largest context — a power of two ≥ 1024 or the model's
     max_position_embeddings (at most the longest context a workload may ask for, workload.py
     MAX_CONTEXT) — no smaller than the workload's context that fits the capacity;
  2. else, at the workload's context, MoE models move the expert tensors (blk.N.ffn_*_exps) of the
     first N layers to system RAM (`--n-cpu-moe N`: llama.cpp common/arg.cpp "keep the MoE weights
     of the first N layers in the CPU"), attention, norms, router and shared experts stay on GPU;
  3. else (or if all experts in RAM is still too much) whole layers go to RAM, the first layers
     first (`-ngl`: llama.cpp keeps the last n_gpu_layers on the GPU, llama-model.cpp i_gpu_start).
A hybrid's KV cache sits on its attention layers and its recurrent state on its recurrent layers,
each moving with its layer (memory.layer_cache_bytes).
Capacity and fixed costs are those of estimate() (capacity = usable × 0.95, 500 MiB CUDA context per
device, compute buffer once); the token-embedding matrix is counted on the device although
llama.cpp keeps it in RAM, so the fit errs on the safe side.
`-ngl` counts the output layer as one more layer (n_gpu_layers > n_layer puts it on the GPU), so
k repeating layers on the GPU is `-ngl k+1`; all of them is `-ngl 99` (or n_layer + 1 if larger).
Multi-GPU: `-ts` proportional to device memory (whole GiB); layers split in that ratio (layer
split, the default -sm layer); the output layer and compute buffer are counted on the last device.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from .architecture import Architecture, layer_index
from .errors import EstimatorError
from .estimate import Estimate
from .gguf_quant import gguf_tensor_plan
from .hardware import GB, GiB, Hardware
from .cpu_process import llama_cpp_resident
from .memory import compute_bytes, kv_cache_bytes, layer_cache_bytes, overhead_bytes, recurrent_bytes
from .repack import CPU_ISA, repack_bytes
from .speed import BANDWIDTH_EFFICIENCY, PER_LAYER_STEP_SECONDS
from .workload import Workload, context_limit

CAPACITY_MARGIN = 0.95          # as estimate.py
RAM_MARGIN = 0.9                # as estimate.py
# Host RAM bandwidth when a profile has none: dual-channel DDR5-5000 ≈ 80 GB/s peak.
DEFAULT_RAM_BANDWIDTH = 80 * GB
MIN_CONTEXT_STEP = 1024
QUALITY_FLOOR_BPW = 4.5
# Architectures whose checkpoints are quantized already: the GGUF that keeps that format
# (gpt-oss: ggml-org/gpt-oss-20b-GGUF is MXFP4_MOE, llama-quant.cpp LLAMA_FTYPE_MOSTLY_MXFP4_MOE)
NATIVE_GGUF = {"gpt-oss": "MXFP4_MOE"}


@dataclass
class Fit:
    scheme: str
    context: int
    n_layers: int
    gpu_layers: int                 # repeating layers on the GPU(s)
    ngl: int                        # the -ngl value (gpu_layers + output layer)
    n_cpu_moe: int
    tensor_split: list[int]
    devices: list[dict[str, int]]   # per device: model_bytes, kv_bytes, recurrent_state_bytes, compute_bytes,
                                    # overhead_bytes, total_bytes
    system_ram_bytes: int
    fits: bool                      # device(s) and system RAM hold it
    fully_on_device: bool
    decode_tokens_per_s: float
    reasons: list[str] = field(default_factory=list)
    command: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Layers:
    weights: list[int]      # per repeating layer, all tensors
    experts: list[int]      # per repeating layer, the ffn_*_exps tensors only
    non_layer: int          # embeddings, output, final norm
    repack: int = 0         # CPU_REPACK copy on CPU-only hardware (repack.py)


@lru_cache(maxsize=256)
def _layers(arch: Architecture, scheme: str, hw: Hardware) -> _Layers:
    L = arch.n_layers
    weights, experts, non_layer = [0] * L, [0] * L, 0
    for name, _, b in gguf_tensor_plan(arch, scheme):
        i = layer_index(name)
        if i is None:
            non_layer += b
            continue
        weights[i] += b
        if "_exps." in name:
            experts[i] += b
    repack = repack_bytes(arch, scheme, CPU_ISA[hw.kind])[0] if hw.kind in CPU_ISA else 0
    return _Layers(weights, experts, non_layer, repack)


def context_steps(wl_context: int, max_position: int) -> list[int]:
    """Candidate contexts ≥ the workload's: powers of two from 1024, and max_position itself — or,
    where max_position is beyond the longest context a workload may ask for, that limit."""
    max_position = context_limit(max_position)[0]
    steps, c = [], MIN_CONTEXT_STEP
    while c < max_position:
        if c >= wl_context:
            steps.append(c)
        c *= 2
    if max_position >= wl_context:
        steps.append(max_position)
    return steps


def model_file(arch: Architecture, scheme: str) -> str:
    """A file name safe to paste into a shell: letters, digits, '.', '_' and '-' only."""
    slug = "-".join(re.sub(r"[^A-Za-z0-9._-]+", " ", arch.name).split()) or "model"
    return f"{slug}-{scheme}.gguf"


def fit(arch: Architecture, hw: Hardware, wl: Workload, scheme: str, n_cpu_moe: int | None = None) -> Fit:
    """Solve for one GGUF scheme; `n_cpu_moe` overrides the expert-offload choice (0..n_layers)."""
    if wl.runtime != "llama.cpp" or wl.mode != "inference":
        raise EstimatorError("runtime", "the fit solver plans llama.cpp inference")
    L = arch.n_layers
    if n_cpu_moe is not None and (isinstance(n_cpu_moe, bool) or not isinstance(n_cpu_moe, int)
                                  or not 0 <= n_cpu_moe <= L):
        raise EstimatorError("n_cpu_moe", f"must be an integer from 0 to {L}")
    layers = _layers(arch, scheme, hw)
    # a CPU process is sized as peak RSS, as estimate() does (cpu_process.py)
    overhead = llama_cpp_resident(arch, wl)[1] if hw.kind in CPU_ISA else overhead_bytes(hw, wl)[0]
    per_capacity = int(hw.usable_memory_bytes // hw.device_count * CAPACITY_MARGIN)
    gpu = hw.kind in ("gpu", "apple")
    reasons: list[str] = []
    limit, limit_note = context_limit(arch.max_position_embeddings)

    placed: dict[tuple[int, int, int], tuple[list[dict[str, int]], int, int]] = {}

    def place(ctx: int, k: int, m: int) -> tuple[list[dict[str, int]], int, int]:
        if (ctx, k, m) not in placed:   # the searches below ask for the same placements again
            placed[ctx, k, m] = _placement(arch, wl, hw, layers, ctx, k, m, overhead)
        return placed[ctx, k, m]

    def fits_on(ctx: int, k: int, m: int) -> bool:
        return all(d["total_bytes"] <= per_capacity for d in place(ctx, k, m)[0])

    context, k, m = wl.context, L, 0
    if not gpu:
        k = 0
        reasons.append(f"{hw.kind}: no GPU, every layer runs on the CPU (-ngl 0)")
        if layers.repack:
            reasons.append(f"llama.cpp's CPU backend repacks {layers.repack:,} B of {scheme} matmul weights into its "
                           f"CPU_REPACK buffer, on top of the mmap'd file")
    elif n_cpu_moe is None:
        fitting = [c for c in context_steps(wl.context, arch.max_position_embeddings) if fits_on(c, L, 0)]
        if fitting:
            context = fitting[-1]
            reasons.append(f"everything fits on the device: the largest context ≤ {limit:,} "
                           f"positions (powers of two from {wl.context:,}) that fits is {context:,}")
            if limit_note:
                reasons.append(limit_note)
        elif wl.context > arch.max_position_embeddings and fits_on(wl.context, L, 0):
            reasons.append(f"everything fits on the device at the {wl.context:,} context asked for, which is beyond "
                           f"the model's {arch.max_position_embeddings:,} trained positions (llama.cpp warns; "
                           "extend with rope scaling such as YaRN where the model card allows it)")
        else:
            need = max(d["total_bytes"] for d in place(wl.context, L, 0)[0])
            reasons.append(f"with a {wl.context:,} context the model needs {need:,} B on a device, over its "
                           f"{per_capacity:,} B capacity (usable × {CAPACITY_MARGIN})")
            if arch.is_moe:   # device bytes fall as m grows: the smallest m that fits, by bisection
                m = _first(0, L, lambda n: fits_on(context, L, n))
    else:
        m = n_cpu_moe
        reasons.append(f"--n-cpu-moe {m}: set by hand")
    if gpu and not fits_on(context, k, m):   # fewer GPU layers need less: the most that fit, by bisection
        k = L - _first(0, L, lambda drop: drop == L or fits_on(context, L - drop, m))
    devices, ram, (kv_per, state_per) = place(context, k, m)
    if gpu and m and arch.is_moe and n_cpu_moe is None:
        reasons.append(f"MoE: the expert tensors (ffn_*_exps) of the first {m} of {L} layers go to system RAM "
                       f"({sum(layers.experts[:m]):,} B); attention, router and shared experts stay on the GPU")
    if gpu and k < L:
        if arch.hybrid is None:
            theirs, cache = "KV", f"{max(kv_per):,} B KV"
        else:
            theirs = "KV or recurrent state"
            cache = (f"{max(kv_per):,} B KV on each of {arch.kv_layers} attention layers, {max(state_per):,} B "
                     f"recurrent state on each of {len(arch.hybrid.recurrent_layers)} recurrent layers")
        reasons.append(f"{L - k} of {L} layers (weights + their {theirs}) go to system RAM; {k} stay on the GPU, "
                       f"each ~{max(layers.weights):,} B weights + {cache}")
    ram_limit = int(hw.ram_bytes * RAM_MARGIN) if hw.kind == "gpu" else 0
    if gpu:
        fits = ram <= ram_limit and k > 0 and fits_on(context, k, m)
    else:
        fits = sum(d["total_bytes"] for d in devices) + ram <= per_capacity
    if gpu and ram > ram_limit:
        reasons.append(f"system RAM: {ram:,} B needed, over {RAM_MARGIN:.0%} of {hw.ram_bytes:,} B — doesn't fit")
    elif ram:
        reasons.append(f"system RAM holds {ram:,} B")
    if gpu and k == 0:
        reasons.append("not even one layer fits on the device")
    ts = [round(hw.memory_bytes / GiB)] * hw.device_count if hw.device_count > 1 else []
    if ts:
        reasons.append(f"{hw.device_count} devices: -ts {','.join(map(str, ts))} splits the layers in proportion "
                       f"to device memory ({ts[0]} GiB each); each device needs ≤ {per_capacity:,} B")
    tps, tps_reason = _decode_tps(arch, hw, layers, k if gpu else 0, m, [a + b for a, b in zip(kv_per, state_per)])
    reasons.append(tps_reason)
    reasons.extend(_flag_notes(wl))
    ngl = (99 if L + 1 <= 99 else L + 1) if k == L else (k + 1 if k else 0)
    result = Fit(scheme=scheme, context=context, n_layers=L, gpu_layers=k, ngl=ngl if gpu else 0, n_cpu_moe=m,
                 tensor_split=ts, devices=devices, system_ram_bytes=ram, fits=fits,
                 fully_on_device=gpu and k == L and m == 0, decode_tokens_per_s=round(tps, 2), reasons=reasons)
    result.command = command(arch, wl, result)
    return result


def _first(lo: int, hi: int, ok) -> int:
    """The smallest n in [lo, hi] with ok(n) for a monotone ok (hi when none)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _placement(arch: Architecture, wl: Workload, hw: Hardware, layers: _Layers, ctx: int, k: int, m: int,
               overhead: int) -> tuple[list[dict[str, int]], int, tuple[list[int], list[int]]]:
    """Per-device bytes and RAM bytes with the last k layers on the GPU(s), the experts of the first
    m layers in RAM. With n equal devices llama.cpp gives unit j of the k + 1 GPU units (layers, then
    the output layer) to device j·n // (k + 1) (llama-model.cpp: upper_bound over the cumulative
    split fractions). Each device reserves a compute buffer (counted whole on every device: safe).
    Also returns each layer's KV and recurrent state (memory.layer_cache_bytes).
    """
    L, n = arch.n_layers, hw.device_count
    kv_per, state_per = layer_cache_bytes(arch, kv_cache_bytes(arch, wl, ctx)[0], recurrent_bytes(arch, wl)[0])
    if hw.kind in CPU_ISA:
        compute = compute_bytes(arch, wl, ctx, n_outputs=wl.batch)[0]
    else:
        compute = compute_bytes(arch, wl, ctx)[0] if k else 0
    devices = [{"model_bytes": 0, "kv_bytes": 0, "recurrent_state_bytes": 0, "compute_bytes": compute,
                "overhead_bytes": overhead // n} for _ in range(n)]
    ram = 0
    for i in range(L):
        if i < L - k:
            ram += layers.weights[i] + kv_per[i] + state_per[i]
            continue
        moved = layers.experts[i] if i < m else 0
        d = devices[min(n - 1, (i - (L - k)) * n // (k + 1))]
        d["model_bytes"] += layers.weights[i] - moved
        d["kv_bytes"] += kv_per[i]
        d["recurrent_state_bytes"] += state_per[i]
        ram += moved
    if k:
        devices[-1]["model_bytes"] += layers.non_layer
    else:
        ram += layers.non_layer
    if hw.kind in CPU_ISA:   # llama.cpp's CPU backend also keeps a repacked copy of some weights (repack.py)
        ram += layers.repack
    for d in devices:
        d["total_bytes"] = (d["model_bytes"] + d["kv_bytes"] + d["recurrent_state_bytes"] + d["compute_bytes"]
                            + d["overhead_bytes"])
    return devices, ram, (kv_per, state_per)


def _decode_tps(arch: Architecture, hw: Hardware, layers: _Layers, k: int, m: int,
                cache: list[int]) -> tuple[float, str]:
    """Bytes read per token from each memory over its bandwidth (decode is memory-bound); `cache`
    is each layer's KV and recurrent state.

    A MoE layer reads n_experts_per_tok / n_experts of its expert bytes. With layer split the
    devices run one after another, so VRAM reads go at one device's bandwidth.
    """
    L = arch.n_layers
    share = arch.n_experts_per_tok / arch.n_experts if arch.is_moe else 1.0
    vram = float(layers.non_layer)
    ram = 0.0
    for i in range(L):
        exp = layers.experts[i]
        active = layers.weights[i] - exp + exp * share
        if i < L - k:
            ram += active + cache[i]
        elif i < m:
            vram += layers.weights[i] - exp + cache[i]
            ram += exp * share
        else:
            vram += active + cache[i]
    dev_bw = hw.bandwidth_bytes_per_s * BANDWIDTH_EFFICIENCY[hw.kind]
    if hw.kind in ("cpu", "phone"):   # the device memory is the system RAM
        raw_ram_bw = hw.bandwidth_bytes_per_s
    else:
        raw_ram_bw = hw.ram_bandwidth or DEFAULT_RAM_BANDWIDTH
    ram_bw = raw_ram_bw * BANDWIDTH_EFFICIENCY["cpu"]
    t = vram / dev_bw + ram / ram_bw + L * PER_LAYER_STEP_SECONDS["llama.cpp"]
    tps = 1 / t
    return tps, (f"decode ≈ 1 / ({vram:,.0f} B / {dev_bw / 1e9:,.0f} GB/s VRAM + {ram:,.0f} B / "
                 f"{ram_bw / 1e9:,.0f} GB/s RAM{' (assumed DDR5 80 GB/s)' if raw_ram_bw == DEFAULT_RAM_BANDWIDTH else ''} + "
                 f"{L} × 10 µs) = {tps:,.1f} tok/s")


def _flag_notes(wl: Workload) -> list[str]:
    notes = [f"-fa {'on' if wl.flash_attn else 'off'}: flash attention as in the workload"]
    if wl.kv_dtype != "f16":
        notes.append(f"-ctk/-ctv {wl.kv_dtype}: the workload's KV cache type")
        if not wl.flash_attn:
            notes.append("llama.cpp needs flash attention for a quantized V cache: turn it on")
    return notes


def command(arch: Architecture, wl: Workload, f: Fit) -> str:
    """The llama-server arguments (flag spellings of llama.cpp tools/server/README.md)."""
    parts = ["llama-server", "-m", model_file(arch, f.scheme), "-c", str(f.context * wl.batch)]
    if wl.batch > 1:
        parts += ["-np", str(wl.batch)]
    parts += ["-ngl", str(f.ngl)]
    if f.n_cpu_moe:
        parts += ["--n-cpu-moe", str(f.n_cpu_moe)]
    parts += ["-fa", "on" if wl.flash_attn else "off"]
    if wl.kv_dtype != "f16":
        parts += ["-ctk", wl.kv_dtype, "-ctv", wl.kv_dtype]
    if f.tensor_split:
        parts += ["-ts", ",".join(map(str, f.tensor_split))]
    return " ".join(parts)


def choose_scheme(est: Estimate, requested: str = "") -> tuple[str | None, str]:
    """The GGUF scheme to fit: `requested`, else the highest-precision one that fits fully down to
    Q4_K_M (below ~4.5 bpw quality drops fast: llama.cpp's quantize README perplexity table),
    else Q4_K_M with offload, else the first that runs at all."""
    rows = [r for r in est.rows if r["family"] == "gguf" and r["supported"]]
    if requested:
        if any(r["scheme"] == requested for r in rows):
            return requested, f"{requested}: chosen by hand"
        raise EstimatorError("fit_scheme", f"{requested!r} is not a GGUF scheme of this plan")
    native = next((r for r in rows if r["scheme"] == NATIVE_GGUF.get(est.model.arch) and r["runs_with_offload"]),
                  None)
    if native:
        return native["scheme"], (f"{native['scheme']}: {est.model.arch}'s own format (its experts ship in MXFP4; "
                                  "re-quantizing them to a k-quant loses precision and saves nothing)")
    full = [r for r in rows if r["fits"] and r["bits_per_weight"] >= QUALITY_FLOOR_BPW]
    if full:
        return full[0]["scheme"], f"{full[0]['scheme']}: the highest-precision GGUF that fits fully"
    q4 = next((r for r in rows if r["scheme"] == "Q4_K_M" and r["runs_with_offload"]), None)
    if q4:
        return "Q4_K_M", "Q4_K_M: nothing at ≥ 4.5 bpw fits fully, so Q4_K_M with offload"
    runs = [r for r in rows if r["runs_with_offload"]]
    if runs:
        return runs[0]["scheme"], f"{runs[0]['scheme']}: the highest-precision GGUF that runs"
    return None, "no GGUF scheme fits the device and system RAM"


def fit_estimate(est: Estimate, requested: str = "", n_cpu_moe: int | None = None) -> Fit | None:
    """fit() for an Estimate's llama.cpp inference plan (None for other runtimes or training)."""
    wl = est.workload
    if wl.runtime != "llama.cpp" or wl.mode != "inference":
        return None
    scheme, why = choose_scheme(est, requested)
    if scheme is None:
        return None
    result = fit(est.model, est.hardware, wl, scheme, n_cpu_moe)
    result.reasons.insert(0, why)
    return result
