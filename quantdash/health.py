"""/healthz: is the database, Redis and at least one Celery worker up?"""

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from jobs.models import Worker


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return None
    except Exception as exc:
        return f"database unreachable: {exc.__class__.__name__}: {exc}"


def _check_redis() -> str | None:
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        client.ping()
        return None
    except Exception as exc:
        return f"redis unreachable: {exc.__class__.__name__}: {exc}"


def _check_workers() -> tuple[str | None, list[dict]]:
    try:
        workers = list(Worker.objects.all())
    except Exception as exc:
        return f"workers unknown: {exc.__class__.__name__}", []
    listed = [
        {"hostname": w.hostname, "queues": w.queues, "alive": w.is_alive,
         "last_seen": w.last_seen.isoformat()}
        for w in workers
    ]
    if not any(w.is_alive for w in workers):
        return "no celery worker has sent a heartbeat recently", listed
    return None, listed


@login_not_required
@never_cache
def healthz(request):
    db_error = _check_database()
    redis_error = _check_redis()
    worker_error, workers = _check_workers() if db_error is None else ("database down", [])
    checks = {
        "database": {"ok": db_error is None, "error": db_error},
        "redis": {"ok": redis_error is None, "error": redis_error},
        "workers": {"ok": worker_error is None, "error": worker_error, "workers": workers},
    }
    failing = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "ok" if not failing else "fail", "failing": failing, "checks": checks}
    return JsonResponse(body, status=200 if not failing else 503)
