"""Our own worker nodes as planner hardware ("our nodes: <hostname>"): memory is the node's declared
memory (Worker.memory_bytes), speeds come from what the node measured of itself (jobs/node_bench.py →
planner/estimator/calibration.py), with the speed model's measured error (planner/speed_accuracy.py).

Only live nodes with a finished measurement are offered: a node without figures has no speed the
planner could show as measured.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.utils import timezone

from jobs.models import Worker
from planner.estimator import EstimatorError, Hardware
from planner.estimator.calibration import node_calibration
from planner.speed_accuracy import speed_error_note

NODE_PREFIX = "node:"


def node_key(hostname: str) -> str:
    return f"{NODE_PREFIX}{hostname}"


def live_measured_nodes() -> list[Worker]:
    cutoff = timezone.now() - timedelta(seconds=settings.WORKER_STALE_SECONDS)
    return [w for w in Worker.objects.filter(last_seen__gte=cutoff, measured_at__isnull=False)
            if w.measurements.get("llama_bench") and w.measurements.get("bandwidth")]


def node_choices() -> list[tuple[str, str]]:
    return [(node_key(w.hostname), f"our nodes: {w.hostname}") for w in live_measured_nodes()]


def node_hardware(worker: Worker, device_count: int = 1) -> Hardware:
    """The node as a Hardware profile; its calibration carries every speed constant and their source."""
    measured_at = worker.measured_at.astimezone(dt_timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cal = node_calibration(worker.hostname, measured_at, worker.measurements)
    if cal is None:
        raise EstimatorError("hardware", f"node {worker.hostname} holds no usable measurement")
    note = speed_error_note()
    if note:
        cal = replace(cal, error_note=note)
    flops = max((f for _, f in cal.prefill_flops), default=0.0)
    kind = "gpu" if worker.device == "cuda" else "cpu"
    # a gpu node's memory_bytes is its GPU's; the RAM beside it is what llama.cpp offloads layers and
    # experts to (the planner's RAM input still replaces it)
    return Hardware(key=node_key(worker.hostname), name=f"our nodes: {worker.hostname}", kind=kind,
                    memory_bytes=worker.memory_bytes, bandwidth_bytes_per_s=cal.bandwidth_bytes_per_s,
                    fp16_flops=flops or 1.0, device_count=device_count, calibration=cal,
                    ram_bytes=worker.ram_bytes if kind == "gpu" else 0)


def node_hardware_by_key(key: str, device_count: int = 1) -> Hardware:
    """Hardware for a `node:<hostname>` key; EstimatorError('hardware') for an unknown or silent node."""
    hostname = key.removeprefix(NODE_PREFIX)
    worker = next((w for w in live_measured_nodes() if w.hostname == hostname), None)
    if worker is None:
        raise EstimatorError("hardware", f"no live, measured node {hostname!r}; see /jobs/workers/")
    return node_hardware(worker, device_count)
