"""/healthz: is the database, Redis and at least one Celery worker up? 200 if so, else 503 naming
what is failing. No login (load balancers and compose health checks call it).

The web server answers GET /healthz in quantdash.asgi with `answer_asgi`, before Django's request
handling: that runs each middleware hook through its own thread hop, and under page load every hop
waits its turn for the GIL, so the check took as long as the pages (p99 2 s). `answer_asgi` makes
one hop, to a thread of its own, and adds the headers the middleware would (a test compares the
two). The ninja route stays: the same answer for the test client and in the OpenAPI document.
"""

import asyncio
import logging
import time

import redis
from django.conf import settings
from django.db import close_old_connections, connection
from django.http import JsonResponse
from django.http.request import split_domain_port, validate_host
from django.utils.cache import add_never_cache_headers
from ninja import Router, Schema

from jobs.models import Worker

router = Router()
log = logging.getLogger("django.request")


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


def health_response() -> JsonResponse:
    """The check's answer: 200 and "ok", or 503 naming what fails; never cached."""
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


@router.get("/healthz", auth=None, response={200: Health, 503: Health},
            summary="Database, Redis and Celery workers up?")
def healthz(request):
    return health_response()


def _checked_outside_a_request() -> JsonResponse:
    # What request_started / request_finished do for a view: a connection per check, as
    # CONN_MAX_AGE says, and never one left broken for the next check.
    close_old_connections()
    try:
        return health_response()
    finally:
        close_old_connections()


def answers_asgi(scope) -> bool:
    """A GET /healthz for a host Django would serve (any other goes through Django: 400/405)."""
    if scope["type"] != "http" or scope["path"] != "/healthz" or scope["method"] != "GET":
        return False
    host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:  # as HttpRequest.get_host
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


def _middleware_headers(scope) -> list[tuple[str, str]]:
    """The headers SecurityMiddleware and XFrameOptionsMiddleware add to this answer."""
    headers = [("X-Frame-Options", settings.X_FRAME_OPTIONS)]
    secure = scope.get("scheme") == "https"
    if not secure and settings.SECURE_PROXY_SSL_HEADER:
        header, value = settings.SECURE_PROXY_SSL_HEADER
        name = header.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
        secure = dict(scope["headers"]).get(name, b"").decode("latin-1") == value
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append(("Strict-Transport-Security", hsts))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        headers.append(("Referrer-Policy", policy if isinstance(policy, str) else ",".join(policy)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    return headers


class _Latest:
    """This process's latest check and the one under way (with the event loop it runs on)."""

    response: JsonResponse | None = None
    at = 0.0
    running: asyncio.Task | None = None


_latest = _Latest()


async def _recent_answer() -> JsonResponse:
    """The latest check's answer while it is at most HEALTHZ_MAX_AGE_SECONDS old, starting a fresh
    check in the background once it is older than half of that; else a fresh check, awaited.

    Why: even one thread hop per answer waits its turn for the GIL behind page work (p99 165 ms
    under 50 users on 2 cores where the answer itself takes a few ms), while a polled health check
    wants an answer in well under 100 ms. A check is shared by every request that arrives while
    it runs, so each process checks at most about twice per max age under any load. 0 checks on
    every request."""
    max_age = settings.HEALTHZ_MAX_AGE_SECONDS
    if max_age <= 0:
        return await asyncio.to_thread(_checked_outside_a_request)
    loop = asyncio.get_running_loop()
    if _latest.running is not None and _latest.running.get_loop() is not loop:
        _latest.running = None  # started on a loop that has since closed (tests run several)
    age = time.monotonic() - _latest.at
    if _latest.response is not None and age <= max_age:
        if age > max_age / 2 and _latest.running is None:
            _latest.running = loop.create_task(_check())
        return _latest.response
    if _latest.running is None:
        _latest.running = loop.create_task(_check())
    return await asyncio.shield(_latest.running)


async def _check() -> JsonResponse:
    try:
        response = await asyncio.to_thread(_checked_outside_a_request)
        _latest.response, _latest.at = response, time.monotonic()
        return response
    finally:
        _latest.running = None


async def answer_asgi(scope, send) -> None:
    """Answers a request `answers_asgi` accepted, as the Django view would."""
    response = await _recent_answer()
    if response.status_code >= 500:
        log.error("Service Unavailable: %s", scope["path"])  # as Django logs a 5xx
    headers = [*response.items(), ("Content-Length", str(len(response.content))),
               *_middleware_headers(scope)]
    await send({"type": "http.response.start", "status": response.status_code,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]})
    await send({"type": "http.response.body", "body": response.content})
