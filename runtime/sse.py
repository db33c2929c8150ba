"""Server-sent events as /v1 streaming and the playground write them: one `data:` line of JSON per
event, a blank line after it, and a response that proxies pass through unbuffered."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from django.http import StreamingHttpResponse

# nginx buffers a proxied response unless told not to, which would hold tokens back
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def frame(data: dict) -> bytes:
    """One event. JSON text has no raw newline, so one `data:` line always carries it."""
    return f"data: {json.dumps(data)}\n\n".encode()


def done() -> bytes:
    """OpenAI's end of stream: the literal [DONE], not JSON."""
    return b"data: [DONE]\n\n"


def response(frames: AsyncIterator[bytes]) -> StreamingHttpResponse:
    return StreamingHttpResponse(frames, content_type="text/event-stream", headers=HEADERS)
