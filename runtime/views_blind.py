"""The blind compare page and a model's blind-vote leaderboard. The pair, its streams and the vote
are JSON (runtime/blind_api.py)."""

from __future__ import annotations

from itertools import groupby

from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from catalog.selectors import models_visible_to, runnable_variants_visible_to
from runtime import client
from catalog.votes import ratings_for_model


@require_GET
def blind_compare(request):
    """Pick a model (the pair is drawn from its variants) or tick two or more of its variants,
    send a prompt, read A and B, vote; the names come with the vote's answer."""
    variants = runnable_variants_visible_to(request.user).select_related("model") \
        .order_by("model__name", "model", "created_at", "pk")
    groups = [(model, list(vs)) for model, vs in groupby(variants, key=lambda v: v.model)]
    models = [model for model, vs in groups if len(vs) >= 2]
    return render(request, "runtime/blind.html", {
        "groups": groups, "models": models, "runtime": client.status_sync(),
    })


@require_GET
def leaderboard(request, pk: int):
    """A model's variants rated from its team's blind votes (catalog/ratings.py says how)."""
    model = get_object_or_404(models_visible_to(request.user), pk=pk)
    board = ratings_for_model(model)
    labels = {v.pk: f"{v.label} #{v.pk}" for v in model.variants.all()}
    made = model.blind_pairs.aggregate(all=Count("pk"), voted=Count("pk", filter=~Q(vote="")))
    return render(request, "runtime/leaderboard.html", {
        "model": model, "board": board, "made": made, "min_votes": board.min_votes,
        "rows": [(r, labels[r.player]) for r in board.ratings],
        "pairs": [(p, labels[p.a], labels[p.b],
                   None if p.a_win_rate is None else 100 * p.a_win_rate) for p in board.pairs],
    })

