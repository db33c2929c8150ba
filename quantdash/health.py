"""/healthz: is the database, Redis and at least one Celery worker up? 200 if so, else 503 naming
what is failing. No login (load balancers and compose health checks call it)."""

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils.cache import add_never_cache_headers
from ninja import Router, Schema

from jobs.models import Worker

router = Router()


class Check(Schema):
    ok: bool
    error: str | None


class WorkerOut(Schema):
    hostname: str
    queues: list | str
    alive: bool
    last_seen: str


class WorkersCheck(Check):
    workers: list[WorkerOut]


class Checks(Schema):
    database: Check
    redis: Check
    workers: WorkersCheck


class Health(Schema):
    status: str
    failing: list[str]
    checks: Checks


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


@router.get("/healthz", auth=None, response={200: Health, 503: Health},
            summary="Database, Redis and Celery workers up?")
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
    response = JsonResponse(body, status=200 if not failing else 503)
    add_never_cache_headers(response)
    return response
