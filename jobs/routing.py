"""Which queue a job goes to: one whose workers can run its method with the memory it needs.

Workers declare their queues, device, memory and methods in their heartbeat (jobs.heartbeat). A
GPU queue is preferred when a live GPU worker can take the job; a job no known worker could ever
run is refused at submit time, naming what is missing.
"""

from dataclasses import dataclass

from jobs.methods.base import JobError
from jobs.models import Worker


@dataclass
class Placement:
    queue: str
    workers: list[str]
    live: bool  # a worker that can run it is up right now


def placement(*, method: str, peak_memory_bytes: int) -> Placement:
    capable = [w for w in Worker.objects.all() if method in (w.methods or [])]
    if not capable:
        raise JobError.field("method", f"no worker node can run {method}")
    roomy = [w for w in capable if w.memory_bytes >= peak_memory_bytes]
    if not roomy:
        biggest = max(w.memory_bytes for w in capable)
        raise JobError.field(
            "method", f"{method} needs about {peak_memory_bytes / 2**30:.1f} GiB but the largest "
            f"worker that runs it has {biggest / 2**30:.1f} GiB")
    for want_live in (True, False):
        for queue in ("gpu", "cpu"):
            chosen = [w for w in roomy if queue in w.queues and (w.is_alive or not want_live)
                      and (queue == "cpu" or w.device == "cuda")]
            if chosen:
                return Placement(queue, [w.hostname for w in chosen], want_live)
    raise JobError.field("method", f"the workers that run {method} consume no known queue")


def choose_queue(*, method: str, peak_memory_bytes: int) -> str:
    return placement(method=method, peak_memory_bytes=peak_memory_bytes).queue
