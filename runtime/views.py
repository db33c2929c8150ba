"""Playground pages and its token stream (server-sent events over ASGI).

The chat view is async: it asks the runtime server for a generation (runtime/client.py) and relays
each token as an SSE event while it arrives. When the browser goes away, Django cancels the
response task; the generator's `finally` then cancels the generation on the runtime.
"""

from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.contrib import messages as flash
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from catalog.selectors import variants_visible_to
from runtime import client, services
from runtime.errors import RuntimeRequestError
from runtime.params import parse_sampling
from runtime.selectors import api_tokens_of, context_window, conversations_of, variant_for_chat

MAX_SIDE_BY_SIDE = 4


@require_GET
def playground(request):
    variants = list(variants_visible_to(request.user).select_related("model"))
    conversation = None
    if request.GET.get("c"):
        conversation = get_object_or_404(conversations_of(request.user), pk=request.GET["c"])
    initial = {
        "conversation": conversation and {
            "id": conversation.pk, "variant": conversation.variant_id,
            "messages": [{"role": m.role, "content": m.content, "stats": m.stats}
                         for m in conversation.messages.all()],
        },
        "variants": {str(v.pk): {"label": f"{v.model.name} — {v.label} (#{v.pk})",
                                 "n_ctx": context_window(v)} for v in variants},
        "max_side_by_side": MAX_SIDE_BY_SIDE,
    }
    return render(request, "runtime/playground.html", {
        "variants": variants, "conversations": conversations_of(request.user)[:50],
        "conversation": conversation, "initial": initial,
        "runtime": client.status_sync(),
    })


def _error_response(exc: RuntimeRequestError) -> JsonResponse:
    return JsonResponse({"error": {"message": exc.message, "code": exc.code, "param": exc.param}},
                        status=exc.status, headers=exc.headers)


def _sse(event: dict) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()


@require_POST
async def chat_stream(request):
    """POST JSON {variant, content, conversation?, system?, params{...}} → text/event-stream."""
    user = await request.auser()
    try:
        data = json.loads(request.body or b"{}")
        if not isinstance(data, dict):
            raise ValueError
    except ValueError:
        return _error_response(RuntimeRequestError("the body must be a JSON object"))
    try:
        variant, files = await variant_for_chat(user=user, variant_id=data.get("variant"))
        content = str(data.get("content") or "").strip()
        if not content:
            raise RuntimeRequestError("write a message first", param="content")
        params = parse_sampling(data.get("params") or {})
        conversation = None
        if data.get("conversation"):
            conversation = await conversations_of(user).filter(
                pk=data["conversation"], variant=variant).afirst()
            if conversation is None:
                raise RuntimeRequestError("no such conversation", status=404, param="conversation")
            history = await sync_to_async(services.conversation_history)(conversation=conversation)
        else:
            system = str(data.get("system") or "")
            history = [{"role": "system", "content": system}] if system.strip() else []
        generation = await client.open_generation(payload=services.runtime_payload(
            variant=variant, files=files, request_id=services.new_request_id(user=user),
            params=params, messages=[*history, {"role": "user", "content": content}]))
    except RuntimeRequestError as exc:
        return _error_response(exc)
    try:
        if conversation is None:
            conversation = await sync_to_async(services.conversation_start)(
                user=user, variant=variant, system=str(data.get("system") or ""), content=content)
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


@require_POST
async def cancel(request, request_id: str):
    user = await request.auser()
    if not request_id.startswith(f"u{user.pk}-"):
        raise Http404
    try:
        cancelled = await client.cancel(request_id=request_id)
    except RuntimeRequestError as exc:
        return _error_response(exc)
    return JsonResponse({"cancelled": cancelled})


@require_POST
def conversation_delete(request, pk: int):
    conversation = get_object_or_404(conversations_of(request.user), pk=pk)
    services.conversation_delete(conversation=conversation, user=request.user)
    flash.success(request, "Conversation deleted.")
    return redirect("runtime:playground")


def tokens(request):
    """Lists the user's API tokens; POST makes one and shows the key once."""
    new_key = None
    if request.method == "POST":
        _token, new_key = services.api_token_create(user=request.user,
                                                    name=request.POST.get("name", ""))
    return render(request, "runtime/tokens.html", {
        "tokens": api_tokens_of(request.user), "new_key": new_key,
        "api_base": request.build_absolute_uri("/v1"),
    })


@require_POST
def token_delete(request, pk: int):
    token = get_object_or_404(api_tokens_of(request.user), pk=pk)
    services.api_token_revoke(token=token, user=request.user)
    flash.success(request, f"Token {token.name} revoked.")
    return redirect("runtime:tokens")
