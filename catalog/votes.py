"""The blind side-by-side votes a model's variants got, as ratings: the votes that count (one per
user, prompt and unordered pair of variants, the latest) and the Bradley–Terry leaderboard
(catalog/ratings.py) computed from them. The runtime app collects the votes (runtime/blind.py);
they are kept here, beside the other measurements of a variant's quality."""

from __future__ import annotations

from catalog import ratings
from catalog.models import BlindPair, Model


def counted_votes(model: Model) -> list[BlindPair]:
    """The votes the leaderboard counts for `model`: every voted pair of its team, the latest
    per user, prompt and unordered pair of variants."""
    latest: dict[tuple, BlindPair] = {}
    voted = BlindPair.objects.filter(model=model, team=model.team).exclude(vote="") \
        .order_by("voted_at", "pk")
    for pair in voted:
        key = (pair.user_id, pair.system, pair.prompt,
               frozenset((pair.variant_a_id, pair.variant_b_id)))
        latest[key] = pair  # later votes replace earlier ones
    return list(latest.values())


def ratings_for_model(model: Model) -> ratings.Leaderboard:
    """The model's Bradley–Terry leaderboard from its counted votes; players are variant ids."""
    return ratings.leaderboard((p.variant_a_id, p.variant_b_id, p.vote) for p in counted_votes(model))


def vote_columns_for_model(model: Model) -> dict[int, dict]:
    """variant id -> its blind-vote rating as plain values, for the comparison page: rating, low, high (95 %, Elo scale; None when not rated), votes counted,
    rank (None when unresolved) and why_unranked."""
    board = ratings_for_model(model)
    return {r.player: {"rating": r.rating, "low": r.low, "high": r.high,
                       "half_width": r.half_width, "votes": r.votes, "both_bad": r.both_bad,
                       "rank": r.rank, "why_unranked": r.why_unranked}
            for r in board.ratings}
