"""How many bytes a variant will take once loaded, for admission against the memory budget.

Weights are the variant's file sizes (GGUF and safetensors are mapped or copied nearly 1:1), except
where the engine loads them wider than stored: an unquantized HF checkpoint computes in float32 on
a CPU (engines/transformers_engine.py), so its float16/bfloat16 tensors take twice their file size. The KV
cache for the context comes from the planner's estimator (`planner.estimator.memory.kv_cache_bytes`,
which follows llama.cpp's llama-kv-cache.cpp and transformers' DynamicCache), plus a hybrid model's
recurrent state (`recurrent_bytes`, a figure of its own), when the model's config describes its
shape; otherwise we fall back to weights × 1.2.
"""

from __future__ import annotations

from pathlib import Path

FALLBACK_FACTOR = 1.2
COMPUTE_OVERHEAD_BYTES = 64 * 1024**2  # compute buffers and allocator slack, a flat allowance


STORED_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}


def files_bytes(files: list[Path]) -> int:
    return sum(f.stat().st_size for f in files if f.is_file())


def weights_bytes(*, files: list[Path], config: dict, format: str, gpu: bool) -> int:
    """The variant's files as the engine holds them once loaded."""
    total = files_bytes(files)
    stored = STORED_BYTES.get(config.get("dtype") or config.get("torch_dtype"))
    if format == "hf" and not gpu and "quantization_config" not in config and stored:
        tensors = files_bytes([f for f in files if f.suffix == ".safetensors"])
        total += tensors * (4 // stored - 1)
    return total


def kv_bytes(*, config: dict, n_ctx: int, runtime: str) -> int | None:
    """KV-cache bytes at n_ctx plus a hybrid's recurrent state, or None when the config can't tell
    the model's shape."""
    try:
        from planner.estimator import Architecture, Workload
        from planner.estimator.memory import kv_cache_bytes, recurrent_bytes

        arch = Architecture.from_config(config)
        wl = Workload(runtime=runtime, context=n_ctx)
        return kv_cache_bytes(arch, wl)[0] + recurrent_bytes(arch, wl)[0]
    except Exception:  # estimator missing or config incomplete: use the fallback
        return None


def estimate_bytes(*, files: list[Path], config: dict, n_ctx: int, format: str,
                   gpu: bool = False) -> int:
    weights = weights_bytes(files=files, config=config, format=format, gpu=gpu)
    kv = kv_bytes(config=config, n_ctx=n_ctx,
                  runtime="llama.cpp" if format == "gguf" else "transformers")
    if kv is None:
        return int(weights * FALLBACK_FACTOR)
    return weights + kv + COMPUTE_OVERHEAD_BYTES
