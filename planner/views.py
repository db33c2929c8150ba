"""Planner pages: thin views over planner.forms (inputs) and planner.presentation (results)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from catalog.selectors import models_visible_to
from planner.estimator import EstimatorError
from planner.forms import MAX_CONFIG_BYTES, PlanForm
from planner.model_definition import warm_up
from planner.models import HardwareProfile
from planner.presentation import results_context
from planner.selectors import hardware_profiles_visible_to
from planner.services import hardware_profile_create, hardware_profile_delete

# The form's inputs that have an error slot beside them (planner/index.html); htmx responses
# refresh every slot out of band, so an error appears beside its field and a fixed one clears.
ERROR_FIELDS = ("source", "preset", "model", "config", "config_file", "params", "hardware", "devices",
                "custom_kind", "custom_memory_gb", "custom_bandwidth_gbs", "custom_tflops", "custom_device_memory_gb",
                "ram_gb", "runtime",
                "context", "batch", "kv_dtype", "mode", "lora_rank", "lora_targets", "group_size",
                "exl2_bpw", "fit_scheme", "n_cpu_moe")


def index(request):
    """GET renders the plan in the query string (the URL is the plan); POST takes an uploaded config."""
    warm_up()   # a config pasted here next is built with torch: import it while the user types
    data, files = (request.POST, request.FILES) if request.method == "POST" else (request.GET, None)
    form = PlanForm(data, files, user=request.user)
    form.is_valid()  # raises Http404 for another team's catalog model or hardware profile
    context = {"form": form, "plan": form.plan, "errors": form.error_list(),
               "field_errors": {name: form.errors.get(name, []) for name in ERROR_FIELDS}}
    if form.plan is not None:
        context.update(results_context(form.plan.estimate, form.plan.fit))
        context.update(split_rows(context["rows"]))
    if request.htmx and not request.htmx.history_restore_request:
        context["oob_errors"] = True
        return render(request, "planner/partials/results.html", context)
    context.update(catalog_models=_catalog_models(request, form), hardware_profiles=form.team_profiles,
                   max_config_bytes=MAX_CONFIG_BYTES,
                   teams=request.user.teams.all(), kinds=HardwareProfile.Kind.choices)
    return render(request, "planner/index.html", context)


def split_rows(rows: list[dict]) -> dict[str, list[dict]]:
    """The schemes the chosen runtime (and mode) runs first, in the estimator's order; the rest
    (computed, but for another runtime) folded away under them, and the ones that do nothing for this
    model (an expert-only type on a dense model) in a group of their own, each with its reason."""
    return {"runtime_rows": [r for r in rows if r["row"].supported and r["row"].applies],
            "other_rows": [r for r in rows if not r["row"].supported and r["row"].applies],
            "inapplicable_rows": [r for r in rows if not r["row"].applies],
            "has_measured": any(r["measured"] for r in rows)}  # the column only where it has numbers


def model_options(request):
    """The catalog picker's <option>s for a search (htmx), team-scoped."""
    return render(request, "planner/partials/model_options.html",
                  {"catalog_models": _catalog_models(request, None), "selected": request.GET.get("model", "")})


def _catalog_models(request, form):
    q = request.GET.get("q", "").strip()
    rows = models_visible_to(request.user).select_related("team").only("id", "name", "team__name", "param_count")
    if q:
        rows = rows.filter(name__icontains=q)
    return list(rows[:200])


@require_POST
def hardware_create(request):
    team = request.user.teams.filter(pk=request.POST.get("team") or 0).first()
    if team is None:
        messages.error(request, "team: pick one of your teams")
        return redirect(reverse("planner:index"))
    try:
        profile = hardware_profile_create(
            team=team, user=request.user, name=request.POST.get("name", ""),
            kind=request.POST.get("kind", "gpu"), memory_gb=_float(request.POST, "memory_gb"),
            bandwidth_gbs=_float(request.POST, "bandwidth_gbs"), tflops=_float(request.POST, "tflops"),
            ram_gb=_float(request.POST, "ram_gb", 64.0))
    except EstimatorError as exc:
        messages.error(request, f"{exc.field}: {exc.message}")
        return redirect(reverse("planner:index"))
    messages.success(request, f"Saved hardware profile {profile.name} for team {team.name}.")
    return redirect(f"{reverse('planner:index')}?hardware={profile.key}")


@require_POST
def hardware_delete(request, pk: int):
    profile = get_object_or_404(hardware_profiles_visible_to(request.user), pk=pk)
    hardware_profile_delete(profile=profile)
    messages.success(request, f"Deleted hardware profile {profile.name}.")
    return redirect(reverse("planner:index"))


def _float(data, name: str, default: float | None = None) -> float:
    raw = data.get(name, "")
    if raw in ("", None) and default is not None:
        return default
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise EstimatorError(name, f"must be a number, got {raw!r}") from None

