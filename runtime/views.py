"""Playground pages: the chat page, conversations, API tokens. The token stream it calls is
runtime/playground_api.py."""

from __future__ import annotations

from django.contrib import messages as flash
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from catalog.selectors import variants_visible_to
from runtime import client, services
from runtime.selectors import api_tokens_of, context_window, conversations_of

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
