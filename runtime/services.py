"""Writes for the playground and the API: conversations, messages, API tokens, and the request
the runtime server gets for a generation."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import asdict

from django.db import transaction
from django.utils import timezone

from catalog.models import File, Variant
from engines.base import SamplingParams
from runtime.models import ApiToken, Conversation, Message, token_hash
from runtime.selectors import context_window

TOKEN_PREFIX = "qd_"


# --- generation requests ----------------------------------------------------------------------
def new_request_id(*, user) -> str:
    """Unguessable, and naming its user so only they can cancel it from the playground."""
    return f"u{user.pk}-{uuid.uuid4().hex}"


def runtime_payload(*, variant: Variant, files: list[File], request_id: str,
                    params: SamplingParams, messages: list[dict] | None = None,
                    prompt: str | None = None, prompt_tokens: list[int] | None = None,
                    tools: list[dict] | None = None, echo: bool = False) -> dict:
    """What the runtime server's POST /generate needs (runtime/server.py): the dashboard resolves
    team-scoped paths, the runtime only reads them. One of messages, prompt and prompt_tokens."""
    return {
        "request_id": request_id, **_model_fields(variant, files), "messages": messages,
        "prompt": prompt, "prompt_tokens": prompt_tokens, "tools": tools, "echo": echo,
        "params": {**asdict(params), "stop": list(params.stop),
                   "logit_bias": [[token, bias] for token, bias in params.logit_bias]},
    }


def embed_payload(*, variant: Variant, files: list[File], inputs: list) -> dict:
    """What the runtime server's POST /embed needs: the model, and the strings or token-id lists."""
    return {**_model_fields(variant, files), "input": inputs}


def _model_fields(variant: Variant, files: list[File]) -> dict:
    """Which model to load, the same for every runtime request."""
    return {"variant_id": str(variant.pk), "format": variant.format,
            "files": [str(f.absolute_path) for f in files], "n_ctx": context_window(variant),
            "config": variant.model.config or {}}


# --- conversations ----------------------------------------------------------------------------
def conversation_history(*, conversation: Conversation) -> list[dict]:
    return [{"role": m.role, "content": m.content} for m in conversation.messages.all()]


@transaction.atomic
def conversation_start(*, user, variant: Variant, system: str, content: str) -> Conversation:
    conversation = Conversation.objects.create(
        team=variant.model.team, user=user, variant=variant, title=content.strip()[:80] or "Chat")
    if system.strip():
        Message.objects.create(conversation=conversation, role=Message.Role.SYSTEM, content=system)
    return conversation


def message_add(*, conversation: Conversation, role: str, content: str,
                stats: dict | None = None) -> Message:
    return Message.objects.create(conversation=conversation, role=role, content=content,
                                  stats=stats or {})


def conversation_settings_save(*, conversation: Conversation, settings: dict) -> None:
    """Keeps the sampling settings a message was sent with, for the form when the chat reopens."""
    if conversation.settings != settings:
        conversation.settings = settings
        conversation.save(update_fields=["settings"])


def conversation_delete(*, conversation: Conversation, user) -> None:
    if conversation.user_id != user.pk:
        raise PermissionError("only its owner may delete a conversation")
    conversation.delete()


# --- API tokens -------------------------------------------------------------------------------
def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """Returns the row and the raw key; the key is not stored and can't be shown again."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name.strip()[:100] or "API token",
                                    prefix=raw[:10], digest=token_hash(raw))
    return token, raw


def api_token_user(*, raw: str):
    """The active user a raw key belongs to, or None."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = ApiToken.objects.select_related("user").filter(digest=token_hash(raw)).first()
    if token is None or not token.user.is_active:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used=timezone.now())
    return token.user


def api_token_revoke(*, token: ApiToken, user) -> None:
    if token.user_id != user.pk:
        raise PermissionError("only its owner may revoke a token")
    token.delete()
