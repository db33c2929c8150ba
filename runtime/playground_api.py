"""The playground's token stream and its cancel button (JSON in, server-sent events out; session
auth with the CSRF token, like the page that calls them).

The chat view is async: it asks the runtime server for a generation (runtime/client.py) and relays
each token as an SSE event while it arrives. When the browser goes away, Django cancels the
response task; the generator's `finally` then cancels the generation on the runtime.
"""

from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.http import Http404, StreamingHttpResponse
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from quantdash.api import session_auth
from runtime import client, services
from runtime.errors import RuntimeRequestError
from runtime.params import parse_sampling
from runtime.selectors import conversations_of, variant_for_chat

router = Router(auth=[session_auth])


class ChatTurn(Schema):
    model_config = ConfigDict(extra="forbid")

    variant: int | str = Field(description="the variant to chat with")
    content: str = Field("", description="the user's message")
    conversation: int | None = Field(None, description="continue this conversation (same variant)")
    system: str = Field("", description="system prompt of a new conversation")
    params: dict = Field(default_factory=dict, description="sampling: temperature, top_p, top_k, min_p, "
                         "repeat_penalty, max_tokens, seed, stop")


class Cancelled(Schema):
    cancelled: bool


def _sse(event: dict) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()


@router.post("/chat/", url_name="playground-chat", response={200: dict},
             summary="Send a message; the reply streams back as server-sent events (start, token, done, error)")
async def chat_stream(request, body: ChatTurn):
    user = request.auth
    variant, files = await variant_for_chat(user=user, variant_id=body.variant)
    content = body.content.strip()
    if not content:
        raise RuntimeRequestError("write a message first", param="content")
    params = parse_sampling(body.params)
    conversation = None
    if body.conversation:
        conversation = await conversations_of(user).filter(pk=body.conversation, variant=variant).afirst()
        if conversation is None:
            raise RuntimeRequestError("no such conversation", status=404, param="conversation")
        history = await sync_to_async(services.conversation_history)(conversation=conversation)
    else:
        history = [{"role": "system", "content": body.system}] if body.system.strip() else []
    generation = await client.open_generation(payload=services.runtime_payload(
        variant=variant, files=files, request_id=services.new_request_id(user=user),
        params=params, messages=[*history, {"role": "user", "content": content}]))
    try:
        if conversation is None:
            conversation = await sync_to_async(services.conversation_start)(
                user=user, variant=variant, system=body.system, content=content)
        await sync_to_async(services.message_add)(conversation=conversation, role="user",
                                                  content=content)
    except BaseException:
        await generation.aclose()
        raise
    return StreamingHttpResponse(_relay(generation, conversation), content_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _relay(generation: client.Generation, conversation):
    pieces: list[str] = []
    saved = False

    async def save(stats: dict) -> None:
        nonlocal saved
        saved = True
        await sync_to_async(services.message_add)(
            conversation=conversation, role="assistant", content="".join(pieces), stats=stats)

    try:
        yield _sse({"type": "start", "conversation": conversation.pk,
                    "request_id": generation.request_id, **generation.start})
        async for event in generation.events():
            if event["type"] == "token":
                pieces.append(event["text"])
            elif event["type"] == "done":
                event["stats"]["finish_reason"] = event["finish_reason"]
                await save(event["stats"])
            elif event["type"] == "error" and pieces:
                await save({"finish_reason": "error", "error": event["message"]})
            yield _sse(event)
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
