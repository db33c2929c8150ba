"""The dashboard's side of the runtime protocol (runtime/server.py), on asyncio streams.

Plain HTTP/1.0 over `asyncio.open_connection` to the loopback runtime: no HTTP client library is
needed for one JSON request and a newline-delimited JSON body. Everything that goes wrong becomes a
RuntimeRequestError (a refused or dropped connection: 503 runtime_unavailable).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from django.conf import settings

from runtime.errors import RuntimeRequestError, runtime_unavailable

log = logging.getLogger("runtime.client")
CONNECT_TIMEOUT = 3.0
CANCEL_TIMEOUT = 2.0
TOKEN_TIMEOUT = 120.0  # a silent runtime for this long counts as hung


def _address() -> tuple[str, int]:
    url = urlsplit(settings.RUNTIME_URL)
    return url.hostname or "127.0.0.1", url.port or 8100


async def _request(method: str, path: str, body: dict | None = None, *,
                   header_timeout: float) -> tuple[int, dict[str, str], asyncio.StreamReader,
                                                   asyncio.StreamWriter]:
    host, port = _address()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                CONNECT_TIMEOUT)
    except (OSError, asyncio.TimeoutError):
        raise runtime_unavailable() from None
    data = json.dumps(body).encode() if body is not None else b""
    head = (f"{method} {path} HTTP/1.0\r\nHost: {host}:{port}\r\n"
            f"X-Runtime-Token: {settings.RUNTIME_TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n")
    try:
        writer.write(head.encode() + data)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), header_timeout)
        headers = {}
        while (line := await asyncio.wait_for(reader.readline(), header_timeout)) not in (b"\r\n", b"\n", b""):
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        status = int(status_line.split()[1])
    except (OSError, asyncio.TimeoutError, IndexError, ValueError):
        writer.close()
        raise runtime_unavailable() from None
    return status, headers, reader, writer


async def _error_from(status: int, headers: dict, reader: asyncio.StreamReader) -> RuntimeRequestError:
    try:
        error = json.loads(await asyncio.wait_for(reader.read(), 5))["error"]
        message, code = error["message"], error["code"]
    except (ValueError, KeyError, TypeError, OSError, asyncio.TimeoutError):
        message, code = f"the runtime answered {status}", "runtime_error"
    retry = headers.get("retry-after")
    return RuntimeRequestError(message, status=status, code=code,
                               retry_after=int(retry) if retry and retry.isdigit() else None)


class Generation:
    """An admitted generation: `start` holds prompt_tokens/max_tokens/n_ctx; iterate `events()`
    for {"type": "token"|"done"|"error", ...}. `aclose()` (always call it, in a finally) cancels
    the generation on the runtime if it hasn't finished."""

    def __init__(self, request_id: str, start: dict, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter):
        self.request_id, self.start = request_id, start
        self._reader, self._writer = reader, writer
        self.finished = False

    async def events(self) -> AsyncIterator[dict]:
        while not self.finished:
            try:
                line = await asyncio.wait_for(self._reader.readline(), TOKEN_TIMEOUT)
            except (OSError, asyncio.TimeoutError):
                line = b""
            if not line:
                self.finished = True
                yield {"type": "error", "code": "runtime_unavailable",
                       "message": "the runtime server stopped in the middle of the reply"}
                return
            event = json.loads(line)
            if event["type"] in ("done", "error"):
                self.finished = True
            yield event

    async def aclose(self) -> None:
        self._writer.close()  # the runtime's next token write fails, which also stops it
        if not self.finished:
            self.finished = True
            try:
                await asyncio.wait_for(cancel(request_id=self.request_id), CANCEL_TIMEOUT)
            except BaseException:  # best effort: the closed socket stops it anyway
                log.info("cancel of %s did not get through", self.request_id)


async def open_generation(*, payload: dict) -> Generation:
    """Sends the request and waits for admission (queue and model load included)."""
    status, headers, reader, writer = await _request(
        "POST", "/generate", payload, header_timeout=settings.RUNTIME_QUEUE_TIMEOUT + 300)
    if status != 200:
        error = await _error_from(status, headers, reader)
        writer.close()
        raise error
    try:
        start = json.loads(await asyncio.wait_for(reader.readline(), TOKEN_TIMEOUT))
    except (OSError, ValueError, asyncio.TimeoutError):
        writer.close()
        raise runtime_unavailable() from None
    return Generation(payload["request_id"], start, reader, writer)


async def cancel(*, request_id: str) -> bool:
    status, headers, reader, writer = await _request("POST", f"/cancel/{request_id}", {},
                                                     header_timeout=CANCEL_TIMEOUT)
    try:
        return status == 200 and json.loads(await reader.read()).get("cancelled", False)
    finally:
        writer.close()


async def status() -> dict:
    code, headers, reader, writer = await _request("GET", "/status", header_timeout=5)
    try:
        if code != 200:
            raise await _error_from(code, headers, reader)
        return json.loads(await reader.read())
    finally:
        writer.close()


def status_sync(timeout: float = 1.0) -> dict | None:
    """The runtime's /status for sync views (the playground page), or None when it's down."""
    import http.client

    host, port = _address()
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/status", headers={"X-Runtime-Token": settings.RUNTIME_TOKEN})
        response = connection.getresponse()
        return json.loads(response.read()) if response.status == 200 else None
    except (OSError, ValueError):
        return None
    finally:
        connection.close()
