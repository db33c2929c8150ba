"""OpenAI-compatible API: GET /v1/models[/<id>], POST /v1/chat/completions, /v1/completions and
/v1/embeddings.

Authenticated by per-user API tokens (`Authorization: Bearer qd_...`), not sessions (no cookies,
so no CSRF). Model ids are catalog variant ids as strings, scoped to the token owner's teams.
Errors use OpenAI's shape {"error": {"message", "type", "param", "code"}} (quantdash/api_common.py).
Request checks live in runtime/openai_inputs.py and openai_tools.py, response objects in
openai_shapes.py. A request with several prompts or n > 1 runs its generations one after another
(choice index = prompt index * n + j; with a seed, choice j uses seed + j).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from django.http import JsonResponse
from ninja import Router, Schema
from pydantic import Field

from catalog.selectors import runnable_variants_visible_to
from quantdash.api_common import token_auth
from runtime import client, openai_embeddings, openai_inputs, openai_tools, services, sse
from engines.base import MAX_TOP_LOGPROBS, SamplingParams
from runtime.errors import RuntimeRequestError
from runtime.openai_shapes import ChatChoice, Envelope, TextChoice, usage
from runtime.params import SamplingFields, sampling_params
from runtime.selectors import variant_for_chat

MAX_N = 8
MAX_LEGACY_LOGPROBS = 5
router = Router(auth=[token_auth])

# OpenAI parameters this server does not implement: accepted only at the value that changes
# nothing, else a 400 naming them, never silently ignored (README "What /v1 takes").
UNSUPPORTED: dict[str, tuple[tuple, str]] = {
    "best_of": ((None, 1), "1 (use n for several choices)"),
    "suffix": ((None, ""), '""'),
    "functions": ((None, []), "[] (use tools)"),
    "function_call": ((None, "none", "auto"), '"none" (use tool_choice)'),
    "modalities": ((None, ["text"]), '["text"]'),
    "audio": ((None,), "null"),
    "prediction": ((None,), "null"),
    "reasoning_effort": ((None,), "null"),
}


def refuse_unsupported(body: dict) -> None:
    for name, (no_ops, allowed) in UNSUPPORTED.items():
        if name in body and body[name] not in no_ops:
            raise RuntimeRequestError(f"{name} is not supported by this server; leave it out or send "
                                      f"{allowed}", param=name, code="unsupported_parameter")


class Sampling(SamplingFields):
    model: str | int = Field(description="a variant id from GET /v1/models")
    n: int = Field(1, ge=1, le=MAX_N, description="choices per prompt, generated one after another")
    stream: bool = False
    stream_options: dict | None = Field(None, description='{"include_usage": true} adds usage to the last chunk')
    user: str | None = Field(None, description="accepted; not used")
    suffix: str | None = Field(None, description="not supported")
    audio: dict | None = Field(None, description="not supported")
    prediction: dict | None = Field(None, description="not supported")
    reasoning_effort: str | None = Field(None, description="not supported")


class ChatRequest(Sampling):
    messages: list[openai_inputs.Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, description="takes the place of max_tokens")
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS, description="needs logprobs: true")
    response_format: dict | None = Field(None, description='{"type": "text" | "json_object" | "json_schema"}')
    tools: list[openai_tools.Tool] | None = None
    tool_choice: str | dict | None = Field(None, description='"none", "auto", "required" or a named function')
    parallel_tool_calls: bool | None = None
    functions: list | None = Field(None, description="not supported: use tools")
    function_call: str | dict | None = Field(None, description="not supported: use tool_choice")
    modalities: list | None = Field(None, description='["text"] only')


class CompletionRequest(Sampling):
    prompt: Any = Field(description="a string, a list of strings, token ids, or a list of token-id lists")
    max_tokens: int | None = Field(None, ge=0, description="0 with echo: score the prompt, generate nothing")
    echo: bool = Field(False, description="the prompt is prepended to the text (and its logprobs)")
    logprobs: int | None = Field(None, ge=0, le=MAX_LEGACY_LOGPROBS)
    best_of: int | None = Field(None, description="1 only")


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
    variants = runnable_variants_visible_to(request.auth).select_related("model", "model__team")
    return {"object": "list", "data": [_card(v) async for v in variants]}


@router.get("/models/{model}", response=ModelCard, summary="One model (404 in OpenAI's shape if not yours)")
async def model(request, model: str):
    variant, _files = await variant_for_chat(user=request.auth, variant_id=model)
    return _card(variant)


@dataclass
class Run:
    """One generation of a request: what goes to the runtime, and the choice it fills."""

    fields: dict  # messages / prompt / prompt_tokens, tools, echo
    params: SamplingParams
    choice: ChatChoice | TextChoice
    counts_prompt: bool  # the first run of its prompt (usage counts each prompt once)
    stats: dict = field(default_factory=dict)  # the done event's


def _seeded(params: SamplingParams, j: int) -> SamplingParams:
    return params if params.seed is None or j == 0 else replace(params, seed=(params.seed + j) % 2**32)


@router.post("/chat/completions", summary="Chat completion (stream: server-sent chunks)",
             response={200: dict})
async def chat_completions(request, body: ChatRequest):
    data = body.model_dump(exclude_unset=True)
    refuse_unsupported(data)
    if body.top_logprobs and not body.logprobs:
        raise RuntimeRequestError("top_logprobs needs logprobs: true", param="top_logprobs")
    tools = openai_tools.plan(body.tools, body.tool_choice, body.parallel_tool_calls)
    schema = openai_inputs.response_schema(body.response_format)
    if schema and tools and tools.forced_schema:
        raise RuntimeRequestError("response_format can't be combined with a tool_choice that forces "
                                  "a call", param="response_format")
    params = replace(sampling_params(body, max_tokens=body.max_completion_tokens),
                     logprobs=(body.top_logprobs or 0) if body.logprobs else None,
                     json_schema=(tools and tools.forced_schema) or schema)
    fields = {"messages": openai_inputs.messages(body.messages), "tools": tools and tools.tools}
    runs = [Run(fields, _seeded(params, j), ChatChoice(j, logprobs=bool(body.logprobs), tools=tools),
                counts_prompt=j == 0) for j in range(body.n)]
    return await _respond(request.auth, data, runs, chat=True)


@router.post("/completions", summary="Text completion (stream: server-sent chunks)", response={200: dict})
async def completions(request, body: CompletionRequest):
    data = body.model_dump(exclude_unset=True)
    refuse_unsupported(data)
    prompts = openai_inputs.inputs(body.prompt, param="prompt")
    if body.max_tokens == 0 and not body.echo:
        raise RuntimeRequestError("max_tokens 0 (prompt scoring) needs echo: true", param="max_tokens")
    params = replace(sampling_params(body), logprobs=body.logprobs)
    runs = []
    for i, prompt in enumerate(prompts):
        fields = {"prompt": prompt} if isinstance(prompt, str) else {"prompt_tokens": prompt}
        runs += [Run({**fields, "echo": body.echo}, _seeded(params, j),
                     TextChoice(i * body.n + j, logprobs=body.logprobs, echo=body.echo),
                     counts_prompt=j == 0) for j in range(body.n)]
    return await _respond(request.auth, data, runs, chat=False)


@router.post("/embeddings", summary="Embeddings (GGUF variants)", response={200: dict})
async def embeddings(request, body: openai_embeddings.EmbeddingRequest):
    return await openai_embeddings.create(user=request.auth, body=body)


async def _open(user, variant, files, run: Run) -> client.Generation:
    fields = {"messages": None, "prompt": None, "prompt_tokens": None, "tools": None, "echo": False,
              **run.fields}
    return await client.open_generation(payload=services.runtime_payload(
        variant=variant, files=files, request_id=services.new_request_id(user=user),
        params=run.params, **fields))


async def _choice_chunks(generation: client.Generation, run: Run) -> AsyncIterator[dict]:
    """Feeds one generation's events to its choice; yields the choice's stream pieces."""
    try:
        for piece in run.choice.opened(generation.start):
            yield piece
        async for event in generation.events():
            if event["type"] == "token":
                pieces = run.choice.token(event)
            elif event["type"] == "done":
                run.stats = event["stats"]
                pieces = run.choice.done(event)
            else:
                raise RuntimeRequestError(event["message"], status=503, code=event["code"])
            for piece in pieces:
                yield piece
    finally:
        await generation.aclose()


def _usage(runs: list[Run]) -> dict:
    return usage(sum(r.stats["prompt_tokens"] for r in runs if r.counts_prompt),
                 sum(r.stats["completion_tokens"] for r in runs),
                 sum(r.stats.get("cached_tokens", 0) for r in runs if r.counts_prompt))


async def _respond(user, body: dict, runs: list[Run], *, chat: bool):
    """Runs the generations one after another; the first is admitted before the response starts,
    so its refusals (429, context too long, a bad value the runtime found) are HTTP statuses."""
    variant, files = await variant_for_chat(user=user, variant_id=str(body.get("model")))
    first = await _open(user, variant, files, runs[0])
    envelope = Envelope(model=str(variant.pk), chat=chat, request_id=first.request_id)

    async def generations() -> AsyncIterator[tuple[client.Generation, Run]]:
        for i, run in enumerate(runs):
            yield (first if i == 0 else await _open(user, variant, files, run)), run

    if not body.get("stream"):
        try:
            async for generation, run in generations():
                async for _piece in _choice_chunks(generation, run):
                    pass
        finally:
            await first.aclose()
        return JsonResponse(envelope.whole([r.choice.whole() for r in runs], _usage(runs)))

    async def chunks():
        try:
            async for generation, run in generations():
                async for piece in _choice_chunks(generation, run):
                    yield sse.frame(envelope.chunk([piece]))
            if (body.get("stream_options") or {}).get("include_usage"):
                yield sse.frame(envelope.chunk([], _usage(runs)))
        except RuntimeRequestError as exc:
            yield sse.frame({"error": {"message": exc.message, "type": "server_error", "param": exc.param,
                                       "code": exc.code}})
        finally:
            await first.aclose()
        yield sse.done()

    return sse.response(chunks())
