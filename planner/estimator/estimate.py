"""estimate(): one row per quantization scheme with memory, fit, offload and speed.

Fit rule: `capacity_bytes` = usable memory (hardware.py) × 0.95 — a 5 % margin for allocator
fragmentation and other processes — or, for vLLM, usable memory × gpu_memory_utilization
(vLLM claims exactly that fraction). `fits` ⇔ total_bytes ≤ capacity_bytes.
Training modes (full/lora/qlora) are estimated for transformers + peft whatever the runtime:
no KV cache or inference compute buffer, activations are in `training_bytes`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Any

from .architecture import Architecture, layer_index
from .errors import EstimatorError
from .gguf_quant import gguf_file_tensor_bytes, gguf_tensor_plan
from .cpu_process import cpu_work_bytes, llama_cpp_resident, transformers_overhead
from .hardware import Hardware
from .memory import (_with_context, activation_bytes, compute_bytes, kv_cache_bytes, layer_cache_bytes, overhead_bytes,
                     recurrent_bytes, training_bytes)
from .repack import CPU_ISA, repack_bytes
from .rule_of_thumb import rule_of_thumb
from .scheme_row import SchemeRow
from .schemes import (Scheme, bits_per_weight, describe, high_precision_tensors, parse_scheme, scheme_names,
                      weights_bytes_and_formula)
from .speed import decode_tokens_per_s, prefill_seconds
from .workload import Workload, context_limit

CAPACITY_MARGIN = 0.95
TOUCHED = " touched (of the reserve: generation asks 1 logits row per sequence)"   # CPU, cpu_process.py
RAM_MARGIN = 0.9  # share of host RAM llama.cpp may use for offloaded layers


@dataclass
class Estimate:
    model: Architecture
    hardware: Hardware
    workload: Workload
    rows: list[SchemeRow] = field(default_factory=list)

    def row(self, scheme: str) -> SchemeRow:
        for r in self.rows:
            if r.scheme == scheme:
                return r
        raise EstimatorError("schemes", f"{scheme!r} not in this estimate")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), "hardware": self.hardware.to_dict(),
                "workload": self.workload.to_dict(), "schemes": [asdict(r) for r in self.rows]}


@lru_cache(maxsize=8)
def _context_cache(arch: Architecture, hw: Hardware, wl_any_context: Workload) -> dict[int, int]:
    """context -> the context-dependent bytes (KV, compute, ...) of one plan; filled by estimate()."""
    return {}


@lru_cache(maxsize=256)
def _awq_divisible(arch: Architecture, group_size: int) -> bool:
    """Every block linear's in_features is a multiple of the AWQ group (cached: the tensor list is long)."""
    return not any(shape[0] % group_size for name, shape, _ in arch.tensors()
                   if len(shape) >= 2 and name.startswith("blk.") and "gate_inp" not in name)


# GGUF types that quantize only the expert tensors (llama-quantize's MXFP4_MOE: 3-D expert tensors
# MXFP4, every other matrix Q8_0), and the type they otherwise amount to
MOE_ONLY_SCHEMES = {"MXFP4_MOE": "Q8_0"}


def _applies(scheme: Scheme, arch: Architecture) -> tuple[bool, str]:
    """Whether the scheme does what its name says for this model: an expert-only type on a model
    with no expert tensors leaves every matrix at its fallback type, a duplicate row that only confuses."""
    fallback = MOE_ONLY_SCHEMES.get(scheme.name)
    if fallback is None or arch.gguf_unsupported:
        return True, ""
    if any(ggml_type == "MXFP4" for _, ggml_type, _ in gguf_tensor_plan(arch, scheme.name)):
        return True, ""
    return False, (f"{scheme.name} quantizes only the expert (MoE) tensors; this model has none, so every "
                   f"matrix becomes {fallback}: the same file as {fallback}")


def _supported(scheme: Scheme, wl: Workload, arch: Architecture) -> tuple[bool, str]:
    """Whether the scheme's format runs on the workload's runtime (or training mode)."""
    fam = scheme.family
    if fam == "gguf" and arch.gguf_unsupported:
        return False, arch.gguf_unsupported
    if fam == "awq" and not _awq_divisible(arch, scheme.group_size):
        # GPTQModel's AWQ kernels raise "in_features must be divisible by group_size"
        return False, f"AWQ kernels need every linear's in_features divisible by {scheme.group_size}"
    if wl.mode == "full":
        if scheme.name in ("FP32", "FP16", "BF16"):
            return True, ""
        return False, "full fine-tuning needs FP32/FP16/BF16 weights"
    if wl.mode == "qlora":
        if scheme.name in ("NF4", "NF4-DQ", "INT4"):
            return True, ""
        return False, "QLoRA means a 4-bit bitsandbytes base (NF4, NF4-DQ or INT4)"
    if wl.mode == "lora":
        if fam in ("gguf", "exl2", "fp4") or scheme.name in ("FP8", "FP8-128x128"):
            return False, f"peft cannot train adapters on a {scheme.name} base (train on BF16, then quantize)"
        return True, ""
    if wl.runtime == "llama.cpp":
        if fam != "gguf":
            return False, "llama.cpp loads GGUF files only; convert first (the F16/Q* rows)"
        return True, ""
    if wl.runtime == "transformers":
        if fam == "gguf":
            return False, "transformers dequantizes GGUF to 16-bit on load: memory is that of FP16"
        if fam == "exl2":
            return False, "EXL2 loads in ExLlamaV2 (or TGI), not transformers"
        return True, ""
    # vLLM
    if fam == "gguf":
        return False, "vLLM's GGUF loader is experimental (single file, some archs); use llama.cpp"
    if fam == "exl2":
        return False, "vLLM does not load EXL2"
    if scheme.name in ("INT4",):
        return False, "vLLM's bitsandbytes path supports NF4 and INT8, not FP4"
    return True, ""


@lru_cache(maxsize=1024)
def _layer_weight_bytes(arch: Architecture, scheme: Scheme, weights: int) -> list[int]:
    """Per-layer weight bytes: exact from the GGUF plan, else proportional to parameters (cached)."""
    if scheme.family == "gguf":
        per = [0] * arch.n_layers
        for name, _, b in gguf_tensor_plan(arch, scheme.name):
            i = layer_index(name)
            if i is not None:
                per[i] += b
        return per
    scale = weights / arch.total_params
    return [int(n * scale) for n in arch.layer_params]


def _offload(arch: Architecture, hw: Hardware, layer_w: list[int], weights: int, kv: int, state: int,
             fixed_other: int, capacity: int) -> tuple[int, int, str]:
    """llama.cpp -ngl: how many repeating layers fit on the device (it offloads the last layers first).

    device budget = capacity − overhead − compute − non-layer weights (embeddings, output, norms);
    each layer costs its weights + its share of the KV cache (the layers that have one) and of a
    hybrid's recurrent state (the recurrent layers): both live with their layer (layer_cache_bytes).
    Returns (gpu_layers, bytes left on the host, formula).
    """
    L = arch.n_layers
    kv_per, state_per = layer_cache_bytes(arch, kv, state)
    non_layer = weights - sum(layer_w)
    budget = capacity - fixed_other - non_layer
    used, k = 0, 0
    for i in range(L - 1, -1, -1):
        need = layer_w[i] + kv_per[i] + state_per[i]
        if used + need > budget:
            break
        used += need
        k += 1
    host = sum(layer_w[:L - k]) + sum(kv_per[:L - k]) + sum(state_per[:L - k])
    if arch.hybrid is None:
        per_layer = f"~{layer_w[-1]:,} weights + {kv_per[-1]:,} KV"
    else:
        per_layer = (f"~{max(layer_w):,} weights + {max(kv_per):,} KV on each of {arch.kv_layers} attention layers, "
                     f"{max(state_per):,} recurrent state on each of {len(arch.hybrid.recurrent_layers)} "
                     "recurrent layers")
    return k, host, (f"budget {capacity:,} − {fixed_other:,} (overhead+compute) − {non_layer:,} non-layer weights "
                     f"= {budget:,} B; {k} of {L} layers × ({per_layer}) fit")


def estimate(arch: Architecture, hw: Hardware, wl: Workload, schemes: list[str] | None = None) -> Estimate:
    """Estimate every requested scheme (all of `scheme_names(wl.group_size, wl.exl2_bpw)` by default)."""
    parsed = _parsed_schemes(arch, hw, wl, schemes)
    wl = _with_workload_notes(arch, wl)
    plan = _plan(arch, hw, wl)
    rows = [_scheme_row(arch, hw, wl, plan, scheme) for scheme in parsed]
    return Estimate(model=arch, hardware=hw, workload=wl, rows=rows)


def _parsed_schemes(arch: Architecture, hw: Hardware, wl: Workload, schemes: list[str] | None) -> list[Scheme]:
    """Check the argument types (errors name the field) and parse the scheme names."""
    if not isinstance(arch, Architecture):
        raise EstimatorError("model", "expected an Architecture")
    if not isinstance(hw, Hardware):
        raise EstimatorError("hardware", "expected a Hardware profile")
    if not isinstance(wl, Workload):
        raise EstimatorError("workload", "expected a Workload")
    if schemes is None:
        schemes = scheme_names(wl.group_size, wl.exl2_bpw)
    if not isinstance(schemes, (list, tuple)) or not schemes:
        raise EstimatorError("schemes", "must be a non-empty list of scheme names")
    return [parse_scheme(s) for s in schemes]


def _with_workload_notes(arch: Architecture, wl: Workload) -> Workload:
    """The workload with notes for what the estimate changes or can't honour (runtime, context)."""
    if wl.mode != "inference" and wl.runtime != "transformers":
        wl = replace(wl, notes=wl.notes + (f"{wl.mode} fine-tuning is estimated for transformers + peft "
                                             f"(runtime {wl.runtime} ignored)",))
    if wl.context > arch.max_position_embeddings:
        wl = replace(wl, notes=wl.notes + (f"context {wl.context:,} exceeds the model's "
                                             f"{arch.max_position_embeddings:,} positions",))
    limit_note = context_limit(arch.max_position_embeddings)[1]
    if limit_note:
        wl = replace(wl, notes=wl.notes + (limit_note,))
    return wl


@dataclass
class _Plan:
    """What every scheme's row shares: the runtime's mode, KV/compute/overhead bytes, the capacity."""
    training: bool
    vllm: bool
    cpu_llama: bool      # CPU-only llama.cpp inference: the total follows peak RSS (cpu_process.py)
    hf_cpu: bool         # CPU-only transformers inference: overhead depends on the scheme
    overhead: int
    overhead_f: str
    kv: int
    kv_f: str
    state: int           # a hybrid's recurrent state, apart from the KV cache (memory.recurrent_bytes)
    state_f: str
    compute: int
    compute_f: str
    resident: int        # the compute bytes counted in the total (touched, on a CPU)
    work: int            # llama.cpp's CPU work buffer, part of `overhead` there
    capacity: int
    capacity_f: str
    prefill: float
    prefill_f: str
    var_cache: dict[int, int]  # context -> context-dependent bytes, see _context_dependent_bytes


def _plan(arch: Architecture, hw: Hardware, wl: Workload) -> _Plan:
    """The scheme-independent part of the estimate."""
    training = wl.mode != "inference"
    overhead, overhead_f = overhead_bytes(hw, wl)
    if training:
        kv, kv_f = 0, "training: no KV cache = 0 B"
        state, state_f = 0, "training: no recurrent state = 0 B"
        compute, compute_f = 0, "training: activations are counted in training_bytes = 0 B"
    else:
        kv, kv_f = kv_cache_bytes(arch, wl)
        state, state_f = recurrent_bytes(arch, wl)
        compute, compute_f = compute_bytes(arch, wl)
    vllm = wl.runtime == "vllm" and not training
    # CPU-only inference: the total follows peak RSS (cpu_process.py): touched compute, work buffer, process
    cpu_llama = hw.kind in CPU_ISA and wl.runtime == "llama.cpp" and not training
    resident, work = compute, 0
    if cpu_llama:
        resident, overhead, overhead_f = llama_cpp_resident(arch, wl)
        work = cpu_work_bytes(arch, wl)[0]
    hf_cpu = hw.kind in CPU_ISA and wl.runtime == "transformers" and not training
    capacity, capacity_f = _capacity(hw, wl, vllm)
    prefill, prefill_f = prefill_seconds(arch, hw, wl)
    return _Plan(training=training, vllm=vllm, cpu_llama=cpu_llama, hf_cpu=hf_cpu, overhead=overhead,
                 overhead_f=overhead_f, kv=kv, kv_f=kv_f, state=state, state_f=state_f, compute=compute,
                 compute_f=compute_f, resident=resident, work=work, capacity=capacity, capacity_f=capacity_f,
                 prefill=prefill, prefill_f=prefill_f,
                 # shared by the estimates of one plan at other contexts (the page's memory-vs-context chart)
                 var_cache=_context_cache(arch, hw, _with_context(wl, 1)))


def _capacity(hw: Hardware, wl: Workload, vllm: bool) -> tuple[int, str]:
    """Bytes the estimate may fill (the module docstring's fit rule) and its formula."""
    usable = hw.usable_memory_bytes
    if vllm:
        capacity = int(usable * wl.gpu_memory_utilization)
        return capacity, f"{usable:,} usable × {wl.gpu_memory_utilization} gpu_memory_utilization = {capacity:,} B"
    capacity = int(usable * CAPACITY_MARGIN)
    return capacity, (f"{usable:,} usable ({hw.usable_fraction:.3g} of memory × {hw.device_count}) × "
                      f"{CAPACITY_MARGIN} = {capacity:,} B")


def _context_dependent_bytes(arch: Architecture, wl: Workload, plan: _Plan, ctx: int) -> int:
    """KV + recurrent state + compute (+ training activations) at a context; shared by all schemes."""
    var_cache = plan.var_cache
    if ctx not in var_cache:
        if plan.training:
            var_cache[ctx] = activation_bytes(arch, _with_context(wl, ctx))[0]
        else:
            var_cache[ctx] = kv_cache_bytes(arch, wl, ctx)[0] + plan.state + (
                compute_bytes(arch, wl, ctx, n_outputs=wl.batch)[0] + cpu_work_bytes(arch, wl, ctx)[0]
                if plan.cpu_llama else compute_bytes(arch, wl, ctx)[0])
    return var_cache[ctx]


def _max_context(arch: Architecture, wl: Workload, plan: _Plan, fixed: int) -> int:
    """Largest context whose total fits, up to the model's positions or the longest context a
    workload may ask for (binary search; the context-dependent part is shared across schemes)."""
    if fixed + _context_dependent_bytes(arch, wl, plan, 1) > plan.capacity:
        return 0
    lo, hi = 1, context_limit(arch.max_position_embeddings)[0]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fixed + _context_dependent_bytes(arch, wl, plan, mid) <= plan.capacity:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass
class _Offload:
    gpu_layers: int | None = None
    n_layers: int | None = None
    gpu_fraction: float = 1.0
    formula: str = "not llama.cpp: no layer offload"
    host_bytes: int = 0


def _layer_offload(arch: Architecture, hw: Hardware, wl: Workload, plan: _Plan, scheme: Scheme, weights: int,
                   overhead: int, fits: bool) -> _Offload:
    """llama.cpp's layer split between device and host for one scheme (see _offload)."""
    if wl.runtime != "llama.cpp" or plan.training:
        return _Offload()
    n_layers = arch.n_layers
    if hw.kind in ("cpu", "phone"):
        return _Offload(0, n_layers, formula=f"{hw.kind}: all {n_layers} layers run on the CPU in RAM")
    if fits:
        return _Offload(n_layers, n_layers, formula=f"everything fits: {n_layers} of {n_layers} layers on the device")
    layer_w = _layer_weight_bytes(arch, scheme, weights)
    gpu_layers, host_bytes, formula = _offload(arch, hw, layer_w, weights, plan.kv, plan.state,
                                               overhead + plan.compute, plan.capacity)
    return _Offload(gpu_layers, n_layers, 1 - host_bytes / max(1, weights + plan.kv + plan.state), formula, host_bytes)


def _scheme_row(arch: Architecture, hw: Hardware, wl: Workload, plan: _Plan, scheme: Scheme) -> SchemeRow:
    """One scheme's row: its bytes, fit, largest context, offload, speed, and the formula of each."""
    training, kv, state, compute, resident = plan.training, plan.kv, plan.state, plan.compute, plan.resident
    capacity = plan.capacity
    overhead, overhead_f = plan.overhead, plan.overhead_f
    weights, weights_f = weights_bytes_and_formula(arch, scheme)
    train, train_f = training_bytes(arch, wl, weights, scheme.family, scheme.name)
    if plan.hf_cpu:   # a 16-bit safetensors checkpoint, as Hugging Face repos ship
        overhead, overhead_f = transformers_overhead(arch.total_params * 2, scheme.family == "bnb")
    if scheme.family == "gguf" and wl.runtime == "llama.cpp" and not training and hw.kind in CPU_ISA:
        repack, repack_f = repack_bytes(arch, scheme.name, CPU_ISA[hw.kind])
    else:
        repack, repack_f = 0, "no CPU_REPACK buffer (llama.cpp on a CPU only) = 0 B"
    total = weights + repack + kv + state + resident + overhead + train
    headroom = capacity - total
    fits = headroom >= 0
    bpw = weights * 8 / arch.total_params
    supported, note = _supported(scheme, wl, arch)
    applies, applies_note = _applies(scheme, arch)
    # tensor data of the .gguf file: the loaded weights plus MTP blocks the converter keeps
    # (Qwen3-Next, GLM-4.5) and llama.cpp skips at load
    file_bytes, file_f = None, ""
    if scheme.family == "gguf":
        file_bytes = gguf_file_tensor_bytes(arch, scheme.name) if arch.mtp_in_gguf else weights
        if arch.mtp_in_gguf:
            file_f = (f"; the .gguf file holds {file_bytes:,} B of tensors: + {arch.n_nextn_layers} MTP "
                      "block(s) that llama.cpp skips at load")
    thumb, thumb_note = rule_of_thumb(arch, scheme, weights=weights + repack, kv=kv, state=state, compute=resident,
                                      overhead=overhead, training=train)
    fixed = weights + repack + overhead - plan.work + (train - (activation_bytes(arch, wl)[0] if training else 0))
    max_ctx = _max_context(arch, wl, plan, fixed)
    limit, limit_note = context_limit(arch.max_position_embeddings)
    offload = _layer_offload(arch, hw, wl, plan, scheme, weights, overhead, fits)
    runs_with_offload = fits or (offload.gpu_layers is not None and hw.kind == "gpu"
                                 and offload.host_bytes <= hw.ram_bytes * RAM_MARGIN)

    # vLLM claims capacity up front and turns everything not used by weights, activations
    # and overhead into KV blocks; `fits` asks that this pool holds batch × context tokens.
    kv_pool = max(0, capacity - weights - compute - overhead) if plan.vllm else None
    tps, tps_f = decode_tokens_per_s(arch, hw, wl, weights, kv, offload.gpu_fraction, state_bytes=state,
                                     scheme=scheme.name)
    prefill, prefill_f = prefill_seconds(arch, hw, wl, scheme.name, weights)   # per scheme: its own rate
    if training:
        tps, tps_f = None, "training mode: no decoding"
    return SchemeRow(
        scheme=scheme.name,
        family=scheme.family,
        description=describe(scheme),
        bits_per_weight=round(bpw, 4),  # over the whole model, 16-bit tensors included
        bits_per_quantized_weight=round(bits_per_weight(arch, scheme).quantized, 4),
        weights_bytes=weights,
        repack_bytes=repack,
        gguf_file_tensor_bytes=file_bytes,
        kv_cache_bytes=kv,
        recurrent_state_bytes=state,
        compute_bytes=compute,
        compute_resident_bytes=resident,
        overhead_bytes=overhead,
        training_bytes=train,
        total_bytes=total,
        rule_of_thumb_bytes=thumb,
        rule_of_thumb_note=thumb_note,
        capacity_bytes=capacity,
        fits=fits,
        headroom_bytes=headroom,
        max_context=max_ctx,
        gpu_layers=offload.gpu_layers,
        n_layers=offload.n_layers,
        runs_with_offload=runs_with_offload,
        kv_pool_bytes=kv_pool,
        decode_tokens_per_s=None if tps is None else round(tps, 2),
        decode_withheld=tps_f if tps is None else "",
        prefill_seconds=None if prefill is None else round(prefill, 4),
        prefill_withheld=prefill_f if prefill is None else "",
        engines=list(scheme.engines),
        high_precision_tensors=high_precision_tensors(arch, scheme),
        supported=supported,
        note=note,
        applies=applies,
        applies_note=applies_note,
        formulas={
            "weights_bytes": weights_f + file_f,
            "repack_bytes": repack_f,
            "bits_per_weight": f"{weights:,} B × 8 / {arch.total_params:,} params = {bpw:.4f} bpw",
            "bits_per_quantized_weight": bits_per_weight(arch, scheme).formula,
            "kv_cache_bytes": plan.kv_f,
            "recurrent_state_bytes": plan.state_f,
            "compute_bytes": plan.compute_f,
            "overhead_bytes": overhead_f,
            "training_bytes": train_f,
            "total_bytes": (f"{weights:,} weights{f' + {repack:,} repacked' if repack else ''} + {kv:,} KV + "
                            f"{f'{state:,} recurrent state + ' if arch.hybrid is not None else ''}"
                            f"{resident:,} compute{TOUCHED if resident != compute else ''} + "
                            f"{overhead:,} overhead + {train:,} training = {total:,} B"),
            "capacity_bytes": plan.capacity_f,
            "headroom_bytes": f"{capacity:,} − {total:,} = {headroom:,} B",
            "max_context": (f"largest context ≤ {limit:,} positions with total ≤ {capacity:,} B = {max_ctx:,}"
                            + (f" ({limit_note})" if limit_note else "")),
            "gpu_layers": offload.formula,
            "kv_pool_bytes": (f"vLLM preallocates {capacity:,} − {weights:,} − {compute:,} − {overhead:,} = "
                              f"{kv_pool:,} B of KV blocks" if plan.vllm else "not vLLM: KV grows/allocates as computed"),
            "decode_tokens_per_s": tps_f,
            "prefill_seconds": prefill_f,
        },
    )
