"""The dashboard's side of the runtime protocol (runtime/server.py), on httpx.

One httpx.AsyncClient per request: nothing outlives the request's event loop, and a new client
costs well under a millisecond once the TLS context is built (once, `_tls`). Everything that goes
wrong becomes a RuntimeRequestError; a refused or dropped connection, or a runtime silent for too
long, is 503 runtime_unavailable.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import ssl
from collections.abc import AsyncIterator

import httpx
from django.conf import settings

from runtime.errors import RuntimeRequestError, runtime_unavailable

log = logging.getLogger("runtime.client")
CONNECT_TIMEOUT = 3.0
CANCEL_TIMEOUT = 2.0
TOKEN_TIMEOUT = 120.0  # a silent runtime for this long counts as hung
REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # as runtime/server_stream.py checks it
STOPPED = {"type": "error", "code": "runtime_unavailable",
           "message": "the runtime server stopped in the middle of the reply"}


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx would load the CA bundle for every client (~25 ms); the runtime is plain HTTP on
    loopback in practice, but an https RUNTIME_URL still gets verified."""
    return ssl.create_default_context()


def _client(read_timeout: float | None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=settings.RUNTIME_URL, verify=_tls(),
                             headers={"X-Runtime-Token": settings.RUNTIME_TOKEN},
                             timeout=httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT))


async def _error_from(response: httpx.Response) -> RuntimeRequestError:
    """The runtime's {"error": {code, message, param}} refusal, with its status and Retry-After."""
    try:
        async with asyncio.timeout(5):
            error = json.loads(await response.aread())["error"]
        message, code, param = error["message"], error["code"], error.get("param")
    except (httpx.TransportError, TimeoutError, ValueError, KeyError, TypeError):
        message, code, param = f"the runtime answered {response.status_code}", "runtime_error", None
    retry = response.headers.get("retry-after", "")
    return RuntimeRequestError(message, status=response.status_code, code=code, param=param,
                               retry_after=int(retry) if retry.isdigit() else None)


async def _call(method: str, path: str, *, body: dict | None = None, timeout: float) -> dict:
    """A plain JSON request: the answer's JSON, or the runtime's refusal raised."""
    async with _client(timeout) as client:
        try:
            response = await client.request(method, path, json=body)
            if response.status_code != 200:
                raise await _error_from(response)
            return response.json()
        except (httpx.TransportError, ValueError):
            raise runtime_unavailable() from None


class Generation:
    """An admitted generation: `start` holds prompt_tokens/max_tokens/n_ctx (and the echo
    fields); iterate `events()` for {"type": "token"|"done"|"error", ...}. `aclose()` (always
    call it, in a finally) cancels the generation on the runtime if it hasn't finished."""

    def __init__(self, request_id: str, start: dict, client: httpx.AsyncClient,
                 response: httpx.Response, lines: AsyncIterator[str]):
        self.request_id, self.start = request_id, start
        self._client, self._response, self._lines = client, response, lines
        self.finished = False

    async def events(self) -> AsyncIterator[dict]:
        while not self.finished:
            try:
                async with asyncio.timeout(TOKEN_TIMEOUT):
                    line = await anext(self._lines, None)
            except (httpx.TransportError, TimeoutError):
                line = None
            if line is None:
                self.finished = True
                yield STOPPED
                return
            if not line.strip():
                continue
            event = json.loads(line)
            if event["type"] in ("done", "error"):
                self.finished = True
            yield event

    async def aclose(self) -> None:
        # Closing an unfinished response drops the connection, which alone stops the runtime;
        # the cancel request makes sure of it.
        await _close(self._response, self._client)
        if not self.finished:
            self.finished = True
            try:
                await asyncio.wait_for(cancel(request_id=self.request_id), CANCEL_TIMEOUT)
            except (Exception, asyncio.CancelledError):  # best effort, see above
                log.info("cancel of %s did not get through", self.request_id)


async def open_generation(*, payload: dict) -> Generation:
    """Sends the request and waits for admission (queue and model load included) and the start
    event; a refusal is raised as RuntimeRequestError with the runtime's status, code and param."""
    client = _client(None)  # the reads are bounded by the asyncio timeouts below
    response = None
    try:
        async with asyncio.timeout(settings.RUNTIME_QUEUE_TIMEOUT + 300):
            response = await client.send(client.build_request("POST", "/generate", json=payload),
                                         stream=True)
        if response.status_code != 200:
            raise await _error_from(response)
        lines = response.aiter_lines()
        async with asyncio.timeout(TOKEN_TIMEOUT):
            start = json.loads(await anext(lines))
        return Generation(payload["request_id"], start, client, response, lines)
    except (httpx.TransportError, TimeoutError, ValueError, StopAsyncIteration):
        await _close(response, client)
        raise runtime_unavailable() from None
    except BaseException:  # a refusal, or the caller cancelled while it waited
        await _close(response, client)
        raise


async def _close(response: httpx.Response | None, client: httpx.AsyncClient) -> None:
    if response is not None:
        await response.aclose()
    await client.aclose()


async def embed(*, payload: dict) -> dict:
    """{"data": [[float, ...], ...], "prompt_tokens": n} for payload["input"]."""
    return await _call("POST", "/embed", body=payload, timeout=settings.RUNTIME_QUEUE_TIMEOUT + 300)


async def cancel(*, request_id: str) -> bool:
    if not REQUEST_ID.fullmatch(request_id):
        raise RuntimeRequestError("request_id must be 1-128 letters, digits, '_' or '-'",
                                  param="request_id")
    result = await _call("POST", f"/cancel/{request_id}", body={}, timeout=CANCEL_TIMEOUT)
    return bool(result.get("cancelled"))


async def status() -> dict:
    return await _call("GET", "/status", timeout=5)


def status_sync(timeout: float = 1.0) -> dict | None:
    """The runtime's /status for sync views (the playground page), or None when it's down."""
    try:
        response = httpx.get(f"{settings.RUNTIME_URL}/status", timeout=timeout, verify=_tls(),
                             headers={"X-Runtime-Token": settings.RUNTIME_TOKEN})
        return response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
