"""Playground pages: the chat page, conversations, API tokens. The token stream it calls is
runtime/playground_api.py."""

from __future__ import annotations

from django.contrib import messages as flash
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from catalog.selectors import runnable_variants_visible_to
from runtime import client, services
from runtime.models import Comparison
from runtime.selectors import (api_tokens_of, chat_history, comparison_columns, comparisons_of,
                               context_window, conversations_of)


def _owned(queryset, raw: str | None):
    """The row `raw` names if it is in `queryset`; None when nothing is asked; 404 otherwise (a
    malformed id too, rather than a 500)."""
    if not raw:
        return None
    if not raw.isdigit():
        raise Http404
    return get_object_or_404(queryset, pk=int(raw))


@require_GET
def playground(request):
    """The chat page; ?c=<conversation> reopens a chat, ?comparison=<id> a side-by-side chat with
    all its columns. An htmx request gets only the conversation list (the page re-fetches it once
    a new chat has started)."""
    comparison = _owned(comparisons_of(request.user), request.GET.get("comparison"))
    conversation = None if comparison else _owned(conversations_of(request.user),
                                                  request.GET.get("c"))
    history = {"history": chat_history(request.user), "current": comparison or conversation}
    if request.htmx:
        return render(request, "runtime/partials/conversations.html", history)
    columns = comparison_columns(comparison) if comparison else [c for c in [conversation] if c]
    variants = list(runnable_variants_visible_to(request.user).select_related("model"))
    initial = {
        "comparison": comparison and comparison.pk,
        "columns": [{"conversation": c.pk, "variant": c.variant_id,
                     "messages": [{"role": m.role, "content": m.content, "stats": m.stats}
                                  for m in c.messages.all()]} for c in columns],
        "variants": {str(v.pk): {"label": f"{v.model.name} — {v.label} (#{v.pk})",
                                 "n_ctx": context_window(v)} for v in variants},
        "max_side_by_side": Comparison.MAX_COLUMNS,
        # Every column of a side-by-side chat is sent the same settings: the first one's stand for all.
        "settings": columns[0].settings if columns else {},
    }
    return render(request, "runtime/playground.html", {
        **history, "variants": variants, "open_variants": [c.variant_id for c in columns],
        "initial": initial, "runtime": client.status_sync(),
    })


@require_POST
def conversation_delete(request, pk: int):
    """Deletes a chat; a column of a side-by-side chat takes the whole comparison with it, since
    the list shows (and deletes) a comparison as one chat."""
    conversation = get_object_or_404(conversations_of(request.user).select_related("comparison"),
                                     pk=pk)
    if conversation.comparison:
        conversation.comparison.delete()  # it is the user's: conversations_of checked the column
    else:
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
