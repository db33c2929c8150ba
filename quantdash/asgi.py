"""The ASGI application: Django, behind a request-body size limit.

Django's ASGIHandler reads a request's whole body into a temporary file before any view runs, so
a view cannot refuse a 20 GiB upload until all of it has arrived (and filled the disk). BodyLimit
answers 413 from Content-Length before reading any of it, and stops a body without a length
(chunked) as soon as it passes the limit. Upload views (marked by catalog.uploads.capped_upload)
may take UPLOAD_MAX_BYTES; every other route REQUEST_MAX_BYTES.

ViewSlots lets at most VIEW_SLOTS synchronous views run at once in this process. Django runs each
request's sync code in a thread of its own, and Python runs one thread at a time (the GIL): with 30
pages in flight, 30 threads take turns of a few milliseconds, every page takes 30 times as long,
and so does /healthz, which needs the GIL a dozen times per answer (measured: p99 2 s under load,
docs/benchmarks.md). Requests beyond the slots wait in the event loop, costing nothing, and run in
arrival order; more processes (WEB_WORKERS), not more threads, use more cores. Async views (/v1,
the playground's stream) take no slot: they await the runtime, holding neither a thread nor the GIL.

HealthFirst answers GET /healthz before all of this (quantdash/health.py says why), so a health
check never waits behind page work.
"""

import asyncio
import functools
import gc
import json
import os

from asgiref.sync import iscoroutinefunction
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantdash.settings")
django_application = get_asgi_application()

from django.conf import settings  # noqa: E402  (after setup)
from django.urls import Resolver404, resolve  # noqa: E402

from quantdash import health  # noqa: E402

BODYLESS = {"GET", "HEAD", "OPTIONS"}
# Two, not one: a sync view that waits on the network (an import form asking the Hub) then leaves
# the other slot to pages; more than a few only brings back the GIL's round-robin.
VIEW_SLOTS = 2


def body_limit(path: str) -> tuple[int, str]:
    """(limit in bytes, the setting that names it) for a request path."""
    try:
        view = resolve(path).func
    except Resolver404:
        view = None
    if getattr(view, "accepts_uploads", False):
        return settings.UPLOAD_MAX_BYTES, "UPLOAD_MAX_BYTES"
    return settings.REQUEST_MAX_BYTES, "REQUEST_MAX_BYTES"


async def _refuse(scope, send, limit: int, name: str) -> None:
    message = f"the upload is larger than the {limit / 1024**2:g} MiB limit ({name})"
    if scope["path"].startswith(("/api/", "/v1/")):
        body, content_type = json.dumps({"error": message}).encode(), b"application/json"
    else:
        body, content_type = message.encode(), b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", content_type), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in BODYLESS:
            return await self.app(scope, receive, send)
        limit, name = body_limit(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _refuse(scope, send, limit, name)
        received, refused = 0, False

        async def limited_receive():
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now and tell Django the client left: it stops reading and sends nothing.
                    refused = True
                    await _refuse(scope, send, limit, name)
                    return {"type": "http.disconnect"}
            return message

        return await self.app(scope, limited_receive, send)


@functools.lru_cache(maxsize=4096)
def takes_a_slot(path: str) -> bool:
    """Whether a request to `path` runs a synchronous view (unknown paths do: a 404 page)."""
    try:
        match = resolve(path)
    except Resolver404:
        return True
    return not iscoroutinefunction(match.func)


class ViewSlots:
    def __init__(self, app, slots: int):
        self.app = app
        self.slots = slots
        self._semaphore: asyncio.Semaphore | None = None  # made in the server's event loop

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not takes_a_slot(scope["path"]):
            return await self.app(scope, receive, send)
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.slots)
        semaphore, held = self._semaphore, False

        # Taken once the body has arrived (an upload's minutes of reading hold no slot) and
        # given back when the response starts (a file download's body holds none either): what
        # lies between is the view.
        async def receive_then_wait():
            nonlocal held
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body") and not held:
                await semaphore.acquire()
                held = True
            return message

        async def send_and_release(message):
            nonlocal held
            if message["type"] == "http.response.start" and held:
                held = False
                semaphore.release()
            await send(message)

        try:
            return await self.app(scope, receive_then_wait, send_and_release)
        finally:
            if held:
                semaphore.release()


class HealthFirst:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if health.answers_asgi(scope):
            return await health.answer_asgi(scope, send)
        return await self.app(scope, receive, send)


application = HealthFirst(BodyLimit(ViewSlots(django_application, VIEW_SLOTS)))

# Django, its apps and their imports live as long as the process: frozen, a full garbage collection
# does not walk them again while requests wait for the GIL (planner.model_definition freezes torch's
# objects the same way when it imports them).
gc.freeze()
