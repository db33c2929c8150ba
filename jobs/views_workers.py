"""The Workers page (/jobs/workers/): what the cluster looks like right now — each worker's queues,
device, memory, methods and heartbeat, its running jobs, how many jobs wait in each Redis queue,
and what the runtime server has loaded. Any part that can't be reached shows "unavailable"."""

from collections import defaultdict

from django.conf import settings
from django.db.models import Count
from django.shortcuts import render
from kombu.exceptions import ChannelError, OperationalError

from jobs.models import Job, Worker
from jobs.selectors import jobs_visible_to
from quantdash.celery import app

# Fail fast when the broker is down: one attempt, one second to connect or answer, so the page
# says "Redis unavailable" at once instead of waiting out kombu's connection retries.
BROKER_PROBE = {"max_retries": 0, "socket_connect_timeout": 1, "socket_timeout": 1}


def queue_lengths(names: list[str]) -> dict[str, int] | None:
    """Messages waiting in each queue, or None if the broker is down.

    A passive queue_declare returns kombu's own count: for Redis, `Channel._size` sums LLEN over
    the queue's list and one list per priority step (kombu/transport/redis.py, `_size`,
    `_q_for_pri`). A queue with nothing in it has no Redis key at all, which the passive
    declare reports as NOT_FOUND (`_has_queue`): that is an empty queue, 0.
    The URL is REDIS_URL, which settings use as the Celery broker URL.
    """
    conn = app.connection_for_read(url=settings.REDIS_URL, connect_timeout=1, transport_options=BROKER_PROBE)
    try:
        with conn:
            channel = conn.default_channel
            return {name: _message_count(channel, name) for name in names}
    except (OperationalError, *conn.connection_errors):
        return None


def _message_count(channel, name: str) -> int:
    try:
        return channel.queue_declare(queue=name, passive=True).message_count
    except ChannelError:
        return 0


def worker_list(request):
    from runtime.client import status_sync

    workers = list(Worker.objects.all())
    running = defaultdict(list)
    visible = set(jobs_visible_to(request.user).filter(status=Job.Status.RUNNING)
                  .values_list("pk", flat=True))
    for pk, worker in Job.objects.filter(status=Job.Status.RUNNING).values_list("pk", "worker"):
        running[worker].append({"pk": pk, "visible": pk in visible})
    rows = [{"worker": w, "running": running.get(w.hostname, [])} for w in workers]
    names = sorted({*settings.CELERY_TASK_QUEUES_NAMES, *(q for w in workers for q in w.queues or [])})
    lengths = queue_lengths(names)
    queued = dict(Job.objects.filter(status=Job.Status.QUEUED).values("queue")
                  .annotate(n=Count("pk")).values_list("queue", "n"))
    context = {
        "rows": rows,
        "queues": [{"name": n, "length": None if lengths is None else lengths[n],
                    "jobs_queued": queued.get(n, 0),
                    "consumers": [w.hostname for w in workers if n in (w.queues or [])]}
                   for n in names],
        "redis_up": lengths is not None,
        "runtime": status_sync(),
        "runtime_url": settings.RUNTIME_URL,
    }
    return render(request, "jobs/workers.html", context)
