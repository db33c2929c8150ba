"""The runtime server: a separate process that loads models and streams tokens.

The dashboard never loads weights; it sends this process a variant's file paths and the chat, and
relays what comes back. A model that crashes or hangs takes down only this process, which the
supervisor (runtime/supervisor.py) restarts. It listens on loopback and every request must carry
the shared secret in `X-Runtime-Token`.

Protocol (JSON in, newline-delimited JSON out):
  POST /generate      {request_id, variant_id, format, files, n_ctx, config, messages | prompt,
                       params}. Refusals come before any body, as an HTTP status with
                       {"error": {code, message}} (429 carries Retry-After). Otherwise 200 and one
                       JSON object a line: {"type": "start", prompt_tokens, max_tokens, n_ctx},
                       {"type": "token", "text"} per token, then {"type": "done", stats} or
                       {"type": "error", code, message}.
  POST /cancel/<id>   ends that generation before its next token.
  GET  /status        loaded models, memory, queues, pid.
A generation also stops when the caller closes its connection (the next write fails).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from runtime.engines import EngineError, SamplingParams
from runtime.manager import Busy, LoadSpec, ModelManager

log = logging.getLogger("runtime.server")
MAX_BODY_BYTES = 8 * 1024**2


class RuntimeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog: the standard library's 5 overflows when a burst of chats arrives at once,
    # and the kernel then drops connections that the client only retries a second later.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], *, manager: ModelManager, token: str,
                 artifact_root: Path):
        super().__init__(address, Handler)
        self.manager, self.token, self.artifact_root = manager, token, artifact_root.resolve()
        self.cancel_flags: dict[str, threading.Event] = {}
        self.started = time.time()


class Handler(BaseHTTPRequestHandler):
    server: RuntimeHTTPServer
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes: simple streaming

    def log_message(self, format: str, *args) -> None:
        log.info("%s %s", self.address_string(), format % args)

    # --- plumbing -----------------------------------------------------------------------------
    def _send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        self._send_json(status, {"error": {"code": code, "message": message}}, headers)

    def _authorized(self) -> bool:
        given = self.headers.get("X-Runtime-Token", "")
        if self.server.token and hmac.compare_digest(given.encode(), self.server.token.encode()):
            return True
        self._error(401, "unauthorized", "missing or wrong X-Runtime-Token")
        return False

    def _json_body(self) -> dict | None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY_BYTES:
            self._error(400, "bad_request", "a JSON body up to 8 MiB is required")
            return None
        try:
            data = json.loads(self.rfile.read(length))
        except ValueError:
            self._error(400, "bad_request", "the body is not valid JSON")
            return None
        if not isinstance(data, dict):
            self._error(400, "bad_request", "the body must be a JSON object")
            return None
        return data

    # --- routes -------------------------------------------------------------------------------
    def do_GET(self) -> None:
        if not self._authorized():
            return
        if self.path == "/status":
            self._send_json(200, {"pid": os.getpid(), "uptime_s": round(time.time() - self.server.started, 1),
                                  "active_requests": len(self.server.cancel_flags),
                                  **self.server.manager.status()})
        else:
            self._error(404, "not_found", f"no route {self.path}")

    def do_POST(self) -> None:
        if not self._authorized():
            return
        if self.path.startswith("/cancel/"):
            flag = self.server.cancel_flags.get(self.path.removeprefix("/cancel/"))
            if flag:
                flag.set()
            self._send_json(200, {"cancelled": flag is not None})
        elif self.path == "/generate":
            data = self._json_body()
            if data is not None:
                self._generate(data)
        else:
            self._error(404, "not_found", f"no route {self.path}")

    def _spec(self, data: dict) -> LoadSpec:
        root = self.server.artifact_root
        files = []
        for name in data.get("files") or []:
            path = Path(name).resolve()
            if not path.is_relative_to(root):
                raise EngineError(f"{name} is outside ARTIFACT_ROOT", code="bad_request", status=400)
            files.append(path)
        if not files:
            raise EngineError("files is required", code="bad_request", status=400)
        n_ctx = int(data.get("n_ctx") or 2048)
        return LoadSpec(variant_id=str(data["variant_id"]), format=str(data["format"]),
                        files=tuple(files), n_ctx=n_ctx, config=data.get("config") or {})

    def _generate(self, data: dict) -> None:
        started = time.monotonic()
        request_id = str(data.get("request_id") or os.urandom(8).hex())
        cancel = self.server.cancel_flags.setdefault(request_id, threading.Event())
        try:
            spec = self._spec(data)
            params = SamplingParams.from_dict(data.get("params") or {})
            messages, prompt = data.get("messages"), data.get("prompt")
            with self.server.manager.acquire(spec) as loaded:
                engine = loaded.engine
                prepared = engine.prepare_checked(messages=messages, prompt=prompt, params=params)
                self._stream(engine, prepared, params, cancel, started, spec)
        except Busy as exc:
            self._error(429, exc.code, exc.message, {"Retry-After": str(exc.retry_after)})
        except EngineError as exc:
            self._error(exc.status, exc.code, exc.message)
        except (KeyError, TypeError, ValueError) as exc:
            self._error(400, "bad_request", f"malformed request: {exc}")
        except (BrokenPipeError, ConnectionResetError):
            log.info("request %s: the caller went away", request_id)
        except Exception as exc:  # a model fault must not take the server down
            log.exception("request %s failed", request_id)
            try:
                self._error(500, "runtime_error", f"generation failed: {exc}")
            except OSError:
                pass
        finally:
            self.server.cancel_flags.pop(request_id, None)

    def _stream(self, engine, prepared, params: SamplingParams, cancel: threading.Event,
                started: float, spec: LoadSpec) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

        def emit(event: dict) -> None:
            self.wfile.write(json.dumps(event).encode() + b"\n")

        emit({"type": "start", "prompt_tokens": len(prepared.tokens), "n_ctx": spec.n_ctx,
              "max_tokens": prepared.max_tokens})
        pieces: list[str] = []
        first = None
        try:
            for text in engine.stream(prepared=prepared, params=params, cancelled=cancel.is_set):
                first = first or time.monotonic()
                pieces.append(text)
                emit({"type": "token", "text": text})
        except (BrokenPipeError, ConnectionResetError):
            cancel.set()
            raise
        except EngineError as exc:
            emit({"type": "error", "code": exc.code, "message": exc.message})
            return
        ended = time.monotonic()
        completion = "".join(pieces)
        # Re-tokenizing the text counts tokens the same way for every engine (a streamed piece
        # can hold several tokens when the engine held text back to check stop strings).
        completion_tokens = min(engine.count_tokens(completion) if completion else 0,
                                prepared.max_tokens)
        if cancel.is_set():
            reason = "cancelled"
        elif max(completion_tokens, len(pieces)) >= prepared.max_tokens:
            reason = "length"
        else:
            reason = "stop"
        decode_s = ended - first if first else 0.0
        emit({"type": "done", "finish_reason": reason, "stats": {
            "prompt_tokens": len(prepared.tokens), "completion_tokens": completion_tokens,
            "ttft_s": round(first - started, 4) if first else None,
            "tokens_per_s": round(completion_tokens / decode_s, 2) if decode_s > 0 else None,
            "elapsed_s": round(ended - started, 4),
            "context_used": len(prepared.tokens) + completion_tokens, "n_ctx": spec.n_ctx,
        }})


def serve(*, host: str, port: int, manager: ModelManager, token: str, artifact_root: Path) -> None:
    """Runs until SIGTERM/SIGINT; unloads every model on the way out."""
    import signal

    server = RuntimeHTTPServer((host, port), manager=manager, token=token, artifact_root=artifact_root)
    manager.start_reaper()

    def stop(signum, frame) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("runtime server on http://%s:%s (pid %s)", host, port, os.getpid())
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        manager.shutdown()
