"""The playground's token stream, its cancel button, and side-by-side chats (JSON in, server-sent
events out; session auth with the CSRF token, like the page that calls them).

A side-by-side send first makes a comparison (POST /playground/comparisons/), then streams every
column with its id: each column is its own conversation, titled "<title> · <variant>".

The chat view is async: it asks the runtime server for a generation (runtime/client.py) and relays
each token as an SSE event while it arrives. When the browser goes away, Django cancels the
response task; the generator's `finally` then cancels the generation on the runtime.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from asgiref.sync import sync_to_async
from django.db import transaction
from django.http import Http404
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from engines.base import MAX_TOP_LOGPROBS
from quantdash.api_common import session_auth
from runtime import client, services, sse
from runtime.blind_api import router as blind_router
from runtime.errors import RuntimeRequestError
from runtime.models import Comparison, Conversation, Message
from runtime.params import SamplingFields, sampling_params
from runtime.selectors import comparisons_of, conversations_of, variant_for_chat

router = Router(auth=[session_auth])
router.add_router("/blind", blind_router)  # the blind compare: pairs, their two streams, the vote
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]  # a database id (larger ones can't be stored)


class PlaygroundSampling(SamplingFields):
    logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS,
                                 description="each token's probability and that many alternatives")


class ChatTurn(Schema):
    model_config = ConfigDict(extra="forbid")

    variant: int | str = Field(description="the variant to chat with")
    content: str = Field("", description="the user's message")
    conversation: RowId | None = Field(None, description="continue this conversation (same variant)")
    comparison: RowId | None = Field(None, description="the side-by-side chat this is a column of "
                                     "(POST /playground/comparisons/ makes one)")
    system: str = Field("", description="system prompt of a new conversation")
    params: PlaygroundSampling = Field(default_factory=PlaygroundSampling, description="sampling, as /v1 takes it")


class ComparisonStart(Schema):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(description="the first message, which titles the comparison")
    variants: list[RowId] = Field(description="the variants compared, one column each",
                                  min_length=2, max_length=Comparison.MAX_COLUMNS)


class ComparisonOut(Schema):
    id: int
    title: str


class Cancelled(Schema):
    cancelled: bool


def _title(text: str) -> str:
    return text.strip()[:80] or "Chat"


@transaction.atomic
def _column_start(*, comparison: Comparison, user, variant, system: str) -> Conversation:
    """A comparison's column for `variant`: services.conversation_start, titled apart from its
    sibling columns by the variant it talks to."""
    conversation = Conversation.objects.create(
        team=variant.model.team, user=user, variant=variant, comparison=comparison,
        title=f"{comparison.title} · {variant.label} #{variant.pk}")
    if system.strip():
        Message.objects.create(conversation=conversation, role=Message.Role.SYSTEM, content=system)
    return conversation


@router.post("/comparisons/", url_name="playground-comparisons", response={201: ComparisonOut},
             summary="Start a side-by-side chat; send each column's message with its id")
async def comparison_start(request, body: ComparisonStart):
    user = request.auth
    if len(set(body.variants)) != len(body.variants):
        raise RuntimeRequestError("each variant can be compared once", param="variants")
    variants = []
    for variant_id in body.variants:
        try:
            variants.append((await variant_for_chat(user=user, variant_id=variant_id))[0])
        except RuntimeRequestError as error:
            error.param = "variants"
            raise
    comparison = await Comparison.objects.acreate(team=variants[0].model.team, user=user,
                                                  title=_title(body.title))
    return 201, {"id": comparison.pk, "title": comparison.title}


@router.post("/chat/", url_name="playground-chat", response={200: dict},
             summary="Send a message; the reply streams back as server-sent events (start, token, done, error)")
async def chat_stream(request, body: ChatTurn):
    user = request.auth
    variant, files = await variant_for_chat(user=user, variant_id=body.variant)
    content = body.content.strip()
    if not content:
        raise RuntimeRequestError("write a message first", param="content")
    params = replace(sampling_params(body.params), logprobs=body.params.logprobs)
    comparison = conversation = None
    if body.comparison:
        comparison = await comparisons_of(user).filter(pk=body.comparison).afirst()
        if comparison is None:
            raise RuntimeRequestError("no such comparison", status=404, param="comparison")
    if body.conversation:
        columns = conversations_of(user).filter(pk=body.conversation, variant=variant)
        if comparison:
            columns = columns.filter(comparison=comparison)
        conversation = await columns.afirst()
        if conversation is None:
            raise RuntimeRequestError("no such conversation", status=404, param="conversation")
        history = await sync_to_async(services.conversation_history)(conversation=conversation)
    else:
        if comparison and await comparison.conversations.filter(variant=variant).aexists():
            raise RuntimeRequestError("this comparison already has a column for that variant; "
                                      "continue its conversation", param="variant")
        history = [{"role": "system", "content": body.system}] if body.system.strip() else []
    generation = await client.open_generation(payload=services.runtime_payload(
        variant=variant, files=files, request_id=services.new_request_id(user=user),
        params=params, messages=[*history, {"role": "user", "content": content}]))
    try:
        if conversation is None and comparison:
            conversation = await sync_to_async(_column_start)(
                comparison=comparison, user=user, variant=variant, system=body.system)
        elif conversation is None:
            conversation = await sync_to_async(services.conversation_start)(
                user=user, variant=variant, system=body.system, content=content)
        await sync_to_async(services.message_add)(conversation=conversation, role="user",
                                                  content=content)
        await sync_to_async(services.conversation_settings_save)(
            conversation=conversation, settings=body.params.model_dump(exclude_none=True))
    except BaseException:
        await generation.aclose()
        raise
    return sse.response(_relay(generation, conversation))


async def _relay(generation: client.Generation, conversation):
    pieces: list[str] = []
    saved = False

    async def save(stats: dict) -> None:
        nonlocal saved
        saved = True
        await sync_to_async(services.message_add)(
            conversation=conversation, role="assistant", content="".join(pieces), stats=stats)

    try:
        yield sse.frame({"type": "start", "conversation": conversation.pk,
                         "comparison": conversation.comparison_id,
                         "request_id": generation.request_id, **generation.start})
        async for event in generation.events():
            if event["type"] == "token":
                pieces.append(event["text"])
            elif event["type"] == "done":
                event["stats"]["finish_reason"] = event["finish_reason"]
                await save(event["stats"])
            elif event["type"] == "error" and pieces:
                await save({"finish_reason": "error", "error": event["message"]})
            yield sse.frame(event)
    finally:
        await generation.aclose()
        if pieces and not saved:  # the browser went away mid-reply: keep what it had seen
            await save({"finish_reason": "disconnected"})


@router.post("/cancel/{request_id}/", url_name="playground-cancel", response=Cancelled,
             summary="Stop a reply that is streaming")
async def cancel(request, request_id: str):
    if not request_id.startswith(f"u{request.auth.pk}-"):
        raise Http404
    return {"cancelled": await client.cancel(request_id=request_id)}
