"""OpenAI-compatible API: GET /v1/models, POST /v1/chat/completions, POST /v1/completions.

Authenticated by per-user API tokens (`Authorization: Bearer qd_...`), not sessions, so these
views are CSRF-exempt and skip LoginRequiredMiddleware. Model ids are catalog variant ids as
strings, scoped to the token owner's teams. Errors use OpenAI's shape
{"error": {"message", "type", "param", "code"}}. Shapes follow the OpenAI API reference for
chat.completion / chat.completion.chunk / text_completion objects.
"""

from __future__ import annotations

import json
import time

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from catalog.selectors import variants_visible_to
from runtime import client, services
from runtime.errors import RuntimeRequestError
from runtime.params import parse_sampling
from runtime.selectors import variant_for_chat

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
               405: "invalid_request_error", 429: "rate_limit_error", 503: "server_error"}
EXTRA_SAMPLING = ("top_k", "min_p", "repeat_penalty")  # llama.cpp's, accepted as extra body fields


def api_error(exc: RuntimeRequestError) -> JsonResponse:
    return JsonResponse({"error": {
        "message": exc.message, "type": ERROR_TYPES.get(exc.status, "server_error"),
        "param": exc.param, "code": exc.code,
    }}, status=exc.status, headers=exc.headers)


async def _user(request):
    header = request.headers.get("Authorization", "")
    raw = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    user = raw and await sync_to_async(services.api_token_user)(raw=raw)
    if not user:
        raise RuntimeRequestError("a valid API token is required (Authorization: Bearer qd_...); "
                                  "make one at /playground/tokens/", status=401,
                                  code="invalid_api_key")
    return user


def api_view(methods: tuple[str, ...]):
    def wrap(view):
        @login_not_required
        @csrf_exempt
        async def wrapper(request, *args, **kwargs):
            try:
                if request.method not in methods:
                    raise RuntimeRequestError(f"use {' or '.join(methods)}", status=405,
                                              code="method_not_allowed")
                user = await _user(request)
                return await view(request, user, *args, **kwargs)
            except RuntimeRequestError as exc:
                return api_error(exc)
        wrapper.__name__ = view.__name__
        return wrapper
    return wrap


@api_view(("GET",))
async def models(request, user):
    variants = variants_visible_to(user).select_related("model", "model__team")
    data = [{"id": str(v.pk), "object": "model", "created": int(v.created_at.timestamp()),
             "owned_by": v.model.team.name, "name": f"{v.model.name} {v.label}"}
            async for v in variants]
    return JsonResponse({"object": "list", "data": data})


def _body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise RuntimeRequestError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise RuntimeRequestError("the body must be a JSON object")
    return body


def _messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RuntimeRequestError("messages must be a non-empty list", param="messages")
    out = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user", "assistant"):
            raise RuntimeRequestError("each message needs a role of system, user or assistant",
                                      param="messages")
        content = m.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise RuntimeRequestError("message content must be a string", param="messages")
        out.append({"role": "system" if m["role"] == "developer" else m["role"], "content": content})
    return out


@api_view(("POST",))
async def chat_completions(request, user):
    body = _body(request)
    return await _complete(user, body, chat=True)


@api_view(("POST",))
async def completions(request, user):
    body = _body(request)
    return await _complete(user, body, chat=False)


async def _complete(user, body: dict, *, chat: bool):
    variant, files = await variant_for_chat(user=user, variant_id=body.get("model"))
    messages = _messages(body) if chat else None
    prompt = None
    if not chat:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise RuntimeRequestError("prompt must be a string", param="prompt")
    sampling = {k: body.get(k) for k in ("temperature", "top_p", "seed", "stop", *EXTRA_SAMPLING)}
    sampling["max_tokens"] = body.get("max_completion_tokens") or body.get("max_tokens")
    if body.get("frequency_penalty") and sampling["repeat_penalty"] is None:
        sampling["repeat_penalty"] = 1.0 + float(body["frequency_penalty"]) / 2
    params = parse_sampling(sampling, max_tokens_default=256)
    generation = await client.open_generation(payload=services.runtime_payload(
        variant=variant, files=files, request_id=services.new_request_id(user=user),
        params=params, messages=messages, prompt=prompt))
    shape = _Shape(model=str(variant.pk), chat=chat, request_id=generation.request_id)
    if body.get("stream"):
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingHttpResponse(_stream(generation, shape, usage), content_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
    pieces, done = [], None
    try:
        async for event in generation.events():
            if event["type"] == "token":
                pieces.append(event["text"])
            elif event["type"] == "done":
                done = event
            else:
                raise RuntimeRequestError(event["message"], status=503, code=event["code"])
    finally:
        await generation.aclose()
    return JsonResponse(shape.whole("".join(pieces), done["finish_reason"], done["stats"]))


class _Shape:
    """Builds OpenAI response objects for one request."""

    def __init__(self, *, model: str, chat: bool, request_id: str):
        self.model, self.chat, self.created = model, chat, int(time.time())
        self.id = ("chatcmpl-" if chat else "cmpl-") + request_id.split("-", 1)[1]

    def _base(self, object_: str) -> dict:
        return {"id": self.id, "object": object_, "created": self.created, "model": self.model}

    @staticmethod
    def finish(reason: str) -> str:
        return "length" if reason == "length" else "stop"

    @staticmethod
    def usage(stats: dict) -> dict:
        return {"prompt_tokens": stats["prompt_tokens"], "completion_tokens": stats["completion_tokens"],
                "total_tokens": stats["prompt_tokens"] + stats["completion_tokens"]}

    def whole(self, text: str, reason: str, stats: dict) -> dict:
        if self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text},
                      "finish_reason": self.finish(reason), "logprobs": None}
            return {**self._base("chat.completion"), "choices": [choice], "usage": self.usage(stats)}
        choice = {"index": 0, "text": text, "finish_reason": self.finish(reason), "logprobs": None}
        return {**self._base("text_completion"), "choices": [choice], "usage": self.usage(stats)}

    def chunk(self, text: str | None, reason: str | None = None, *, first: bool = False) -> dict:
        if self.chat:
            delta = {"role": "assistant", "content": ""} if first else ({"content": text} if text else {})
            choice = {"index": 0, "delta": delta, "finish_reason": reason and self.finish(reason),
                      "logprobs": None}
            return {**self._base("chat.completion.chunk"), "choices": [choice]}
        choice = {"index": 0, "text": text or "", "finish_reason": reason and self.finish(reason),
                  "logprobs": None}
        return {**self._base("text_completion"), "choices": [choice]}


def _data(payload: dict | str) -> bytes:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n".encode()


async def _stream(generation: client.Generation, shape: _Shape, include_usage: bool):
    try:
        if shape.chat:
            yield _data(shape.chunk(None, first=True))
        async for event in generation.events():
            if event["type"] == "token":
                yield _data(shape.chunk(event["text"]))
            elif event["type"] == "done":
                yield _data(shape.chunk(None, event["finish_reason"]))
                if include_usage:
                    yield _data({**shape._base(shape.chunk(None)["object"]), "choices": [],
                                 "usage": shape.usage(event["stats"])})
            else:
                yield _data({"error": {"message": event["message"], "type": "server_error",
                                       "param": None, "code": event["code"]}})
        yield _data("[DONE]")
    finally:
        await generation.aclose()
