"""The evaluation forms' one-click WikiText-2 import (catalog/wikitext.py), posted by htmx from
beside a dataset picker; the answer replaces the line under the picker."""

from django.shortcuts import render
from django.views.decorators.http import require_POST

from catalog.services import CatalogError
from catalog.reference_text import SPLITS, wikitext_import


@require_POST
def dataset_wikitext(request):
    """Imports the split into the team the picker lists datasets of (`team`; else the user's
    first team). Added: the new dataset joins the picker as its chosen option (out of band).
    Failed (the Hub unreachable, most often): what to upload instead, with the upload form's link.
    Both answers are 200 so that htmx shows them where the user clicked."""
    teams = request.user.teams.order_by("pk")
    asked = request.POST.get("team", "")
    team = teams.filter(pk=int(asked)).first() if asked.isdigit() and len(asked) < 19 else None
    team = team or teams.first()
    split = SPLITS.get(request.POST.get("split", "test"), SPLITS["test"])
    context = {"split": split, "dataset": None, "error": ""}
    if team is None:
        context["error"] = "you are in no team, so you can't add datasets"
    else:
        try:
            context["dataset"] = wikitext_import(team_id=team.pk, user_id=request.user.pk, split=split.key)
        except CatalogError as exc:
            context["error"] = str(exc)
    return render(request, "catalog/partials/reference_text_result.html", context)
