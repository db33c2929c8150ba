"""Where a GGUF variant's layers go on a cuda node: the planner's fit solver
(planner/estimator/fit.py) at the context the job loads it with, turned into llama-cpp-python
Llama() options that `engines.open_engine(..., placement=...)` applies.

It lives here, beside the job methods that load a variant on a cuda node (evaluate, tasks), and
not in engines/: the engines import nothing of the planner (tests/catalog/test_layers.py), so the
caller plans and hands the engine the result.

What the engine is asked to run is what the solver plans for llama-cpp-python's own defaults,
which the engine keeps on every device: KV cache f16, flash attention off, n_ubatch 512, one
sequence (jobs/methods/evaluate_memory.py SERVED_DEFAULTS). The solver does not choose those; it
chooses the layers (-ngl) and, across GPUs, the split (-ts).

llama-cpp-python 0.3.36's Llama() has no tensor-override argument (llama-server's
--n-cpu-moe / -ot), so a MoE plan that keeps some layers' experts in RAM can't be applied as
such: the solver is asked again with --n-cpu-moe 0, the best whole-layer placement, and the
engine's info says what was given up.

The solver sizes layers from the planner's tensor plan for the file's type; it is used only when
that plan is this file, tensor for tensor. Otherwise (an architecture the planner reads from
config.json only, a file type it has no plan for, a file with hand-picked tensor types) nothing
is planned: every layer goes on the GPU as before, and the info says why.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from gguf import LlamaFileType

from engines import EngineError
from engines.gpu import gpu_memory, gpu_memory_report
from formats.gguf_header import GGUFError, GGUFHeader, read_gguf_header_from_path
from planner.estimator import Architecture, EstimatorError, Hardware, Workload
from planner.estimator.fit import Fit, fit
from planner.estimator.gguf_quant import GGUF_FTYPES, gguf_file_plan

# llama-cpp-python 0.3.36's Llama() defaults, which the engine keeps (see the module docstring)
ENGINE_KV_TYPE = "f16"
ENGINE_FLASH_ATTN = False
ENGINE_N_UBATCH = 512
EXPERT_OFFLOAD_UNAVAILABLE = ("llama-cpp-python's Llama() has no tensor-override argument "
                              "(llama-server's --n-cpu-moe / -ot), so experts can't be kept in RAM "
                              "apart from their layer")


def file_scheme(header: GGUFHeader) -> str | None:
    """The planner's scheme name for the file's general.file_type (llama.cpp's LLAMA_FTYPE_*, as
    gguf-py's LlamaFileType names it: MOSTLY_Q4_K_M is Q4_K_M), None when the planner has no
    tensor plan for it."""
    value = header.metadata.get("general.file_type")
    try:
        name = LlamaFileType(value).name.removeprefix("MOSTLY_")
    except ValueError:
        return None
    return name if name in GGUF_FTYPES else None


def _plan_differs(arch: Architecture, scheme: str, header: GGUFHeader) -> str:
    """"" when the planner's tensor plan for `scheme` is the file's tensors (names and bytes),
    else the first difference, in words."""
    planned = {name: size for name, _, size in gguf_file_plan(arch, scheme)}
    held = {t.name: t.nbytes for t in header.tensors}
    for name in sorted(planned.keys() | held.keys()):
        if planned.get(name) != held.get(name):
            return (f"the planner's {scheme} plan differs from this file at {name} (planned "
                    f"{planned.get(name, 'no tensor')} B, the file holds {held.get(name, 'no tensor')} B)")
    return ""


def _options(applied: Fit) -> dict:
    options = {"n_gpu_layers": applied.ngl, "flash_attn": ENGINE_FLASH_ATTN}
    if applied.tensor_split:
        options["tensor_split"] = [float(units) for units in applied.tensor_split]
    return options


def llama_gpu_placement(header: GGUFHeader, *, gpu_bytes: list[int], ram_bytes: int, n_ctx: int,
                        node: str = "", file: str = "") -> dict:
    """{"options": Llama() keyword arguments, "info": what the engine records} for a GGUF whose
    header is `header`, on GPUs with `gpu_bytes` free each and `ram_bytes` of system RAM available,
    at context n_ctx. EngineError naming why when the solver finds no placement with a layer on
    the GPU (a cuda node never runs a model on its CPU instead), with the solver's nearest fixes."""
    base = {"context": n_ctx, "flash_attn": ENGINE_FLASH_ATTN, "kv_type": ENGINE_KV_TYPE,
            "gpu_free_bytes": list(gpu_bytes), "ram_available_bytes": ram_bytes}
    meta = {**header.metadata, "tensor_names": [t.name for t in header.tensors]}
    if "tokenizer.ggml.tokens" in header.array_lengths:
        meta.setdefault("tokenizer.ggml.tokens_count", header.array_lengths["tokenizer.ggml.tokens"])
    try:
        arch = Architecture.from_gguf_metadata(meta)
        scheme = file_scheme(header)
        if scheme is None:
            not_planned = (f"the planner has no tensor plan for general.file_type "
                           f"{header.metadata.get('general.file_type')!r}")
        else:
            not_planned = _plan_differs(arch, scheme, header)
        if not not_planned:
            hw = Hardware(key="node", name=f"node {node}" if node else "this node", kind="gpu",
                          memory_bytes=max(gpu_bytes), device_count=len(gpu_bytes),
                          device_memory_bytes=tuple(gpu_bytes) if len(set(gpu_bytes)) > 1 else (),
                          ram_bytes=ram_bytes,
                          # placement depends on memory only; these two feed the solver's speed
                          # figure, which is not used here
                          bandwidth_bytes_per_s=1.0, fp16_flops=1.0)
            wl = Workload(runtime="llama.cpp", context=n_ctx, batch=1, kv_dtype=ENGINE_KV_TYPE,
                          flash_attn=ENGINE_FLASH_ATTN, n_ubatch=ENGINE_N_UBATCH)
            wanted = fit(arch, hw, wl, scheme)
            # --n-cpu-moe 0 also pins the plan to n_ctx: left free, the solver reports a fully
            # fitting model at the largest context that fits, not at the one the engine opens.
            applied = fit(arch, hw, wl, scheme, n_cpu_moe=0)
    except EstimatorError as exc:
        not_planned = f"the planner can't plan this file: {exc}"
    if not_planned:
        return {"options": {"n_gpu_layers": -1},
                "info": {**base, "n_gpu_layers": -1, "layers_on_gpu": "all",
                         "why": f"every layer on the GPU (-1), not planned: {not_planned}"}}
    what = file or str(header.metadata.get("general.name") or "the model")
    if not applied.fits:
        lines = [r for r in applied.reasons if r.startswith(("doesn't fit", "nearest fixes", "no smaller"))]
        moe = (f" It would fit with expert offload (-ngl {wanted.ngl} {_expert_flags(wanted)}), "
               f"but {EXPERT_OFFLOAD_UNAVAILABLE}." if wanted.fits and wanted.expert_args() else "")
        raise EngineError(f"{what} ({scheme}) at a {n_ctx:,} context can't be placed on node "
                          f"{node or '(this node)'}'s GPU ({' + '.join(f'{b:,}' for b in gpu_bytes)} B free) "
                          f"and {ram_bytes:,} B of available RAM with a layer on the GPU: "
                          f"{'; '.join(lines)}.{moe} It was not run on the CPU instead.",
                          code="insufficient_memory", status=507)
    info = {**base, "n_gpu_layers": applied.ngl, "layers_on_gpu": applied.gpu_layers,
            "n_layers": applied.n_layers, "output_on_gpu": applied.output_on_device,
            "tensor_split": applied.tensor_split, "scheme": scheme,
            # per GPU: model, KV, compute buffer and CUDA context bytes, as the solver counts them
            "planned_gpu": applied.devices,
            "planned_ram_bytes": applied.system_ram_bytes,
            "why": (f"the planner's fit: {applied.gpu_layers} of {applied.n_layers} layers"
                    f"{' and the output layer' if applied.output_on_device else ''} on the GPU "
                    f"(-ngl {applied.ngl}) at a {n_ctx:,} context"),
            "planner_command": applied.command}
    if wanted.expert_args():   # whole layers' experts (--n-cpu-moe) or part of a block's (-ot)
        partial = f" and {', '.join(wanted.partial_experts)}" if wanted.partial_experts else ""
        info["expert_offload"] = (f"not used: the solver's plan was -ngl {wanted.ngl} {_expert_flags(wanted)} "
                                  f"(the experts of the first {wanted.n_cpu_moe} layers{partial} in RAM), "
                                  f"but {EXPERT_OFFLOAD_UNAVAILABLE}; whole layers "
                                  f"instead: -ngl {applied.ngl}")
    return {"options": _options(applied), "info": info}


def _expert_flags(f: Fit) -> str:
    return shlex.join(f.expert_args())


def available_ram_bytes() -> int:
    """MemAvailable from /proc/meminfo: what the kernel says new allocations can take without
    swapping (the RAM that layers left off the GPU can use)."""
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise EngineError("the node's available memory can't be read (/proc/meminfo has no MemAvailable)")


def free_gpu_bytes() -> int | None:
    """GPU 0's free bytes (torch, else nvidia-smi), None when neither can read it."""
    memory = gpu_memory()
    if memory is not None:
        return memory[0]
    report = gpu_memory_report()
    return None if "error" in report else report["total_bytes"] - report["used_bytes"]


def placement_for(format: str, files: list[Path], *, n_ctx: int, device: str | None,
                  node: str = "") -> dict | None:
    """The placement to pass to open_engine for a variant loaded on `device`: a GGUF on a cuda
    node gets the solver's; None elsewhere, and where the GPU's memory can't be read (the engine
    then refuses the load naming what is missing, as it does on a cuda node without a GPU)."""
    if device != "cuda" or format != "gguf":
        return None
    free = free_gpu_bytes()
    if free is None:
        return None
    ggufs = [f for f in files if f.name.endswith(".gguf")]
    if len(ggufs) != 1 or not ggufs[0].is_file():
        return None  # the engine refuses these with its own message
    try:
        header = read_gguf_header_from_path(ggufs[0])
    except GGUFError as exc:
        raise EngineError(f"{ggufs[0].name} is not a valid GGUF file: {exc}",
                          code="model_load_failed") from None
    return llama_gpu_placement(header, gpu_bytes=[free], ram_bytes=available_ram_bytes(),
                               n_ctx=n_ctx, node=node, file=ggufs[0].name)
