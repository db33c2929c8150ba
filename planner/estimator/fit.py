"""fit(): choose llama.cpp arguments that fit a model on the GPU(s), like `llama-server --fit` / Ollama.

Order of choices (llama.cpp's --fit shrinks the context down to --fit-ctx first, then offloads):
  1. everything on the device(s): the largest context — a power of two ≥ 1024 or the model's
     max_position_embeddings (at most the longest context a workload may ask for, workload.py
     MAX_CONTEXT) — no smaller than the workload's context that fits the capacity;
  2. else, at the workload's context, MoE models move the expert tensors (blk.N.ffn_*_exps) of the
     first N layers to system RAM (`--n-cpu-moe N`: llama.cpp common/arg.cpp "keep the MoE weights
     of the first N layers in the CPU"), attention, norms, router and shared experts stay on GPU;
     where that is tighter (more bytes stay on the GPUs), the experts of N layers and only some
     of block N's expert tensors (`--n-cpu-moe N -ot 'blk\\.N\\.ffn_(up|down)_exps=CPU'`: llama.cpp
     common/arg.cpp --override-tensor), each tensor's bytes from the scheme's GGUF tensor plan;
  3. else whole layers go to RAM, the first layers first (`-ngl`: llama.cpp keeps the last
     n_gpu_layers on the GPU, llama-model.cpp i_gpu_start), with the fewest expert bytes in RAM
     that the remaining GPU layers need.
Steps 2 and 3 are one search (placement.py) over -ngl, --n-cpu-moe, -ot and -ts together, against
every device's capacity and the system RAM budget: the most GPU units, then the fewest expert bytes
in RAM, on the split that evens the devices' fill; a hand-set --n-cpu-moe means whole layers only.
It finds a placement whenever one exists (checked against brute force in
tests/planner/test_fit_search.py); when none does, the reasons give the nearest fixes (more RAM,
more device memory, a smaller context; fit_estimate adds a smaller scheme).
A hybrid's KV cache sits on its attention layers and its recurrent state on its recurrent layers,
each moving with its layer (memory.layer_cache_bytes).
Capacity and fixed costs are those of estimate() (capacity = usable × 0.95 per device, 500 MiB CUDA
context per device, a compute buffer on every device once anything is offloaded: safe); the
token-embedding matrix travels with the output layer (on the device that holds it, or in RAM),
although llama.cpp keeps it in RAM, so the fit errs on the safe side.
`-ngl` counts the output layer as one more layer, the first to go on a GPU (llama-model.cpp as
vendored by llama-cpp-python 0.3.36: i_gpu_start = max(n_layer_all + 1 − n_gpu_layers, 0), the last
n_gpu_layers units of blocks-then-output), so k repeating layers on the GPU is `-ngl k+1` (plus the
MTP blocks a Qwen3-Next or GLM-4.5 GGUF keeps after its layers, which count but are not loaded);
all of them is `-ngl 99` (or n_layer_all + 1 if larger).
Multi-GPU (layer split, the default -sm layer): `-ts` is written as each device's number of GPU
units, which llama.cpp's cumulative split fractions turn into exactly those units (placement.py).
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from .architecture import Architecture, layer_index
from .errors import EstimatorError
from .estimate import Estimate
from .gguf_quant import gguf_tensor_plan
from .hardware import GiB, Hardware
from .cpu_process import llama_cpp_resident
from .memory import compute_bytes, kv_cache_bytes, layer_cache_bytes, overhead_bytes, recurrent_bytes
from .placement import (Costs, Placement, balanced, device_fits, first_true, gpu_units, ram_bytes, ram_needed,
                        search, vram_needed)
from .repack import CPU_ISA, repack_bytes
from .speed import decode_rate, expert_share
from .workload import Workload, context_limit

CAPACITY_MARGIN = 0.95          # as estimate.py
RAM_MARGIN = 0.9                # as estimate.py
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
    decode_tokens_per_s: float | None   # None: no measured or cited figure covers it (decode_withheld)
    reasons: list[str] = field(default_factory=list)
    command: str = ""
    command_note: str = ""          # what to substitute in `command` before running it
    output_on_device: bool = False  # -ngl ≥ 1: the output layer is llama.cpp's first GPU unit
    device_capacity_bytes: list[int] = field(default_factory=list)   # what each device may fill
    ram_budget_bytes: int = 0       # what system RAM may hold (RAM_MARGIN of it)
    # when nothing fits, the nearest fixes found: ram_bytes (system RAM that holds the device-fitting
    # placement needing least RAM), extra_device_bytes (capacity to add to every device), context
    # (the largest smaller power of two that fits), scheme (fit_estimate: a smaller one that fits)
    fixes: dict[str, Any] = field(default_factory=dict)
    decode_withheld: str = ""       # why decode_tokens_per_s is None ("" when shown)
    # the partial layer: block n_cpu_moe's expert tensors (GGUF names) that `-ot` keeps in RAM too,
    # and that -ot value as llama.cpp parses it (unquoted); empty when whole layers do
    partial_experts: list[str] = field(default_factory=list)
    override_tensor: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def expert_args(self) -> list[str]:
        """The expert-offload arguments of the command, unquoted: --n-cpu-moe N and -ot ..."""
        return _expert_args(self.n_cpu_moe, self.override_tensor)


@dataclass(frozen=True)
class _Layers:
    weights: list[int]      # per repeating layer, all tensors
    experts: list[int]      # per repeating layer, the ffn_*_exps tensors only
    non_layer: int          # embeddings, output, final norm
    repack: int = 0         # CPU_REPACK copy on CPU-only hardware (repack.py)
    # per repeating layer, each expert tensor kind ("ffn_down_exps", …, in the tensor plan's order) and
    # its bytes (weight, bias and scale together: one -ot pattern moves them all); sums to `experts`
    parts: tuple[tuple[tuple[str, int], ...], ...] = ()


@lru_cache(maxsize=256)
def _layers(arch: Architecture, scheme: str, hw: Hardware) -> _Layers:
    L = arch.n_layers
    weights, experts, non_layer = [0] * L, [0] * L, 0
    parts: list[dict[str, int]] = [{} for _ in range(L)]
    for name, _, b in gguf_tensor_plan(arch, scheme):
        i = layer_index(name)
        if i is None:
            non_layer += b
            continue
        weights[i] += b
        if "_exps." in name:
            experts[i] += b
            kind = name.split(".")[2]      # blk.N.ffn_up_exps.weight → ffn_up_exps
            parts[i][kind] = parts[i].get(kind, 0) + b
    repack = repack_bytes(arch, scheme, CPU_ISA[hw.kind])[0] if hw.kind in CPU_ISA else 0
    return _Layers(weights, experts, non_layer, repack, tuple(tuple(p.items()) for p in parts))


def override_pattern(block: int, kinds: list[str]) -> str:
    """The -ot value that keeps these expert tensors of `block` in RAM, in the form llama.cpp's
    own --n-cpu-moe writes (common.h: blk\\.N\\.ffn_(up|down|gate)_exps): `blk\\.27\\.ffn_down_exps=CPU`,
    `blk\\.27\\.ffn_(gate|up)_exps=CPU`. The loader regex_searches each tensor name, so the block
    number is fenced by the escaped dots (blk.27. is no part of blk.127.)."""
    names = [kind.removeprefix("ffn_").removesuffix("_exps") for kind in kinds]
    inner = names[0] if len(names) == 1 else f"({'|'.join(names)})"
    return f"blk\\.{block}\\.ffn_{inner}_exps=CPU"


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
    """The llama-server -m argument: a placeholder the user fills (command_note says with what). The
    planner knows a model's shape, never where a GGUF file of it lies, and a plausible file name
    would fail as printed; the brackets flag it (and a shell refuses to run it unfilled). Inside
    them letters, digits, '.', '_', '-' and '/' only, so the line stays safe to paste."""
    slug = "your-model" if arch.anonymous else "-".join(re.sub(r"[^A-Za-z0-9._-]+", " ", arch.name).split())
    return f"<path/to/{slug or 'model'}-{scheme}.gguf>"


def device_capacities(hw: Hardware) -> list[int]:
    """Bytes each device may fill: its usable memory × 0.95 (estimate.py's margin)."""
    sizes = hw.device_memory_bytes or (hw.memory_bytes,) * hw.device_count
    return [int(int(size * hw.usable_fraction) * CAPACITY_MARGIN) for size in sizes]


def ram_budget(hw: Hardware) -> int:
    """Host RAM llama.cpp may fill with offloaded tensors (discrete GPUs only: on Apple silicon
    the device memory is the RAM)."""
    return int(hw.ram_bytes * RAM_MARGIN) if hw.kind == "gpu" else 0


def fit(arch: Architecture, hw: Hardware, wl: Workload, scheme: str, n_cpu_moe: int | None = None) -> Fit:
    """Solve for one GGUF scheme; `n_cpu_moe` overrides the expert-offload choice (0..n_layers)."""
    if wl.runtime != "llama.cpp" or wl.mode != "inference":
        raise EstimatorError("runtime", "the fit solver plans llama.cpp inference")
    L = arch.n_layers
    if n_cpu_moe is not None and (isinstance(n_cpu_moe, bool) or not isinstance(n_cpu_moe, int)
                                  or not 0 <= n_cpu_moe <= L):
        raise EstimatorError("n_cpu_moe", f"must be an integer from 0 to {L}")
    layers = _layers(arch, scheme, hw)
    if hw.kind in CPU_ISA:
        return _cpu_fit(arch, hw, wl, scheme, layers)
    caps, ram_limit = device_capacities(hw), ram_budget(hw)
    solver = _Solver(arch, wl, layers, overhead_bytes(hw, wl)[0] // hw.device_count, caps, ram_limit)
    limit, limit_note = context_limit(arch.max_position_embeddings)
    reasons: list[str] = []
    context, plan = wl.context, None
    if n_cpu_moe is None:
        steps = context_steps(wl.context, arch.max_position_embeddings)
        n_fitting = first_true(0, len(steps), lambda i: i == len(steps) or not solver.fully(steps[i]))
        if n_fitting:
            context = steps[n_fitting - 1]
            plan = balanced(solver.costs(context), caps, solver.all_units, 0)
            reasons.append(f"everything fits on the device: the largest context ≤ {limit:,} "
                           f"positions (powers of two from {wl.context:,}) that fits is {context:,}")
            if limit_note:
                reasons.append(limit_note)
        elif wl.context > arch.max_position_embeddings and solver.fully(wl.context):
            plan = balanced(solver.costs(context), caps, solver.all_units, 0)
            reasons.append(f"everything fits on the device at the {wl.context:,} context asked for, which is beyond "
                           f"the model's {arch.max_position_embeddings:,} trained positions (llama.cpp warns; "
                           "extend with rope scaling such as YaRN where the model card allows it)")
        else:
            c = solver.costs(context)
            need = sum(gpu_units(c, c.n_units, 0)) + c.busy * len(caps)
            reasons.append(f"with a {context:,} context everything on the device(s) takes {need:,} B, over the "
                           f"{sum(caps):,} B they hold (usable × {CAPACITY_MARGIN}"
                           f"{f' on each of {len(caps)} devices' if len(caps) > 1 else ''})")
    else:
        reasons.append(f"--n-cpu-moe {n_cpu_moe}: set by hand")
    if plan is None:
        plan = search(solver.costs(context), caps, ram_limit, n_cpu_moe)
    fits, fixes = plan is not None, {}
    if plan is None:
        c = solver.costs(context)
        plan = ram_needed(c, caps, n_cpu_moe) or Placement(0, 0, (0,) * len(caps), (c.idle,) * len(caps),
                                                            ram_bytes(c, 0, 0))
        notes, fixes = solver.nearest_fixes(context, plan, n_cpu_moe, hw)
        reasons.extend(notes)
    U = solver.all_units
    k, m = solver.costs(context).gpu_layers(plan.ngl), plan.n_cpu_moe
    devices, kv_per, state_per = solver.devices(context, plan)
    kinds, _, override = _partial(layers, plan)
    partial_names = [name for name, _, _ in gguf_tensor_plan(arch, scheme)
                     if layer_index(name) == m and name.split(".")[2] in kinds] if kinds else []
    reasons.extend(_placement_notes(arch, scheme, layers, plan, kv_per, state_per, n_cpu_moe is None))
    if plan.ram:
        if plan.ram <= ram_limit:
            reasons.append(f"system RAM holds {plan.ram:,} B of its {ram_limit:,} B budget ({RAM_MARGIN:.0%} of "
                           f"{hw.ram_bytes:,} B)")
        elif hw.kind == "gpu":
            reasons.append(f"system RAM: {plan.ram:,} B needed, over {RAM_MARGIN:.0%} of {hw.ram_bytes:,} B — "
                           "doesn't fit")
        else:
            reasons.append(f"{plan.ram:,} B would stay off the GPU, in memory that on {hw.kind} hardware is the same "
                           "unified memory (counted as the device's): doesn't fit")
    ts = list(plan.split) if len(caps) > 1 and plan.ngl else []
    if ts:
        share = max(load / cap for load, cap in zip(plan.loads, caps))
        reasons.append(f"{len(caps)} devices: -ts {','.join(map(str, ts))} gives them {', '.join(map(str, ts))} of the "
                       f"{sum(ts)} GPU units (layers in order, then the output layer): the split that evens their "
                       f"fill, the fullest device at {share:.1%} of its capacity (usable × {CAPACITY_MARGIN}: "
                       f"{', '.join(f'{cap:,}' for cap in caps)} B)")
    moved = [_moved(layers, plan, i) for i in range(L)]
    tps, tps_reason = _decode_tps(arch, hw, layers, k, moved, [a + b for a, b in zip(kv_per, state_per)], wl, scheme)
    reasons.append(tps_reason)
    reasons.extend(_flag_notes(wl))
    result = Fit(scheme=scheme, context=context, n_layers=L, gpu_layers=k, ngl=ngl_flag(plan.ngl, U), n_cpu_moe=m,
                 tensor_split=ts, devices=devices, system_ram_bytes=plan.ram, fits=fits,
                 fully_on_device=plan.ngl == U and m == 0 and not plan.part, decode_tokens_per_s=_rounded(tps),
                 reasons=reasons, output_on_device=plan.ngl > 0, device_capacity_bytes=caps, ram_budget_bytes=ram_limit,
                 fixes=fixes, decode_withheld=_withheld(tps, tps_reason), partial_experts=partial_names,
                 override_tensor=override)
    result.command = command(arch, wl, result)
    result.command_note = command_note(arch, scheme)
    return result


def ngl_flag(ngl: int, n_units: int) -> int:
    """The -ngl value to write: all units (every block and the output layer) is written 99 when
    there are at most 99, as llama.cpp's examples do."""
    return (99 if n_units <= 99 else n_units) if ngl >= n_units else ngl


def _moved(layers: _Layers, p: Placement, i: int) -> int:
    """Expert bytes of layer i that the placement keeps in RAM while the layer is on a GPU."""
    if i < p.n_cpu_moe:
        return layers.experts[i]
    return sum(layers.parts[i][j][1] for j in p.part) if i == p.n_cpu_moe and p.part else 0


def _partial(layers: _Layers, p: Placement) -> tuple[list[str], int, str]:
    """The partial layer of a placement: its expert tensor kinds in RAM, their bytes, the -ot value."""
    if not p.part:
        return [], 0, ""
    kinds = [layers.parts[p.n_cpu_moe][j][0] for j in p.part]
    return kinds, sum(layers.parts[p.n_cpu_moe][j][1] for j in p.part), override_pattern(p.n_cpu_moe, kinds)


def _expert_args(n_cpu_moe: int, override: str) -> list[str]:
    return (["--n-cpu-moe", str(n_cpu_moe)] if n_cpu_moe else []) + (["-ot", override] if override else [])


class _Solver:
    """One scheme on one machine: the byte costs at each context (cached) and what they place."""

    def __init__(self, arch: Architecture, wl: Workload, layers: _Layers, overhead: int, caps: list[int],
                 ram_limit: int):
        self.arch, self.wl, self.layers, self.overhead, self.caps = arch, wl, layers, overhead, caps
        self.ram_limit = ram_limit
        self.all_units = arch.n_layers_all + 1   # llama.cpp's units: the GGUF's blocks and the output layer
        self._costs: dict[int, tuple[Costs, list[int], list[int], int]] = {}

    def _at(self, ctx: int) -> tuple[Costs, list[int], list[int], int]:
        if ctx not in self._costs:
            arch, wl, layers = self.arch, self.wl, self.layers
            kv_per, state_per = layer_cache_bytes(arch, kv_cache_bytes(arch, wl, ctx)[0], recurrent_bytes(arch, wl)[0])
            compute = compute_bytes(arch, wl, ctx)[0]
            costs = Costs(tuple(w + kv + s for w, kv, s in zip(layers.weights, kv_per, state_per)),
                          tuple(layers.experts), layers.non_layer, compute + self.overhead, self.overhead,
                          arch.n_layers_all - arch.n_layers, tuple(tuple(b for _, b in p) for p in layers.parts))
            self._costs[ctx] = (costs, kv_per, state_per, compute)
        return self._costs[ctx]

    def costs(self, ctx: int) -> Costs:
        return self._at(ctx)[0]

    def fully(self, ctx: int) -> bool:
        """Every layer and the output layer on the device(s), nothing in RAM."""
        return device_fits(self.costs(ctx), self.caps, self.all_units, 0)

    def devices(self, ctx: int, p: Placement) -> tuple[list[dict[str, int]], list[int], list[int]]:
        """Per-device bytes of a placement, by kind; and each layer's KV and recurrent state."""
        costs, kv_per, state_per, compute = self._at(ctx)
        L, layers = self.arch.n_layers, self.layers
        # llama.cpp's units: the layers, the MTP blocks (None: not loaded), the output layer (L)
        units = (list(range(L)) + [None] * (self.all_units - 1 - L) + [L])[self.all_units - p.ngl:] if p.ngl else []
        out, j = [], 0
        for n in p.split:
            d = {"model_bytes": 0, "kv_bytes": 0, "recurrent_state_bytes": 0,
                 "compute_bytes": compute if p.ngl else 0, "overhead_bytes": self.overhead}
            for i in units[j:j + n]:
                if i is None:
                    continue
                if i == L:
                    d["model_bytes"] += layers.non_layer
                    continue
                d["model_bytes"] += layers.weights[i] - _moved(layers, p, i)
                d["kv_bytes"] += kv_per[i]
                d["recurrent_state_bytes"] += state_per[i]
            d["total_bytes"] = sum(d.values())
            out.append(d)
            j += n
        return out, kv_per, state_per

    def nearest_fixes(self, ctx: int, shown: Placement, n_cpu_moe: int | None,
                      hw: Hardware) -> tuple[list[str], dict[str, int]]:
        """Why nothing fits, and the smallest change that makes it fit: more RAM, more device
        memory, or a smaller context (fit_estimate adds a smaller scheme)."""
        costs, caps, limit = self.costs(ctx), self.caps, self.ram_limit
        ram = (f"{limit:,} B of system RAM ({RAM_MARGIN:.0%} of {hw.ram_bytes:,} B)" if hw.kind == "gpu" else
               "no separate system RAM (unified memory)")
        notes = [f"doesn't fit: no placement holds it at a {ctx:,} context in "
                 f"{' + '.join(f'{cap:,}' for cap in caps)} B of device memory and {ram}"]
        fixes, found = [], {}
        if shown.ngl and hw.kind == "gpu":
            need = math.ceil(shown.ram / RAM_MARGIN)
            while int(need * RAM_MARGIN) < shown.ram:
                need += 1
            found["ram_bytes"] = need
            fixes.append(f"{need - hw.ram_bytes:,} B more system RAM ({need / GiB:,.1f} GiB in all) holds the "
                         f"placement shown, the device-fitting one that needs the least RAM")
        more = vram_needed(costs, caps, limit, n_cpu_moe)
        if more is not None:
            extra, p = more
            found["extra_device_bytes"] = extra
            flags = _expert_args(p.n_cpu_moe, _partial(self.layers, p)[2])
            more_gib = extra / hw.usable_fraction / CAPACITY_MARGIN / GiB
            fixes.append(f"{extra:,} B more capacity on each device (≈ {more_gib:,.1f} GiB more memory each) fits "
                         f"-ngl {ngl_flag(p.ngl, self.all_units)}{''.join(' ' + shlex.quote(a) for a in flags)}")
        smaller = [c for c in context_steps(1, ctx) if c < ctx]
        n_ok = first_true(0, len(smaller), lambda i: i == len(smaller)
                      or search(self.costs(smaller[i]), caps, limit, n_cpu_moe) is None)
        if n_ok:
            found["context"] = smaller[n_ok - 1]
            fixes.append(f"a {smaller[n_ok - 1]:,} context fits (the largest power of two below {ctx:,} that does)")
        notes.append("nearest fixes: " + "; or ".join(fixes) if fixes else
                     "no smaller context fits either, and RAM is too small even for one layer on the device")
        return notes, found


def _placement_notes(arch: Architecture, scheme: str, layers: _Layers, p: Placement, kv_per: list[int],
                     state_per: list[int], chosen: bool) -> list[str]:
    L = arch.n_layers
    n_mtp = arch.n_layers_all - L
    k, m = max(0, min(L, p.ngl - 1 - n_mtp)), p.n_cpu_moe
    notes = []
    kinds, part, override = _partial(layers, p)
    if m and arch.is_moe and k and chosen:
        notes.append(f"MoE: the expert tensors (ffn_*_exps) of the first {m} of {L} layers go to system RAM "
                     f"({sum(layers.experts[L - k:m]):,} B of the GPU layers' experts); attention, router and shared "
                     "experts stay on the GPU")
    if part:
        kept = [kind for kind, _ in layers.parts[m] if kind not in kinds]
        notes.append(f"MoE, one tensor at a time: of block {m}'s experts, {' and '.join(kinds)} ({part:,} B) "
                     f"{'go' if len(kinds) > 1 else 'goes'} to system RAM too (-ot {shlex.quote(override)}, "
                     f"llama.cpp's --override-tensor) and {' and '.join(kept)} "
                     f"{'stay' if len(kept) > 1 else 'stays'} on the GPU: "
                     f"{layers.experts[m] - part:,} B more on the GPU than --n-cpu-moe {m + 1}, which would move all "
                     f"{layers.experts[m]:,} B of block {m}'s experts")
    if 0 < k < L:
        if arch.hybrid is None:
            theirs, cache = "KV", f"{max(kv_per):,} B KV"
        else:
            theirs = "KV or recurrent state"
            cache = (f"{max(kv_per):,} B KV on each of {arch.kv_layers} attention layers, {max(state_per):,} B "
                     f"recurrent state on each of {len(arch.hybrid.recurrent_layers)} recurrent layers")
        notes.append(f"{L - k} of {L} layers (weights + their {theirs}) go to system RAM; {k} stay on the GPU, "
                     f"each ~{max(layers.weights):,} B weights + {cache}")
    if 0 < k < L:
        mtp = f" and the {n_mtp} MTP block(s) the file keeps (not loaded)" if n_mtp else ""
        notes.append(f"-ngl {p.ngl}: llama.cpp puts the last {p.ngl} units on the GPU: the output layer{mtp}, then "
                     f"the last {k} repeating layers")
    if p.ngl == 0:
        notes.append("not even one layer fits on the device")
    return notes


def _cpu_fit(arch: Architecture, hw: Hardware, wl: Workload, scheme: str, layers: _Layers) -> Fit:
    """No GPU: every layer runs on the CPU (-ngl 0); the process is sized as peak RSS, as estimate()
    does (cpu_process.py), against the machine's usable RAM."""
    L = arch.n_layers
    ctx = wl.context
    kv_per, state_per = layer_cache_bytes(arch, kv_cache_bytes(arch, wl, ctx)[0], recurrent_bytes(arch, wl)[0])
    overhead = llama_cpp_resident(arch, wl)[1]
    compute = compute_bytes(arch, wl, ctx, n_outputs=wl.batch)[0]
    device = {"model_bytes": 0, "kv_bytes": 0, "recurrent_state_bytes": 0, "compute_bytes": compute,
              "overhead_bytes": overhead}
    device["total_bytes"] = compute + overhead
    ram = sum(layers.weights) + sum(kv_per) + sum(state_per) + layers.non_layer + layers.repack
    capacity = device_capacities(hw)[0]
    reasons = [f"{hw.kind}: no GPU, every layer runs on the CPU (-ngl 0)"]
    if layers.repack:
        reasons.append(f"llama.cpp's CPU backend repacks {layers.repack:,} B of {scheme} matmul weights into its "
                       f"CPU_REPACK buffer, on top of the mmap'd file")
    fits = device["total_bytes"] + ram <= capacity
    reasons.append(f"system RAM holds {ram:,} B" if fits else
                   f"doesn't fit: {device['total_bytes'] + ram:,} B needed, over the {capacity:,} B usable × "
                   f"{CAPACITY_MARGIN}")
    tps, tps_reason = _decode_tps(arch, hw, layers, 0, [0] * L, [a + b for a, b in zip(kv_per, state_per)], wl, scheme)
    reasons.append(tps_reason)
    reasons.extend(_flag_notes(wl))
    result = Fit(scheme=scheme, context=ctx, n_layers=L, gpu_layers=0, ngl=0, n_cpu_moe=0, tensor_split=[],
                 devices=[device], system_ram_bytes=ram, fits=fits, fully_on_device=False,
                 decode_tokens_per_s=_rounded(tps), reasons=reasons, device_capacity_bytes=[capacity],
                 decode_withheld=_withheld(tps, tps_reason))
    result.command = command(arch, wl, result)
    result.command_note = command_note(arch, scheme)
    return result


def _decode_tps(arch: Architecture, hw: Hardware, layers: _Layers, k: int, moved: list[int],
                cache: list[int], wl: Workload | None = None, scheme: str = "") -> tuple[float | None, str]:
    """Bytes read per token from each memory, through speed.decode_rate (the function behind the
    table and the API too); `moved` is each GPU layer's expert bytes kept in RAM (--n-cpu-moe, -ot),
    `cache` each layer's KV and recurrent state.

    A MoE layer reads the share of its experts the batch routes to (speed.expert_share: top-k/E for one
    sequence); an untied token embedding
    only one row (speed.weights_read_per_token). With layer split the devices run one after another,
    so VRAM reads go at one device's bandwidth.
    """
    L = arch.n_layers
    share = expert_share(arch, wl.batch if wl else 1)
    plan = {name: b for name, _, b in gguf_tensor_plan(arch, scheme)} if scheme else {}
    unread = plan.get("token_embd.weight", 0) if "output.weight" in plan else 0
    vram = float(layers.non_layer - unread) if k else 0.0
    ram = 0.0 if k else float(layers.non_layer - unread)
    for i in range(L):
        exp = layers.experts[i]
        if i < L - k:
            ram += layers.weights[i] - exp + exp * share + cache[i]
        else:   # the experts read where they lie, each at the share the batch routes to
            vram += layers.weights[i] - exp + (exp - moved[i]) * share + cache[i]
            ram += moved[i] * share
    tps, reason = decode_rate(arch, hw, wl or Workload(), scheme, vram, ram)
    read = f"decode: {vram:,.0f} B from the device(s), {ram:,.0f} B from RAM per step"
    return tps, f"{read}; speed not shown: {reason}" if tps is None else f"{read}. {reason}"


def _rounded(tps: float | None) -> float | None:
    return None if tps is None else round(tps, 2)


def _withheld(tps: float | None, reason: str) -> str:
    """Why a decode speed is not shown ("" when it is): the reasons' decode line after its byte counts."""
    return reason.split("; speed not shown: ", 1)[1] if tps is None else ""


def _flag_notes(wl: Workload) -> list[str]:
    notes = [f"-fa {'on' if wl.flash_attn else 'off'}: flash attention as in the workload"]
    if wl.kv_dtype != "f16":
        notes.append(f"-ctk/-ctv {wl.kv_dtype}: the workload's KV cache type")
        if not wl.flash_attn:
            notes.append("llama.cpp needs flash attention for a quantized V cache: turn it on")
    return notes


def command_note(arch: Architecture, scheme: str) -> str:
    """One line naming the placeholder model_file() put in the command and what goes there."""
    whose = "your model" if arch.anonymous else arch.name
    return (f"replace {model_file(arch, scheme)} with the path of a {scheme} GGUF file of {whose} "
            "(a GGUF quantize job makes one)")


def command(arch: Architecture, wl: Workload, f: Fit) -> str:
    """The llama-server arguments (flag spellings of llama.cpp tools/server/README.md)."""
    parts = ["llama-server", "-m", model_file(arch, f.scheme), "-c", str(f.context * wl.batch)]
    if wl.batch > 1:
        parts += ["-np", str(wl.batch)]
    parts += ["-ngl", str(f.ngl)]
    parts += [shlex.quote(a) for a in f.expert_args()]   # the -ot regex has \, ( and |: quoted
    parts += ["-fa", "on" if wl.flash_attn else "off"]
    if wl.kv_dtype != "f16":
        parts += ["-ctk", wl.kv_dtype, "-ctv", wl.kv_dtype]
    if f.tensor_split:
        parts += ["-ts", ",".join(map(str, f.tensor_split))]
    return " ".join(parts)


def placement_kind(arch: Architecture, hw: Hardware, wl: Workload, scheme: str) -> str:
    """"full" (everything on the device(s) at the workload's context), "offload" (a placement with
    RAM fits) or "" (none does): what the solver finds, without its reasons (cheap enough to ask of
    every scheme)."""
    layers = _layers(arch, scheme, hw)
    if hw.kind in CPU_ISA:
        return "offload" if fit(arch, hw, wl, scheme).fits else ""
    caps, ram_limit = device_capacities(hw), ram_budget(hw)
    if sum(layers.weights) + layers.non_layer > sum(caps) + ram_limit:
        return ""   # the weights alone are more than devices and RAM hold together
    solver = _Solver(arch, wl, layers, overhead_bytes(hw, wl)[0] // hw.device_count, caps, ram_limit)
    if solver.fully(wl.context):
        return "full"
    return "offload" if search(solver.costs(wl.context), caps, ram_limit) is not None else ""


def choose_scheme(est: Estimate, requested: str = "") -> tuple[str | None, str]:
    """The GGUF scheme to fit: `requested`, else the highest-precision one that fits fully down to
    Q4_K_M (below ~4.5 bpw quality drops fast: llama.cpp's quantize README perplexity table),
    else Q4_K_M with offload, else the highest-precision one that fits with offload (the fit
    solver decides what fits: every device and system RAM), else the smallest, to show what it lacks."""
    rows = sorted((r for r in est.rows if r.family == "gguf" and r.supported),
                  key=lambda r: -r.bits_per_weight)
    if requested:
        if any(r.scheme == requested for r in rows):
            return requested, f"{requested}: chosen by hand"
        raise EstimatorError("fit_scheme", f"{requested!r} is not a GGUF scheme of this plan")
    rows = [r for r in rows if r.applies]   # never pick a scheme that does nothing for this model
    if not rows:
        return None, "no GGUF scheme runs this model in llama.cpp"
    arch, hw, wl = est.model, est.hardware, est.workload
    kinds: dict[str, str] = {}

    def kind(scheme: str) -> str:
        if scheme not in kinds:
            kinds[scheme] = placement_kind(arch, hw, wl, scheme)
        return kinds[scheme]

    native = next((r for r in rows if r.scheme == NATIVE_GGUF.get(arch.arch)), None)
    if native and kind(native.scheme):
        return native.scheme, (f"{native.scheme}: {arch.arch}'s own format (its experts ship in MXFP4; "
                               "re-quantizing them to a k-quant loses precision and saves nothing)")
    full = next((r for r in rows if r.bits_per_weight >= QUALITY_FLOOR_BPW and kind(r.scheme) == "full"), None)
    if full:
        return full.scheme, f"{full.scheme}: the highest-precision GGUF that fits fully"
    if any(r.scheme == "Q4_K_M" for r in rows) and kind("Q4_K_M"):
        return "Q4_K_M", "Q4_K_M: nothing at ≥ 4.5 bpw fits fully, so Q4_K_M with offload"
    runs = next((r for r in rows if kind(r.scheme)), None)
    if runs:
        return runs.scheme, (f"{runs.scheme}: the highest-precision GGUF that fits "
                             f"({'fully' if kind(runs.scheme) == 'full' else 'with offload'})")
    return rows[-1].scheme, (f"no GGUF scheme fits the device(s) and system RAM; the smallest, "
                             f"{rows[-1].scheme}, is shown with what it lacks")


def smaller_scheme(est: Estimate, scheme: str) -> str | None:
    """The highest-precision GGUF scheme below `scheme` that fits (with offload or fully)."""
    rows = sorted((r for r in est.rows if r.family == "gguf" and r.supported and r.applies),
                  key=lambda r: -r.bits_per_weight)
    bpw = next((r.bits_per_weight for r in rows if r.scheme == scheme), None)
    return next((r.scheme for r in rows if bpw is not None and r.bits_per_weight < bpw
                 and placement_kind(est.model, est.hardware, est.workload, r.scheme)), None)


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
    if not result.fits:
        smaller = smaller_scheme(est, scheme)
        if smaller:
            at = next((i for i, r in enumerate(result.reasons) if r.startswith(("nearest fixes", "no smaller"))),
                      len(result.reasons) - 1)
            result.reasons.insert(at + 1, f"or a smaller scheme that fits as it is: {smaller}")
            result.fixes["scheme"] = smaller
    return result
