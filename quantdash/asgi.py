"""The ASGI application: Django, behind a request-body size limit.

Django's ASGIHandler reads a request's whole body into a temporary file before any view runs, so
a view cannot refuse a 20 GiB upload until all of it has arrived (and filled the disk). BodyLimit
answers 413 from Content-Length before reading any of it, and stops a body without a length
(chunked) as soon as it passes the limit. Upload views (marked by catalog.uploads.capped_upload)
may take UPLOAD_MAX_BYTES; every other route REQUEST_MAX_BYTES.
"""

import json
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantdash.settings")
django_application = get_asgi_application()

from django.conf import settings  # noqa: E402  (after setup)
from django.urls import Resolver404, resolve  # noqa: E402

BODYLESS = {"GET", "HEAD", "OPTIONS"}


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


application = BodyLimit(django_application)
