"""vllm_fit(): `vllm serve` arguments for a model on the GPU(s) — what vLLM itself would decide.

vLLM (V1 engine) sizes its KV cache once, at start-up (vllm/v1/worker/gpu_worker.py,
`Worker.determine_available_memory`):
    available_kv = total_gpu_memory × gpu_memory_utilization − peak_memory
where peak_memory is torch's allocated peak during `profile_run()` (the weights plus the
activation peak of one forward over max_num_batched_tokens) plus the non-torch allocations
(CUDA context, NCCL, cuBLAS workspace). Every tensor-parallel rank does this for its own GPU
and holds 1/TP of the weights. We take the activation peak from memory.compute_bytes (runtime
vllm) and the non-torch part + CUDA graphs from memory.overhead_bytes (1 GiB per device).
The KV pool is then cut into blocks of 16 tokens (vllm/v1/kv_cache_interface.py: AttentionSpec
page_size_bytes = block_size × num_kv_heads × head_size × 2 (K, V) × dtype bytes; MLAAttentionSpec
one latent "head" of kv_lora_rank + qk_rope_head_dim and no V) and
    num_gpu_blocks = available_kv // page_size // num_layers
(vllm/v1/core/kv_cache_utils.py, `get_num_blocks`). A request at max_model_len needs
cdiv(max_model_len, 16) blocks per full-attention layer and, for a sliding-window layer,
cdiv(sliding_window − 1 + max_num_batched_tokens, 16) (SlidingWindowSpec.max_memory_usage_bytes);
vLLM logs "Maximum concurrency for N tokens per request: X x" = num_gpu_blocks × layers / blocks
per request (`get_max_concurrency_for_kv_cache_config`). KV heads are split across ranks
(replicated when TP > num_kv_heads); the MLA latent is replicated on every rank.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .architecture import Architecture
from .errors import EstimatorError
from .estimate import Estimate
from .fit import context_steps
from .hardware import Hardware
from .memory import VLLM_BLOCK, VLLM_MAX_BATCHED_TOKENS, compute_bytes, overhead_bytes, vllm_cache_unmeasured
from .schemes import parse_scheme, weights_bytes_and_formula
from .workload import Workload, context_limit

# Highest precision first: what vLLM loads. FP8 and NF4 quantize a 16-bit checkpoint at load
# (--quantization fp8 / bitsandbytes); the others are checkpoints published in that format (DeepSeek's
# and Kimi's block FP8, gpt-oss's MXFP4, AWQ/GPTQ/NVFP4 repos), read from their quantization_config.
VLLM_SCHEMES = ("BF16", "FP8", "FP8-128x128", "AWQ-4bit-g128", "GPTQ-4bit-g128", "MXFP4", "NVFP4", "NF4")
# the format a family's own checkpoints ship in, tried first (openai/gpt-oss-*: MXFP4 experts)
NATIVE = {"gpt-oss": "MXFP4"}
PREQUANTIZED = ("FP8-128x128", "MXFP4", "AWQ", "GPTQ", "NVFP4")
KV_CACHE_DTYPE = {"f16": "auto", "fp8": "fp8"}   # vLLM --kv-cache-dtype; q8_0/q4_0 are llama.cpp types
QUANTIZATION_FLAG = {"FP8": "fp8", "NF4": "bitsandbytes"}   # AWQ/GPTQ are read from the checkpoint
MODEL_ID_PLACEHOLDER = "<your-model-id>"   # in the command of a plan that names no model (a bare count)


@dataclass
class VllmFit:
    scheme: str
    max_model_len: int
    gpu_memory_utilization: float
    tensor_parallel_size: int
    weights_per_gpu_bytes: int
    activation_bytes: int
    non_torch_bytes: int
    kv_pool_per_gpu_bytes: int
    block_bytes: int                # one block of 16 tokens, all layers, one rank
    num_gpu_blocks: int
    kv_per_request_bytes: int       # one request at max_model_len, one rank
    max_concurrency: float
    fits: bool
    reasons: list[str] = field(default_factory=list)
    command: str = ""
    command_note: str = ""          # what to substitute in `command` before running it ("" = runs as printed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def page_bytes(arch: Architecture, wl: Workload, tp: int) -> int:
    """Bytes of one 16-token block of one layer on one rank (AttentionSpec.page_size_bytes)."""
    elem = 1 if wl.kv_dtype == "fp8" else 2
    if arch.is_mla:
        return VLLM_BLOCK * arch.mla_kv_dim * elem
    heads = max(1, arch.n_kv_heads // tp)
    return VLLM_BLOCK * heads * arch.head_dim * 2 * elem


def blocks_per_request(arch: Architecture, max_model_len: int) -> int:
    """Blocks (all layers summed) one request of max_model_len tokens holds."""
    full = _cdiv(max_model_len, VLLM_BLOCK)
    n_swa = len(arch.swa_layers) if arch.sliding_window else 0
    local = min(full, _cdiv(arch.sliding_window - 1 + VLLM_MAX_BATCHED_TOKENS, VLLM_BLOCK)) if n_swa else full
    return (arch.kv_layers - n_swa) * full + n_swa * local


def tp_sizes(arch: Architecture, devices: int) -> list[int]:
    """Tensor-parallel sizes vLLM accepts on `devices` GPUs: powers of two dividing the head count."""
    out, t = [], 1
    while t <= devices:
        if arch.n_heads % t == 0:
            out.append(t)
        t *= 2
    return out


def _plan(arch: Architecture, hw: Hardware, wl: Workload, scheme: str, tp: int, max_len: int) -> dict[str, Any]:
    weights = weights_bytes_and_formula(arch, parse_scheme(scheme))[0]
    at = replace(wl, runtime="vllm", context=max_len, batch=1, notes=())
    activation = compute_bytes(arch, at)[0]
    non_torch = overhead_bytes(hw, at)[0] // hw.device_count
    per_gpu_w = _cdiv(weights, tp)
    pool_raw = int(hw.memory_bytes * wl.gpu_memory_utilization) - per_gpu_w - activation - non_torch
    pool = max(0, pool_raw)
    page = page_bytes(arch, wl, tp)
    blocks = pool // page // arch.kv_layers
    per_request = blocks_per_request(arch, max_len)
    concurrency = blocks * arch.kv_layers / per_request if per_request else 0.0
    return {"weights": per_gpu_w, "activation": activation, "non_torch": non_torch, "pool": pool, "pool_raw": pool_raw,
            "page": page,
            "blocks": blocks, "per_request": per_request * page, "concurrency": concurrency}


def vllm_fit(arch: Architecture, hw: Hardware, wl: Workload, scheme: str = "", repo: str = "") -> VllmFit:
    """The largest max_model_len (powers of two from the workload's context, or the model's limit)
    at which the KV pool holds `wl.batch` requests, with the highest-precision scheme that allows it."""
    if hw.kind != "gpu":
        raise EstimatorError("hardware", "vLLM plans need a GPU (CUDA/ROCm) profile")
    if wl.mode != "inference":
        raise EstimatorError("mode", "the vLLM fit plans inference")
    if vllm_cache_unmeasured(arch):
        raise EstimatorError("runtime", vllm_cache_unmeasured(arch))
    if not arch.kv_layers:
        raise EstimatorError("model", "no attention layers: vLLM's KV blocks are sized per attention layer, and the "
                                      "recurrent state it keeps instead (its Mamba spec) is not modelled here")
    native = NATIVE.get(arch.arch)
    schemes = [scheme] if scheme else ([native] if native else []) + [s for s in VLLM_SCHEMES if s != native]
    for s in schemes:
        if s not in VLLM_SCHEMES:
            raise EstimatorError("fit_scheme",
                                 f"{s!r} is not one vLLM loads here; use one of {', '.join(VLLM_SCHEMES)}")
    sizes = tp_sizes(arch, hw.device_count)[-1:]   # every GPU the plan has that TP can use
    steps = context_steps(wl.context, arch.max_position_embeddings) or [wl.context]
    limit, limit_note = context_limit(arch.max_position_embeddings)
    reasons: list[str] = []
    best = None
    for s in schemes:
        for tp in sizes:
            ok = [c for c in steps if _plan(arch, hw, wl, s, tp, c)["concurrency"] >= wl.batch]
            if ok:
                best = (s, tp, ok[-1], True)
                break
        if best:
            break
    if best is None:
        # the closest miss: the scheme leaving the largest KV pool (vLLM has no system-RAM offload)
        closest = max(schemes, key=lambda name: _plan(arch, hw, wl, name, sizes[-1], wl.context)["pool_raw"])
        best = (closest, sizes[-1], wl.context, False)
    s, tp, max_len, fits = best
    p = _plan(arch, hw, wl, s, tp, max_len)
    if not fits:
        # vLLM's start-up checks (v1/core/kv_cache_utils.py check_enough_kv_cache_memory)
        error = ("\"No available memory for the cache blocks\"" if p["blocks"] == 0 else
                 f"\"To serve at least one request with the models's max seq len ({max_len}), ... KV cache is "
                 "needed, which is larger than the available KV cache memory\"")
        reasons.append(f"no scheme of {', '.join(schemes)} holds {wl.batch} request(s) of {wl.context:,} tokens "
                       f"on {sizes[-1]} GPU(s); vLLM keeps every weight on the GPUs (no --n-cpu-moe-style "
                       f"offload), so this command stops at start-up with {error} — use more GPUs, a shorter "
                       "--max-model-len, or llama.cpp with offload")
        shorter = [c for c in (wl.context >> k for k in range(1, 8)) if c >= 1024
                   and _plan(arch, hw, wl, s, tp, c)["concurrency"] >= wl.batch]
        if shorter:
            reasons.append(f"{s} does fit with --max-model-len {shorter[0]:,} (the largest power-of-two "
                           f"fraction of {wl.context:,} that holds {wl.batch} request(s))")
    util = wl.gpu_memory_utilization
    reasons += [
        f"{s}: " + ("chosen by hand" if scheme else "the one leaving the most GPU memory for the KV cache "
                    "(closest to fitting)" if not fits else f"the format {arch.arch} checkpoints ship in"
                    if s == native else "the highest-precision scheme vLLM loads that fits"),
        f"--tensor-parallel-size {tp}: the largest power of two ≤ {hw.device_count} GPU(s) dividing "
        f"{arch.n_heads} heads; each holds 1/{tp} of the weights = {p['weights']:,} B",
        f"KV pool per GPU = {hw.memory_bytes:,} × {util} utilization − {p['weights']:,} weights − "
        f"{p['activation']:,} activation peak − {p['non_torch']:,} CUDA context/graphs = {p['pool']:,} B "
        f"(gpu_worker.determine_available_memory)",
        f"num_gpu_blocks = {p['pool']:,} // {p['page']:,} B per 16-token block per layer // {arch.kv_layers} "
        f"layers = {p['blocks']:,}",
        f"--max-model-len {max_len:,}: the largest (powers of two from {wl.context:,}, ≤ "
        f"{limit:,}) with ≥ {wl.batch} concurrent request(s); vLLM would log "
        f"\"Maximum concurrency for {max_len:,} tokens per request: {p['concurrency']:.2f}x\"",
    ]
    if limit_note and fits:
        reasons.append(limit_note)
    if max_len > arch.max_position_embeddings:
        # vllm/config/model.py _get_and_verify_max_len: "User-specified max_model_len ... is greater than
        # the derived max_model_len ..." unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1
        reasons.append(f"--max-model-len {max_len:,} is beyond the model's {arch.max_position_embeddings:,} "
                       "positions: vLLM refuses it unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 is set (and rope "
                       "scaling such as YaRN is configured where the model card allows it)")
    if arch.hybrid is not None:
        reasons.append("hybrid model: the recurrent layers' state (vLLM's Mamba spec, one block per request, page "
                       "size unified with attention) is not modelled here; blocks count the attention layers only")
    if s.startswith(PREQUANTIZED):
        reasons.append(f"{s}: serve a checkpoint of {repo or arch.name} published in that format (vLLM reads its "
                       "quantization_config); FP8 and NF4 quantize a 16-bit checkpoint at load")
    if wl.kv_dtype not in KV_CACHE_DTYPE:
        reasons.append(f"KV {wl.kv_dtype} is a llama.cpp type; vLLM keeps a 16-bit cache here "
                       "(or --kv-cache-dtype fp8)")
    result = VllmFit(scheme=s, max_model_len=max_len, gpu_memory_utilization=util, tensor_parallel_size=tp,
                     weights_per_gpu_bytes=p["weights"], activation_bytes=p["activation"],
                     non_torch_bytes=p["non_torch"], kv_pool_per_gpu_bytes=p["pool"],
                     block_bytes=p["page"] * arch.kv_layers, num_gpu_blocks=p["blocks"],
                     kv_per_request_bytes=p["per_request"], max_concurrency=round(p["concurrency"], 2),
                     fits=fits, reasons=reasons)
    if repo:   # a Hub id or folder the user gave (or a preset's): runs as printed
        result.command = command(shlex.quote(repo), wl, result)
    else:      # the plan knows the model's shape, not where it lies: a placeholder the user fills
        result.command = command(model_placeholder(arch), wl, result)
        result.command_note = (f"replace {model_placeholder(arch)} with "
                               + ("the model's" if arch.anonymous else f"{arch.name}'s")
                               + " Hub id or local folder (its config.json and .safetensors)")
    return result


def model_placeholder(arch: Architecture) -> str:
    """`vllm serve`'s model argument where no id is known: flagged by its brackets (a shell refuses
    to run it unfilled), letters, digits, '.', '_', '-' and '/' inside."""
    if arch.anonymous:
        return MODEL_ID_PLACEHOLDER
    slug = "-".join(re.sub(r"[^A-Za-z0-9._-]+", " ", arch.name).split()) or "model"
    return f"<path/to/{slug}>"


def command(model: str, wl: Workload, f: VllmFit) -> str:
    """`vllm serve` flags (vLLM docs, engine arguments); `model` is shell-safe already (a quoted id
    or a placeholder)."""
    parts = ["vllm", "serve", model, "--max-model-len", str(f.max_model_len),
             "--gpu-memory-utilization", f"{f.gpu_memory_utilization:g}",
             "--tensor-parallel-size", str(f.tensor_parallel_size)]
    if f.scheme in QUANTIZATION_FLAG:
        parts += ["--quantization", QUANTIZATION_FLAG[f.scheme]]
    if wl.kv_dtype == "fp8":
        parts += ["--kv-cache-dtype", "fp8"]
    if wl.batch > 1:
        parts += ["--max-num-seqs", str(wl.batch)]
    return " ".join(parts)


def vllm_fit_estimate(est: Estimate, repo: str = "", scheme: str = "") -> VllmFit | None:
    """vllm_fit() for a vLLM or llama.cpp (shown beside its llama-server command) inference plan on GPU
    hardware; None for transformers, training, non-GPU devices or models without attention layers."""
    if est.workload.mode != "inference" or est.hardware.kind != "gpu" or est.workload.runtime == "transformers":
        return None
    if not est.model.kv_layers:
        return None
    return vllm_fit(est.model, est.hardware, est.workload, scheme, repo)
