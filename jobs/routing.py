"""Which queue a job goes to: one whose workers can run its method with the memory it needs.

Workers declare their queues, device, memory and methods in their heartbeat (jobs.heartbeat). A
shared queue (gpu, then cpu) is chosen when every worker consuming it can take the job, so any
of them may pick it up; a GPU queue counts only when its workers are cuda nodes. Otherwise the
job goes to the node queue (`node.<hostname>`) of one capable worker: the one with the fewest
running jobs, GPU nodes first. A job no known worker could ever run is refused at submit time,
naming what is missing.
"""

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass

from jobs.heartbeat import node_queue
from jobs.methods.base import JobError
from jobs.models import Job, Worker

SHARED_QUEUES = ("gpu", "cpu")


@dataclass
class Placement:
    queue: str
    workers: list[str]
    live: bool  # a worker that can run it is up right now


def _fits(worker: Worker, method: str, peak_memory_bytes: int) -> bool:
    return method in (worker.methods or []) and worker.memory_bytes >= peak_memory_bytes


def placement(*, method: str, peak_memory_bytes: int, exclude: Collection[str] = ()) -> Placement:
    """Where a job should go. `exclude` names workers not to count (the reaper passes the worker
    that lost the job, which may still look alive for a few seconds)."""
    workers = [w for w in Worker.objects.all() if w.hostname not in exclude]
    capable = [w for w in workers if method in (w.methods or [])]
    if not capable:
        raise JobError.field("method", f"no worker node can run {method}")
    roomy = [w for w in capable if w.memory_bytes >= peak_memory_bytes]
    if not roomy:
        biggest = max(w.memory_bytes for w in capable)
        raise JobError.field(
            "method", f"{method} needs about {peak_memory_bytes / 2**30:.1f} GiB but the largest "
            f"worker that runs it has {biggest / 2**30:.1f} GiB")
    running = Counter(Job.objects.filter(status=Job.Status.RUNNING).values_list("worker", flat=True))
    for want_live in (True, False):
        up = [w for w in workers if w.is_alive or not want_live]
        for queue in SHARED_QUEUES:
            consumers = [w for w in up if queue in (w.queues or [])]
            if consumers and all(_fits(w, method, peak_memory_bytes)
                                 and (queue == "cpu" or w.device == "cuda") for w in consumers):
                return Placement(queue, [w.hostname for w in consumers], want_live)
        # No shared queue is safe: name one worker that can run it.
        nodes = [w for w in up if w in roomy and node_queue(w.hostname) in (w.queues or [])]
        if nodes:
            best = min(nodes, key=lambda w: (w.device != "cuda", running[w.hostname],
                                             -w.memory_bytes, w.hostname))
            return Placement(node_queue(best.hostname), [best.hostname], want_live)
    raise JobError.field("method", f"the workers that run {method} consume no known queue")


def choose_queue(*, method: str, peak_memory_bytes: int) -> str:
    return placement(method=method, peak_memory_bytes=peak_memory_bytes).queue


def requeue_queue(*, job: Job) -> str:
    """The queue for a job the reaper sends back: placed again among the workers other than the
    one that lost it (a node queue of a dead worker would hold it until that node returns);
    its old queue when no other worker can take it."""
    peak = int(job.estimate.get("peak_memory_bytes", 0))
    try:
        return placement(method=job.method, peak_memory_bytes=peak, exclude=[job.worker]).queue
    except JobError:
        return job.queue
