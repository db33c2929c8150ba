"""The GPU of a node that declared itself cuda (WORKER_DEVICE=cuda): whether this process can use
it, how much of its memory is free, and the errors that name the node when it can't.

Used by the engines (placing a model), the job methods in their Django-free child process
(quantizing), the worker's heartbeat (the Workers page) and the runtime server (its memory
budget). Standard library only at import time: torch is imported when a GPU is asked about, and
nothing here imports Django.
"""

from __future__ import annotations

import os
import subprocess


class GpuUnavailable(RuntimeError):
    """A node declared cuda but this process can't use its GPU (missing, busy or out of memory).
    Raised instead of running on the CPU: a 7 B job meant for minutes on a GPU would take hours
    on the CPU, and its measurements would describe the wrong device."""


def gpu_memory() -> tuple[int, int] | None:
    """(free, total) bytes of GPU 0 as the driver reports them (torch.cuda.mem_get_info: every
    process's allocations count, not only this one's), or None where torch sees no GPU."""
    try:
        import torch  # optional here: a runtime-only node may have no torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info(0)
    return int(free), int(total)


def require_gpu(*, node: str, need_bytes: int = 0) -> str:
    """The name of the GPU this cuda node's process will use; GpuUnavailable naming the node and
    what is missing when torch sees none, or when fewer than `need_bytes` are free on it."""
    try:
        import torch
    except ImportError:
        raise GpuUnavailable(f"node {node} declares WORKER_DEVICE=cuda but torch is not installed "
                             "here; the job was not run on the CPU instead") from None
    if not torch.cuda.is_available():
        if torch.version.cuda is None:
            why = f"torch {torch.__version__} is a CPU-only build"
        elif os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
            why = (f"torch.cuda.is_available() is False with CUDA_VISIBLE_DEVICES="
                   f"{os.environ['CUDA_VISIBLE_DEVICES']!r}")
        else:
            why = "torch.cuda.is_available() is False (no NVIDIA driver or device visible)"
        raise GpuUnavailable(f"node {node} declares WORKER_DEVICE=cuda but has no usable GPU: "
                             f"{why}; the job was not run on the CPU instead")
    name = torch.cuda.get_device_name(0)
    free, total = torch.cuda.mem_get_info(0)
    if need_bytes and free < need_bytes:
        raise GpuUnavailable(
            f"node {node}'s GPU {name} is busy: {free / 2**30:.1f} GiB free of "
            f"{total / 2**30:.1f} GiB, the job needs about {need_bytes / 2**30:.1f} GiB")
    return name


def out_of_memory_message(*, node: str, error: BaseException) -> str:
    """What a job that ran out of GPU memory on this node reports (torch.cuda.OutOfMemoryError)."""
    memory = gpu_memory()
    where = (f"{memory[0] / 2**30:.1f} GiB free of {memory[1] / 2**30:.1f} GiB after the failure"
             if memory else "memory unknown")
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"node {node}'s GPU ran out of memory ({where}): {first}"


def gpu_memory_report() -> dict:
    """GPU 0's memory in use and in all, from nvidia-smi: what the Workers page shows for a cuda
    node. nvidia-smi rather than torch, because the heartbeat runs in the worker's own process,
    where torch.cuda.mem_get_info would open a CUDA context and hold its few hundred MiB of GPU
    memory for the worker's lifetime. {"error": ...} when it can't be read."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=memory.used,memory.total",
                               "--format=csv,noheader,nounits", "--id=0"],
                              capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        return {"error": "no GPU visible (nvidia-smi not found)"}
    except subprocess.TimeoutExpired:
        return {"error": "nvidia-smi did not answer within 10 s"}
    if done.returncode != 0:
        return {"error": f"nvidia-smi failed: {(done.stdout + done.stderr).strip()[:200]}"}
    try:
        used, total = (int(v) * 2**20 for v in done.stdout.strip().splitlines()[0].split(","))
    except ValueError:
        return {"error": f"nvidia-smi answered {done.stdout.strip()[:200]!r}"}
    return {"used_bytes": used, "total_bytes": total}


def runtime_memory_budget(configured_bytes: int) -> int:
    """The runtime server's memory budget: on a node that declares WORKER_DEVICE=cuda, the GPU's
    free memory when the server starts (what a model placed on the GPU can use, other
    processes' allocations excluded); elsewhere the configured RUNTIME_MEMORY_BUDGET_GB."""
    if os.environ.get("WORKER_DEVICE") != "cuda":
        return configured_bytes
    report = gpu_memory_report()
    if "error" in report:
        raise GpuUnavailable(f"this node declares WORKER_DEVICE=cuda but its GPU memory can't be "
                             f"read: {report['error']}")
    return report["total_bytes"] - report["used_bytes"]
