"""Team-scoped reads for the playground and the API."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Prefetch, QuerySet

from catalog.models import Variant
from catalog.selectors import runnable_variants_visible_to
from runtime.errors import RuntimeRequestError
from runtime.models import ApiToken, Comparison, Conversation


def conversations_of(user) -> QuerySet[Conversation]:
    """A user's own conversations, in teams they still belong to."""
    if not user.is_authenticated:
        return Conversation.objects.none()
    return Conversation.objects.filter(user=user, team__members=user).distinct()


def comparisons_of(user) -> QuerySet[Comparison]:
    """A user's own side-by-side chats, in teams they still belong to."""
    if not user.is_authenticated:
        return Comparison.objects.none()
    return Comparison.objects.filter(user=user, team__members=user).distinct()


# The playground's column order: its variant picker's (catalog's Variant ordering).
COLUMN_ORDER = ("variant__model", "variant__created_at", "pk")


def comparison_columns(comparison: Comparison) -> list[Conversation]:
    """A comparison's conversations, in the order the page showed its columns."""
    return list(comparison.conversations.select_related("variant__model").order_by(*COLUMN_ORDER))


def chat_history(user, *, limit: int = 50) -> list[tuple[str, Conversation | Comparison]]:
    """The playground's list, newest first: ("conversation", c) for a chat with one variant and
    ("comparison", c) once per side-by-side chat, its columns in `c.columns`. A comparison whose
    columns all failed to start has none and is left out."""
    columns = Conversation.objects.select_related("variant__model").order_by(*COLUMN_ORDER)
    comparisons = comparisons_of(user).filter(conversations__isnull=False) \
        .prefetch_related(Prefetch("conversations", queryset=columns, to_attr="columns"))[:limit]
    singles = conversations_of(user).filter(comparison=None).select_related("variant__model")
    singles = singles[:limit]
    entries = [("conversation", c) for c in singles] + [("comparison", c) for c in comparisons]
    return sorted(entries, key=lambda entry: entry[1].created, reverse=True)[:limit]


def api_tokens_of(user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


async def variant_for_chat(*, user, variant_id) -> tuple[Variant, list]:
    """The variant (with its model and files) if the user may chat with it; else a 404 error
    that doesn't say whether it exists in another team."""
    try:
        pk = int(variant_id)
    except (TypeError, ValueError):
        pk = None
    variant = pk and await runnable_variants_visible_to(user).select_related("model", "model__team") \
        .filter(pk=pk).afirst()
    if not variant:
        raise RuntimeRequestError(f"model {variant_id!r} does not exist", status=404,
                                  code="model_not_found", param="model")
    files = [f async for f in variant.files.all()]
    return variant, files


def context_window(variant: Variant) -> int:
    """The context the runtime loads the variant with: RUNTIME_N_CTX, capped by the model's own."""
    own = (variant.model.config or {}).get("max_position_embeddings")
    return min(settings.RUNTIME_N_CTX, int(own)) if own else settings.RUNTIME_N_CTX
