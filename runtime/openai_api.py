"""OpenAI-compatible API: GET /v1/models[/<id>], POST /v1/chat/completions, POST /v1/completions.

Authenticated by per-user API tokens (`Authorization: Bearer qd_...`), not sessions (no cookies,
so no CSRF). Model ids are catalog variant ids as strings, scoped to the token owner's teams.
Errors use OpenAI's shape {"error": {"message", "type", "param", "code"}} (quantdash/api.py).
Shapes follow the OpenAI API reference for chat.completion / chat.completion.chunk /
text_completion objects.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Literal

from django.http import JsonResponse, StreamingHttpResponse
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from catalog.selectors import variants_visible_to
from quantdash.api import token_auth
from runtime import client, services
from runtime.errors import RuntimeRequestError
from runtime.params import parse_sampling
from runtime.selectors import variant_for_chat

EXTRA_SAMPLING = ("top_k", "min_p", "repeat_penalty")  # llama.cpp's, accepted as extra body fields
router = Router(auth=[token_auth])


def _off(*values):
    return lambda v: v in (None, *values)


# OpenAI parameters this server does not implement yet: accepted only at the value that changes
# nothing, else a 400 naming them, never silently ignored (README "OpenAI-compatible API").
NOT_YET: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n": (_off(1), "1"),
    "best_of": (_off(1), "1"),
    "logprobs": (lambda v: v is None or v is False, "false"),
    "top_logprobs": (_off(0), "0"),
    "echo": (_off(False), "false"),
    "suffix": (_off(""), '""'),
    "presence_penalty": (_off(0), "0"),
    "logit_bias": (lambda v: not v, "{}"),
    "response_format": (lambda v: v in (None, {"type": "text"}), '{"type": "text"}'),
    "tools": (lambda v: not v, "[]"),
    "functions": (lambda v: not v, "[]"),
    "tool_choice": (_off("none", "auto"), '"none"'),
    "function_call": (_off("none", "auto"), '"none"'),
    "parallel_tool_calls": (lambda v: True, "any value (there are no tools)"),
    "modalities": (_off(["text"]), '["text"]'),
    "audio": (_off(), "null"),
    "prediction": (_off(), "null"),
    "reasoning_effort": (_off(), "null"),
}


def refuse_unsupported(body: dict) -> None:
    for name, (no_op, allowed) in NOT_YET.items():
        if not no_op(body.get(name)):
            raise RuntimeRequestError(f"{name} is not supported by this server yet; leave it out or send "
                                      f"{allowed}", param=name, code="unsupported_parameter")


class Sampling(Schema):
    model_config = ConfigDict(extra="forbid")  # an unknown parameter is a 400 naming it

    model: str | int = Field(description="a variant id from GET /v1/models")
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    frequency_penalty: float | None = Field(None, description="mapped to llama.cpp's repeat_penalty")
    top_k: int | None = Field(None, description="llama.cpp's")
    min_p: float | None = Field(None, description="llama.cpp's")
    repeat_penalty: float | None = Field(None, description="llama.cpp's")
    stream: bool = False
    stream_options: dict | None = Field(None, description='{"include_usage": true} adds usage to the last chunk')
    user: str | None = Field(None, description="accepted; not used")
    n: int | None = Field(None, description="not supported yet: 1 only")
    best_of: int | None = Field(None, description="not supported yet: 1 only")
    logprobs: bool | int | None = Field(None, description="not supported yet: false only")
    top_logprobs: int | None = Field(None, description="not supported yet: 0 only")
    echo: bool | None = Field(None, description="not supported yet: false only")
    suffix: str | None = Field(None, description="not supported yet")
    presence_penalty: float | None = Field(None, description="not supported yet: 0 only")
    logit_bias: dict | None = Field(None, description="not supported yet")
    response_format: dict | None = Field(None, description='not supported yet: {"type": "text"} only')
    tools: list | None = Field(None, description="not supported yet")
    functions: list | None = Field(None, description="not supported yet")
    tool_choice: str | dict | None = Field(None, description='not supported yet: "none" or "auto" only')
    function_call: str | dict | None = Field(None, description="not supported yet")
    parallel_tool_calls: bool | None = None
    modalities: list | None = Field(None, description='["text"] only')
    audio: dict | None = Field(None, description="not supported")
    prediction: dict | None = Field(None, description="not supported yet")
    reasoning_effort: str | None = Field(None, description="not supported")


class Message(Schema):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict] = Field(description="text, or content parts (their text is kept)")


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)


class CompletionRequest(Sampling):
    prompt: str | list[str]


class ModelCard(Schema):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    name: str


class ModelList(Schema):
    object: Literal["list"]
    data: list[ModelCard]


def _card(v) -> dict:
    return {"id": str(v.pk), "object": "model", "created": int(v.created_at.timestamp()),
            "owned_by": v.model.team.name, "name": f"{v.model.name} {v.label}"}


@router.get("/models", response=ModelList, summary="The variants your token's teams can chat with")
async def models(request):
    variants = variants_visible_to(request.auth).select_related("model", "model__team")
    return {"object": "list", "data": [_card(v) async for v in variants]}


@router.get("/models/{model}", response=ModelCard, summary="One model (404 in OpenAI's shape if not yours)")
async def model(request, model: str):
    variant, _files = await variant_for_chat(user=request.auth, variant_id=model)
    return _card(variant)


def _messages(body: ChatRequest) -> list[dict]:
    out = []
    for m in body.messages:
        content = m.content
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(str(p.get("text", "")) for p in content)
        out.append({"role": "system" if m.role == "developer" else m.role, "content": content})
    return out


@router.post("/chat/completions", summary="Chat completion (stream: server-sent chunks)",
             response={200: dict})
async def chat_completions(request, body: ChatRequest):
    return await _complete(request.auth, body.model_dump(exclude={"messages"}), messages=_messages(body))


@router.post("/completions", summary="Text completion (stream: server-sent chunks)", response={200: dict})
async def completions(request, body: CompletionRequest):
    prompt = body.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise RuntimeRequestError("prompt must be a string (or a list of one)", param="prompt")
        prompt = prompt[0]
    return await _complete(request.auth, body.model_dump(), prompt=prompt)


async def _complete(user, body: dict, *, messages: list[dict] | None = None, prompt: str | None = None):
    chat = messages is not None
    refuse_unsupported(body)
    variant, files = await variant_for_chat(user=user, variant_id=str(body.get("model")))
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
