"""Blind side-by-side votes: drawing the pair, keeping the replies and the vote (catalog.BlindPair;
the ratings from the votes that count are catalog/votes.py's).

What the voter may see before the vote is only "A" and "B": the mapping to variants stays in the
BlindPair row until `vote_cast` returns it. The leaderboard counts one vote per user, prompt
(with its system prompt) and unordered pair of variants, the latest one: asking the same thing
of the same two variants again and voting again doesn't weigh twice.
"""

from __future__ import annotations

import random

from django.db.models import QuerySet
from django.utils import timezone

from catalog.models import BlindPair, Model, Variant
from catalog.selectors import models_visible_to, runnable_variants_visible_to
from runtime.errors import RuntimeRequestError

SIDES = ("a", "b")
_draw = random.SystemRandom()  # the order A/B is the blinding: not guessable from earlier draws


def blind_pairs_of(user) -> QuerySet[BlindPair]:
    """A user's own blind pairs, in teams they still belong to."""
    if not user.is_authenticated:
        return BlindPair.objects.none()
    return BlindPair.objects.filter(user=user, team__members=user).distinct()


def _candidates(*, user, model_id: int | None, variant_ids: list[int]) -> tuple[Model, list[Variant]]:
    """The model and the variants a pair is drawn from: the ticked ones (two or more, of one
    model), or else every runnable variant of the chosen model."""
    visible = runnable_variants_visible_to(user).select_related("model")
    if variant_ids:
        if len(set(variant_ids)) != len(variant_ids):
            raise RuntimeRequestError("each variant can be ticked once", param="variants")
        variants = list(visible.filter(pk__in=variant_ids))
        if len(variants) != len(variant_ids):
            raise RuntimeRequestError("no such variant", status=404, param="variants")
        if len(variants) < 2:
            raise RuntimeRequestError("tick two or more variants, or pick a model to draw from",
                                      param="variants")
        if len({v.model_id for v in variants}) != 1:
            raise RuntimeRequestError("a blind pair compares variants of one model: tick variants "
                                      "of the same model", param="variants")
        if model_id is not None and variants[0].model_id != model_id:
            raise RuntimeRequestError("the ticked variants are not of that model", param="model")
        return variants[0].model, variants
    if model_id is None:
        raise RuntimeRequestError("pick a model to draw the pair from, or tick two or more "
                                  "variants", param="model")
    model = models_visible_to(user).filter(pk=model_id).first()
    if model is None:
        raise RuntimeRequestError("no such model", status=404, param="model")
    variants = list(visible.filter(model=model))
    if len(variants) < 2:
        raise RuntimeRequestError(f"{model.name} has {len(variants)} variant(s) one can chat with; "
                                  "a blind pair needs two", param="model")
    return model, variants


def pair_create(*, user, model_id: int | None, variant_ids: list[int], prompt: str, system: str,
                settings: dict) -> BlindPair:
    """Draws two of the candidates in a random order (the first drawn is A) and keeps the
    prompt and the settings both sides will be sent with."""
    prompt = prompt.strip()
    if not prompt:
        raise RuntimeRequestError("write a message first", param="content")
    model, variants = _candidates(user=user, model_id=model_id, variant_ids=variant_ids)
    first, second = _draw.sample(variants, 2)
    # Both sides get one seed, so the replies differ by the variant, not by the draw.
    settings = {**settings, "seed": settings.get("seed", _draw.randrange(2**31))}
    return BlindPair.objects.create(team=model.team, user=user, model=model, variant_a=first,
                                    variant_b=second, prompt=prompt, system=system.strip(),
                                    settings=settings)


def side_claim(*, pair: BlindPair, side: str) -> bool:
    """Marks the side as sent; False when it already was (a side is generated once)."""
    return BlindPair.objects.filter(pk=pair.pk, **{f"started_{side}": False}) \
        .update(**{f"started_{side}": True}) == 1


def side_release(*, pair: BlindPair, side: str) -> None:
    """The side's generation never started (the runtime refused it): it may be sent again."""
    BlindPair.objects.filter(pk=pair.pk).update(**{f"started_{side}": False})


def reply_save(*, pair: BlindPair, side: str, text: str, stats: dict) -> None:
    BlindPair.objects.filter(pk=pair.pk).update(**{f"reply_{side}": text, f"stats_{side}": stats})


def vote_cast(*, pair: BlindPair, vote: str) -> BlindPair:
    """Records (or replaces) the vote once both replies have ended; the caller may then reveal
    which variant each side was."""
    if vote not in BlindPair.Vote.values:
        raise RuntimeRequestError(f"vote must be one of {', '.join(BlindPair.Vote.values)}",
                                  param="vote")
    pair.refresh_from_db()
    if not (pair.stats_a and pair.stats_b):
        raise RuntimeRequestError("wait for both replies to end before voting", status=409,
                                  param="vote")
    pair.vote, pair.voted_at = vote, timezone.now()
    pair.save(update_fields=["vote", "voted_at"])
    return pair
