from dataclasses import dataclass

from django.db.models import Q, QuerySet

from jobs.models import Job, Worker


def jobs_visible_to(user) -> QuerySet[Job]:
    if not user.is_authenticated:
        return Job.objects.none()
    return Job.objects.filter(team__members=user).distinct().select_related("team")


@dataclass
class QueueWait:
    """Why a queued job waits: its place in its queue (1: next), the queued jobs ahead of it,
    the jobs running now on the workers that consume its queue, and those workers."""

    queue: str
    position: int
    ahead: list[Job]
    running: list[Job]
    workers: list[Worker]


def queue_wait(job: Job) -> QueueWait | None:
    """A queued job's wait, or None for a job that isn't queued. Celery's Redis queues are
    first in, first out: the jobs ahead are those queued earlier on the same queue."""
    if job.status != Job.Status.QUEUED:
        return None
    waiting = Job.objects.filter(queue=job.queue, status=Job.Status.QUEUED)
    ahead = list(waiting.filter(Q(created_at__lt=job.created_at)
                                | Q(created_at=job.created_at, pk__lt=job.pk))
                 .order_by("created_at", "pk").select_related("input_variant__model"))
    workers = [w for w in Worker.objects.all() if job.queue in (w.queues or [])]
    running = list(Job.objects.filter(status=Job.Status.RUNNING,
                                      worker__in=[w.hostname for w in workers])
                   .order_by("started_at", "pk").select_related("input_variant__model"))
    return QueueWait(job.queue, len(ahead) + 1, ahead, running, workers)
