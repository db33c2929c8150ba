"""The Workers page (/jobs/workers/): what the cluster looks like right now — each worker's queues,
device, memory, methods and heartbeat, its running jobs, how many jobs wait in each Redis queue,
and what the runtime server has loaded. Any part that can't be reached shows "unavailable"."""

from collections import defaultdict

from django.conf import settings
from django.db.models import Count
from django.shortcuts import render

from jobs.models import Job, Worker
from jobs.selectors import jobs_visible_to

# kombu's Redis transport keeps a queue as a list named after it, plus one list per priority
# step (kombu/transport/redis.py, PRIORITY_STEPS and priority()).
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)


def queue_lengths(names: list[str]) -> dict[str, int] | None:
    """Messages waiting in each queue (LLEN over its priority lists), or None if Redis is down."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        with client.pipeline() as pipe:
            for name in names:
                for step in PRIORITY_STEPS:
                    pipe.llen(name if step == 0 else f"{name}{PRIORITY_SEPARATOR}{step}")
            counts = pipe.execute()
    except redis.RedisError:
        return None
    finally:
        client.close()
    steps = len(PRIORITY_STEPS)
    return {name: sum(counts[i * steps:(i + 1) * steps]) for i, name in enumerate(names)}


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
