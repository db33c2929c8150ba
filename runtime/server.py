"""The runtime server: a separate process that loads models and streams tokens.

The dashboard never loads weights; it sends this process a variant's file paths and the request,
and relays what comes back (runtime/client.py). A model that crashes or hangs takes down only this
process, which the supervisor (runtime/supervisor.py) restarts. It is a Starlette app under
uvicorn, listening on loopback; every request must carry the shared secret in `X-Runtime-Token`
(else 401). Bodies are JSON objects of at most 8 MiB.

Protocol (JSON in; refusals come before any body, as an HTTP status with
{"error": {code, message, param}}, 429 with Retry-After):
  POST /generate      {request_id, variant_id, format, files, n_ctx, config,
                       messages | prompt | prompt_tokens, tools, echo, params}. 200 and
                       application/x-ndjson, one JSON object a line:
                       {"type": "start", prompt_tokens, max_tokens, n_ctx} (with echo also
                       prompt_text, and prompt_logprobs when params.logprobs is set),
                       {"type": "token", text[, logprobs]} per token, then
                       {"type": "done", finish_reason, stats} or {"type": "error", code, message}.
                       params.max_tokens 0 (echo only) scores the prompt and generates nothing.
  POST /embed         {variant_id, format, files, n_ctx, config, input} -> {data, prompt_tokens}.
  POST /cancel/<id>   ends that generation before its next token -> {"cancelled": bool}.
  GET  /status        loaded models, memory, queues, pid.
A generation also stops when the caller closes its connection.

Engines are synchronous, so each request's engine work runs in its own thread
(runtime/server_stream.py) holding the variant's generation slot until its last token.
"""

from __future__ import annotations

import hmac
import json
import os
import signal
import threading
import time
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from engines import EngineError, engine_for
from runtime.manager import Busy, ModelManager
from runtime.server_stream import (REQUEST_ID, ThreadEvents, bad_request, generation_events,
                                   generation_request, load_spec)

MAX_BODY_BYTES = 8 * 1024**2


def _error_response(status: int, code: str, message: str, param: str | None = None,
                    headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "param": param}}, status,
                        headers=headers)


async def _engine_error(request: Request, exc: EngineError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Busy) else None
    return _error_response(exc.status, exc.code, exc.message, exc.param, headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    return _error_response(500, "runtime_error", f"the runtime server failed: {exc}")


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    return _error_response(exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}")


class TokenRequired:
    """ASGI middleware: 401 unless X-Runtime-Token is the shared secret (constant-time compare)."""

    def __init__(self, app, *, token: str):
        self.app, self.token = app, token.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            given = Headers(scope=scope).get("x-runtime-token", "").encode("latin-1")
            if not (self.token and hmac.compare_digest(given, self.token)):
                response = _error_response(401, "unauthorized", "missing or wrong X-Runtime-Token")
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


class GenerationResponse(StreamingResponse):
    """The ndjson stream; however it ends (finished, caller gone, server stopping), the
    generation's cancel flag is set, so the engine stops before its next token."""

    def __init__(self, lines, cancel: threading.Event):
        super().__init__(lines, media_type="application/x-ndjson", headers={"Cache-Control": "no-cache"})
        self.cancel = cancel

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.cancel.set()


# --- request bodies ---------------------------------------------------------------------------
async def _json_body(request: Request) -> dict:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise EngineError("the body is over 8 MiB", code="body_too_large", status=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise EngineError("the body is over 8 MiB", code="body_too_large", status=413)
    try:
        data = json.loads(body)
    except ValueError:
        raise bad_request("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad_request("the body must be a JSON object")
    return data


# --- routes -----------------------------------------------------------------------------------
async def generate(request: Request) -> GenerationResponse:
    started = time.monotonic()
    state = request.app.state
    job = generation_request(await _json_body(request), state.artifact_root)
    if job.request_id in state.cancel_flags:
        raise EngineError(f"request_id {job.request_id} is already generating", code="duplicate_request",
                          status=409, param="request_id")
    cancel = state.cancel_flags[job.request_id] = threading.Event()

    def work(emit) -> None:
        try:
            generation_events(manager=state.manager, request=job, cancel=cancel, started=started,
                              emit=emit)
        finally:
            state.cancel_flags.pop(job.request_id, None)

    events = ThreadEvents(work, name=f"generate {job.request_id}")
    try:
        first = await events.next()  # admission: the start event, or a refusal to answer with a status
    except BaseException:
        cancel.set()
        raise
    if isinstance(first, EngineError):
        raise first

    async def lines():
        event = first
        while event is not None:
            if isinstance(event, EngineError):
                event = {"type": "error", "code": event.code, "message": event.message}
            yield json.dumps(event) + "\n"
            event = await events.next()

    return GenerationResponse(lines(), cancel)


async def embed(request: Request) -> JSONResponse:
    data = await _json_body(request)
    spec = load_spec(data, request.app.state.artifact_root)
    inputs = data.get("input")
    if not (isinstance(inputs, list) and inputs and (
            all(isinstance(i, str) for i in inputs)
            or all(isinstance(i, list) and i and all(isinstance(t, int) for t in i) for i in inputs))):
        raise bad_request("input must be a non-empty list of strings or of token-id lists", "input")

    if not (engine := engine_for(spec.format)).can_embed:
        raise engine.embed_refusal()  # before anything is loaded

    def work(emit) -> None:
        with request.app.state.manager.acquire(spec) as loaded:
            vectors, tokens = loaded.engine.embed(inputs)
        emit({"data": vectors, "prompt_tokens": tokens})

    result = await ThreadEvents(work, name="embed").next()
    if isinstance(result, EngineError):
        raise result
    return JSONResponse(result)


async def cancel(request: Request) -> JSONResponse:
    request_id = request.path_params["request_id"]
    if not REQUEST_ID.fullmatch(request_id):
        raise bad_request("request_id must be 1-128 letters, digits, '_' or '-'", "request_id")
    flag = request.app.state.cancel_flags.get(request_id)
    if flag:
        flag.set()
    return JSONResponse({"cancelled": flag is not None})


async def status(request: Request) -> JSONResponse:
    state = request.app.state
    return JSONResponse({"pid": os.getpid(), "uptime_s": round(time.time() - state.started, 1),
                         "active_requests": len(state.cancel_flags), **state.manager.status()})


def create_app(*, manager: ModelManager, token: str, artifact_root: Path) -> Starlette:
    app = Starlette(routes=[
        Route("/generate", generate, methods=["POST"]),
        Route("/embed", embed, methods=["POST"]),
        Route("/cancel/{request_id}", cancel, methods=["POST"]),
        Route("/status", status, methods=["GET"]),
    ], middleware=[Middleware(TokenRequired, token=token)],
        exception_handlers={EngineError: _engine_error, HTTPException: _http_error,
                            Exception: _unexpected_error})
    app.state.manager, app.state.artifact_root = manager, artifact_root.resolve()
    app.state.cancel_flags = {}  # request id -> threading.Event, while it generates
    app.state.started = time.time()
    return app


class _Server(uvicorn.Server):
    """uvicorn that cancels every generation as its shutdown begins, so open streams end with
    their done event ("cancelled") within the grace period instead of being cut off after it."""

    def __init__(self, config: uvicorn.Config, *, cancel_flags: dict[str, threading.Event]):
        super().__init__(config)
        self.cancel_flags = cancel_flags

    async def shutdown(self, sockets=None) -> None:
        for flag in list(self.cancel_flags.values()):
            flag.set()
        await super().shutdown(sockets)


def serve(*, host: str, port: int, manager: ModelManager, token: str, artifact_root: Path) -> None:
    """Runs until SIGTERM/SIGINT; stops the generations still running and unloads every model."""
    app = create_app(manager=manager, token=token, artifact_root=artifact_root)
    flags = app.state.cancel_flags
    # The listen backlog: a burst of chats arriving at once must queue, not be dropped.
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", backlog=128,
                                    timeout_graceful_shutdown=2, lifespan="off"), cancel_flags=flags)
    # uvicorn catches SIGTERM/SIGINT while it serves and re-raises the signal to the handler it
    # found when it is done: this one lets serve() return, to unload the models.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: None)
    manager.start_reaper()
    try:
        server.run()
    finally:
        for flag in list(flags.values()):  # generations still waiting for a slot
            flag.set()
        deadline = time.monotonic() + 5  # let engines stop before their models are unloaded
        while flags and time.monotonic() < deadline:
            time.sleep(0.05)
        manager.shutdown()
