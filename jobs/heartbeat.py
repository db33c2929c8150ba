"""A worker bootstep that declares the node (device, memory, methods, queues), keeps its
heartbeat fresh in the Worker table, and measures the node once in the background
(jobs/node_bench.py; WORKER_NODE_BENCH=0 skips it). Django models are imported lazily: this module is loaded by
the Celery app before Django is set up.

Besides the queues given with -Q, every worker consumes its own node queue (`node.<hostname>`),
so routing can send a job to one capable worker when not every worker on a shared queue could
run it (jobs.routing).
"""

import logging
import os
import threading

from celery import bootsteps
from celery.signals import celeryd_after_setup

from engines.gpu import gpu_memory_report

logger = logging.getLogger(__name__)
NODE_QUEUE_PREFIX = "node."


def node_queue(hostname: str) -> str:
    return f"{NODE_QUEUE_PREFIX}{hostname}"


@celeryd_after_setup.connect
def _consume_node_queue(sender: str, instance, **kwargs) -> None:
    """Celery's documented place to add a queue every worker consumes (sender is its hostname)."""
    instance.app.amqp.queues.select_add(node_queue(sender))


def declared_methods(available: list[str]) -> list[str]:
    """The methods this node offers: all it can run, or the subset named in WORKER_METHODS
    (comma-separated), e.g. a small node that only imports and evaluates."""
    wanted = [m.strip() for m in os.environ.get("WORKER_METHODS", "").split(",") if m.strip()]
    if not wanted:
        return available
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        logger.warning("WORKER_METHODS names methods this node can't run: %s", ", ".join(unknown))
    return [m for m in available if m in wanted]


def detect_device() -> tuple[str, str, int]:
    """(device, device name, memory bytes) of this node; WORKER_DEVICE/WORKER_MEMORY_GB override."""
    import psutil

    device = os.environ.get("WORKER_DEVICE", "")
    memory_gb = os.environ.get("WORKER_MEMORY_GB", "")
    name = ""
    memory = psutil.virtual_memory().total
    if device in ("", "cuda"):
        try:
            import torch

            if torch.cuda.is_available():
                device = "cuda"
                name = torch.cuda.get_device_name(0)
                memory = torch.cuda.get_device_properties(0).total_memory
        except ImportError:
            pass
    if device == "" and not name:
        device = "cpu"
    elif device == "cuda" and not name:
        # Declared cuda but torch sees no GPU: the node stays cuda (what its operator asked for),
        # and its jobs fail saying the GPU is missing rather than run for hours on the CPU.
        name = "no GPU visible"
    if memory_gb:
        memory = int(float(memory_gb) * 1024**3)
    return device, name, memory


def host_ram_bytes() -> int:
    """The host's RAM, whatever the device (WORKER_MEMORY_GB sets a cpu node's memory_bytes, not this)."""
    import psutil

    return int(psutil.virtual_memory().total)


class WorkerHeartbeat(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        self.tref = None

    def start(self, worker):
        from django.conf import settings

        self.hostname = worker.hostname
        self.queues = sorted(worker.app.amqp.queues.consume_from or ["cpu"])
        self.device, self.device_name, self.memory = detect_device()
        self.ram = host_ram_bytes()
        self.beat(first=True)
        self.tref = worker.timer.call_repeatedly(settings.WORKER_HEARTBEAT_SECONDS, self.beat)
        if os.environ.get("WORKER_NODE_BENCH", "1") != "0":
            # measured in the background: the worker takes jobs meanwhile (a job that runs marks the
            # measurement not quiet)
            threading.Thread(target=self.measure, name="node-bench", daemon=True).start()

    def measure(self) -> None:
        from jobs.node_bench import node_measure_and_store

        node_measure_and_store(hostname=self.hostname)

    def beat(self, first: bool = False) -> None:
        from django.db import close_old_connections
        from django.utils import timezone

        from jobs.methods import method_names
        from jobs.models import Worker
        from jobs.services import jobs_reap
        from jobs.sweeps import sweeps_advance_all

        close_old_connections()
        try:
            if first:
                self.started_at = timezone.now()
                self.methods = declared_methods(method_names(device=self.device))
            # The whole declaration every time: the row may have been deleted meanwhile.
            Worker.objects.update_or_create(hostname=self.hostname, defaults={
                "last_seen": timezone.now(), "queues": self.queues, "device": self.device,
                "device_name": self.device_name, "memory_bytes": self.memory, "ram_bytes": self.ram,
                "methods": self.methods, "started_at": self.started_at,
                "gpu_memory": gpu_memory_report() if self.device == "cuda" else {},
            })
            jobs_reap()  # any live worker notices jobs whose worker went silent
            sweeps_advance_all()  # a sweep whose job_finished was lost still moves on
        except Exception:  # a heartbeat must never kill the worker; the next one retries
            logger.exception("worker heartbeat failed")

    def stop(self, worker):
        if self.tref is not None:
            self.tref.cancel()
