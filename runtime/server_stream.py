"""The runtime server's (runtime/server.py) generation side: a POST /generate body validated into a
GenerationRequest (400s name the parameter), and the engine work that answers it.

Engines are synchronous, so the work runs in its own thread (ThreadEvents) and hands its events to
the event loop through a queue. `generation_events` is that work for POST /generate: it holds the variant's generation slot from
admission to the last token, and emits the protocol's events in order (start, token..., done). A
failure is emitted as the EngineError itself, so the server can still answer it with an HTTP status
when it comes before the start event.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engines import EngineError, SamplingParams
from engines.base import MAX_TOP_LOGPROBS
from runtime.manager import LoadSpec, ModelManager

log = logging.getLogger("runtime.server")
Emit = Callable[[dict | EngineError], None]
_END = object()
REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def bad_request(message: str, param: str | None = None) -> EngineError:
    return EngineError(message, code="bad_request", status=400, param=param)


class ThreadEvents:
    """Runs `work(emit)` in a daemon thread (daemon: a generation still waiting for a slot must
    not hold up the process exit); `await next()` returns each emitted item, then None."""

    def __init__(self, work: Callable[[Emit], None], *, name: str):
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue()
        threading.Thread(target=self._run, args=(work,), name=name, daemon=True).start()

    def _put(self, item: object) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the server is shutting down
            pass

    def _run(self, work: Callable[[Emit], None]) -> None:
        try:
            work(self._put)
        except EngineError as exc:
            self._put(exc)
        except Exception as exc:  # a model fault must not take the server down
            log.exception("%s failed", threading.current_thread().name)
            self._put(EngineError(f"generation failed: {exc}", code="runtime_error", status=500))
        finally:
            self._put(_END)

    async def next(self) -> dict | EngineError | None:
        item = await self._queue.get()
        return None if item is _END else item


@dataclass(frozen=True)
class GenerationRequest:
    """A validated POST /generate body."""

    request_id: str
    spec: LoadSpec
    params: SamplingParams
    messages: list[dict] | None
    prompt: str | None
    prompt_tokens: list[int] | None
    tools: list[dict] | None
    echo: bool

    @property
    def scoring_only(self) -> bool:
        """echo with max_tokens 0: the prompt's logprobs, no generated token."""
        return self.echo and self.params.max_tokens == 0


def load_spec(data: dict, artifact_root: Path) -> LoadSpec:
    files = data.get("files")
    if not (isinstance(files, list) and files and all(isinstance(f, str) for f in files)):
        raise bad_request("files must be a non-empty list of paths", "files")
    try:
        paths = [Path(name).resolve() for name in files]
    except (OSError, ValueError):  # a NUL byte, a symlink loop
        raise bad_request("files holds a path that can't be resolved", "files") from None
    if outside := [str(p) for p in paths if not p.is_relative_to(artifact_root)]:
        raise bad_request(f"{outside[0]} is outside ARTIFACT_ROOT", "files")
    for name in ("variant_id", "format"):
        if data.get(name) in (None, ""):
            raise bad_request(f"{name} is required", name)
    n_ctx = data.get("n_ctx") or 2048
    if not isinstance(n_ctx, int) or n_ctx < 1:
        raise bad_request("n_ctx must be a positive integer", "n_ctx")
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise bad_request("config must be an object", "config")
    return LoadSpec(variant_id=str(data["variant_id"]), format=str(data["format"]),
                    files=tuple(paths), n_ctx=n_ctx, config=config)


def _params(raw: object, *, echo: bool) -> SamplingParams:
    """SamplingParams from the request; the dataclass checks no types, so this does."""
    if not isinstance(raw, dict):
        raise bad_request("params must be an object", "params")
    stop = raw.get("stop") or []
    if not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise bad_request("stop must be a list of strings", "stop")
    try:
        params = SamplingParams.from_dict(raw)
    except (TypeError, ValueError) as exc:
        raise bad_request(f"params is malformed: {exc}", "params") from None
    for name in ("temperature", "top_p", "min_p", "repeat_penalty", "presence_penalty",
                 "frequency_penalty"):
        if not _is_number(getattr(params, name)):
            raise bad_request(f"{name} must be a number", name)
    for name in ("top_k", "max_tokens", "seed", "logprobs"):
        value = getattr(params, name)
        if value is not None and not (_is_number(value) and isinstance(value, int)):
            raise bad_request(f"{name} must be an integer", name)
    if params.json_schema is not None and not isinstance(params.json_schema, str):
        raise bad_request("json_schema must be JSON text", "json_schema")
    if params.max_tokens < 0:
        raise bad_request("max_tokens must not be negative", "max_tokens")
    if params.max_tokens == 0 and not echo:
        raise bad_request("max_tokens 0 (score the prompt only) needs echo", "max_tokens")
    if params.logprobs is not None and not 0 <= params.logprobs <= MAX_TOP_LOGPROBS:
        raise bad_request(f"logprobs must be an integer from 0 to {MAX_TOP_LOGPROBS}", "logprobs")
    return params


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def generation_request(data: dict, artifact_root: Path) -> GenerationRequest:
    request_id = data.get("request_id")
    if not (isinstance(request_id, str) and REQUEST_ID.fullmatch(request_id)):
        raise bad_request("request_id must be 1-128 letters, digits, '_' or '-'", "request_id")
    messages, prompt, tokens = data.get("messages"), data.get("prompt"), data.get("prompt_tokens")
    if [messages, prompt, tokens].count(None) != 2:
        raise bad_request("exactly one of messages, prompt and prompt_tokens is required", "messages")
    if messages is not None and not (isinstance(messages, list)
                                     and all(isinstance(m, dict) for m in messages)):
        raise bad_request("messages must be a list of objects", "messages")
    if prompt is not None and not isinstance(prompt, str):
        raise bad_request("prompt must be a string", "prompt")
    if tokens is not None and not (isinstance(tokens, list) and all(
            isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in tokens)):
        raise bad_request("prompt_tokens must be a list of token ids", "prompt_tokens")
    tools, echo = data.get("tools"), data.get("echo", False)
    if tools is not None and not isinstance(tools, list):
        raise bad_request("tools must be a list or null", "tools")
    if not isinstance(echo, bool):
        raise bad_request("echo must be true or false", "echo")
    return GenerationRequest(
        request_id=request_id, spec=load_spec(data, artifact_root),
        params=_params(data.get("params") or {}, echo=echo), messages=messages, prompt=prompt,
        prompt_tokens=tokens, tools=tools, echo=echo)


def generation_events(*, manager: ModelManager, request: GenerationRequest,
                      cancel: threading.Event, started: float, emit: Emit) -> None:
    params = request.params
    with manager.acquire(request.spec) as loaded:
        engine = loaded.engine
        prepared = engine.prepare_checked(
            messages=request.messages, prompt=request.prompt, prompt_tokens=request.prompt_tokens,
            tools=request.tools, params=params, min_new=0 if request.scoring_only else 1)
        start = {"type": "start", "prompt_tokens": len(prepared.tokens),
                 "max_tokens": prepared.max_tokens, "n_ctx": request.spec.n_ctx}
        if request.echo:
            start["prompt_text"] = engine.detokenize(prepared.tokens)
            if params.logprobs is not None:
                start["prompt_logprobs"] = engine.score(tokens=prepared.tokens, top=params.logprobs)
        emit(start)
        first = None
        if request.scoring_only:
            prepared.finish_reason = "length"
        else:
            for piece in engine.stream(prepared=prepared, params=params, cancelled=cancel.is_set):
                first = first or time.monotonic()
                if not (piece.text or piece.logprobs):
                    continue  # text held back (a partial character or stop string)
                event = {"type": "token", "text": piece.text}
                if params.logprobs is not None:
                    event["logprobs"] = piece.logprobs
                emit(event)
        ended = time.monotonic()
        threads, node_jobs = engine.threads, len(loaded.node_jobs)
    completion_tokens = prepared.completion_tokens
    decode_s = ended - first if first else 0.0
    emit({"type": "done", "finish_reason": "cancelled" if cancel.is_set() else prepared.finish_reason,
          "stats": {
              "prompt_tokens": len(prepared.tokens), "completion_tokens": completion_tokens,
              "cached_tokens": prepared.cached_tokens,
              "ttft_s": round(first - started, 4) if first else None,
              "tokens_per_s": round(completion_tokens / decode_s, 2) if decode_s > 0 else None,
              "elapsed_s": round(ended - started, 4),
              "context_used": len(prepared.tokens) + completion_tokens, "n_ctx": request.spec.n_ctx,
              "threads": threads, "node_jobs": node_jobs,
          }})
