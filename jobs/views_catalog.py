"""The catalog pages that submit jobs: model import (hub, server path, upload), GGUF -> HF
conversion, and "evaluate selected" on the comparison and model pages (with the model page's
variants table polled while those jobs run).

They are routed under /jobs/ (jobs/urls.py): submitting a job is the jobs layer's business, and
the catalog, a lower layer, never imports jobs, so the catalog's pages only link or post here.
Lookups still go through the catalog's team-scoped selectors, so another team's objects are a
404 here as on every catalog route.
"""

import shutil

from django.conf import settings
from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from catalog import views as catalog_views
from catalog.forms import ModelImportForm
from catalog.imports import hub_info
from catalog.models import Variant
from catalog.selectors import models_visible_to, variants_visible_to
from catalog.services import CatalogError
from catalog.uploads import capped_upload
from catalog.views_import import stage_upload_folder
from jobs.methods.base import JobError
from jobs.models import Job
from jobs.selectors import jobs_visible_to
from jobs.services import evaluations_submit, job_submit


@require_POST
def variant_convert_view(request: HttpRequest, pk: int) -> HttpResponse:
    """GGUF -> HF safetensors, as an hf-from-gguf job on a worker (it loads the whole model)."""
    variant = get_object_or_404(variants_visible_to(request.user).select_related("model__team"),
                                pk=pk, format=Variant.Format.GGUF)
    try:
        job = job_submit(team=variant.model.team, user=request.user, method="hf-from-gguf",
                         params={"dtype": "float16"}, input_variant=variant)
    except JobError as exc:
        messages.error(request, str(exc))
        return redirect("catalog:model", variant.model_id)
    return redirect("jobs:detail", job.pk)


def _evaluate_selected(request: HttpRequest, model) -> list[Job]:
    """Submits one evaluate job per ticked variant of `model` (all with the same parameters);
    what is refused is said in messages naming the field or the variant. A row's "Re-measure"
    button (a speed measured on a busy node) posts the same form with remeasure=<variant id>:
    that variant alone is evaluated again, whatever else is ticked."""
    raw = request.POST.getlist("variants")
    if "remeasure" in request.POST:
        raw = [request.POST["remeasure"]]
    wanted = [int(v) for v in raw if v.strip().isdigit() and len(v.strip()) < 19]  # fits a bigint
    if len(wanted) != len(raw):
        messages.error(request, "variants: must be variant ids")
        return []
    chosen = list(model.variants.select_related("model__team").filter(pk__in=wanted))
    for missing in sorted(set(wanted) - {v.pk for v in chosen}):
        messages.error(request, f"variants: no variant #{missing} of {model.name} in this team")
    if not wanted:
        messages.error(request, "variants: tick at least one variant to evaluate")
    if not chosen or len(chosen) != len(set(wanted)):
        return []
    params = {k: request.POST[k] for k in ("dataset", "mode", "context", "chunks")
              if request.POST.get(k)}
    jobs, errors = evaluations_submit(user=request.user, variants=chosen, params=params)
    if jobs:
        messages.success(request, "Evaluating: " + ", ".join(f"job {j.pk}" for j in jobs))
    for variant_id, error in errors.items():
        messages.error(request, f"variant #{variant_id}: {error}")
    return jobs


@require_POST
def compare_evaluate(request: HttpRequest, pk: int) -> HttpResponse:
    """The comparison page's "evaluate selected": one job per ticked variant, all with the same
    parameters, then back to the comparison page."""
    _evaluate_selected(request, get_object_or_404(models_visible_to(request.user), pk=pk))
    return redirect("catalog:compare", pk)


@require_POST
def model_evaluate(request: HttpRequest, pk: int) -> HttpResponse:
    """The model page's "evaluate selected": the same submission as the comparison page's, then
    back to the model page watching the jobs (?watch=<ids>: its table polls model_variants)."""
    jobs = _evaluate_selected(request, get_object_or_404(models_visible_to(request.user), pk=pk))
    url = reverse("catalog:model", args=[pk])
    return redirect(f"{url}?watch={','.join(str(j.pk) for j in jobs)}" if jobs else url)


@require_GET
def model_variants(request: HttpRequest, pk: int) -> HttpResponse:
    """The model page's variants table as polled by htmx while its evaluate jobs run: the
    watched jobs (?watch=) and any other evaluate job still running on the model's variants,
    with their progress, and the measurements so far. Answers 286 (stop polling) with the
    final table once none of them is queued or running, so a finished page stops asking."""
    model = get_object_or_404(models_visible_to(request.user).select_related("team"), pk=pk)
    active = (Job.Status.QUEUED, Job.Status.RUNNING)
    jobs = list(jobs_visible_to(request.user).filter(kind=Job.Kind.EVALUATE, input_variant__model=model)
                .filter(Q(pk__in=catalog_views.watched_job_ids(request)) | Q(status__in=active))
                .select_related("input_variant").order_by("pk"))
    running = any(not job.is_final for job in jobs)
    # The measurements are read after the jobs' states: a job that ends between the two reads
    # is then still polled once more, never stopped with a table that lacks its results.
    context = catalog_views.model_variants_context(request, model)
    response = render(request, "catalog/partials/model_variants.html",
                      context | {"jobs": jobs, "polling": running})
    return response if running else HttpResponseStopPolling(response.content)


def _submit_import(data: dict, user) -> Job:
    """One import job for the form's source; an upload is staged first (and removed again if the
    job is refused)."""
    team = get_object_or_404(user.teams.all(), pk=data["team"])
    common = {"name": data["name"], "convert_to_hf": data["convert_to_hf"]}
    if data["source"] == "upload":
        folder = stage_upload_folder(data["files"])
        try:
            return job_submit(team=team, user=user, method="import-upload",
                              params={"staged": str(folder), **common}, input_variant=None)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    if data["source"] == "hub":
        hub_info(repo_id=data["repo_id"], revision=data["revision"] or "main")  # fail fast offline
        return job_submit(team=team, user=user, method="import-hub", input_variant=None,
                          params={"repo_id": data["repo_id"], "revision": data["revision"], **common})
    return job_submit(team=team, user=user, method="import-path", input_variant=None,
                      params={"path": data["server_path"], **common})


@capped_upload
def model_import(request: HttpRequest) -> HttpResponse:
    """Import a model from the Hub, a server path or an upload; the import runs as a job on a
    worker (jobs/methods/imports.py) and this page redirects to it."""
    form = ModelImportForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            job = _submit_import(form.cleaned_data, request.user)
        except (CatalogError, JobError) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Import queued: follow it below.")
            return redirect("jobs:detail", job.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "jobs/import.html",
                  {"form": form, "upload_limit": settings.UPLOAD_MAX_BYTES}, status=status)
