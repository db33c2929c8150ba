"""Catalog pages: list, model page, lineage partial, downloads, deletion. Every lookup goes
through a team-scoped selector, so another team's objects are a 404 on every route."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from catalog.downloads import ranged_file_response
from catalog.forms import CatalogFilterForm
from catalog.models import Variant
from catalog.selectors import (catalog_search, files_visible_to, lineage, models_visible_to,
                               tags_visible_to, variants_visible_to)
from catalog.services import CatalogError, model_delete, variant_delete


@require_GET
def model_list(request):
    form = CatalogFilterForm(request.GET or None, user=request.user)
    models = catalog_search(request.user, form.filters())
    context = {"models": models, "form": form, "tags": tags_visible_to(request.user),
               "q": form.filters().q}
    template = "catalog/partials/model_table.html" if request.htmx else "catalog/list.html"
    return render(request, template, context)


@require_GET
def model_detail(request, pk: int):
    model = get_object_or_404(models_visible_to(request.user).select_related("team"), pk=pk)
    variants = model.variants.prefetch_related("files").select_related("parent")
    return render(request, "catalog/model.html",
                  {"model": model, "variants": variants, "lineage": lineage(model)})


@require_GET
def model_lineage(request, pk: int):
    model = get_object_or_404(models_visible_to(request.user), pk=pk)
    return render(request, "catalog/partials/lineage.html", {"model": model, "lineage": lineage(model)})


@require_GET
def file_download(request, pk: int):
    f = get_object_or_404(files_visible_to(request.user).select_related("variant"), pk=pk)
    path = f.absolute_path
    if not path.is_file():
        return render(request, "catalog/missing.html", {"what": f.path}, status=410)
    return ranged_file_response(request, path, filename=path.name, etag=f.sha256)


@require_POST
def variant_delete_view(request, pk: int):
    variant = get_object_or_404(variants_visible_to(request.user).select_related("model"), pk=pk)
    try:
        variant_delete(variant=variant, user=request.user)
    except CatalogError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Deleted variant #{pk} ({variant.label}).")
    return redirect("catalog:model", variant.model_id)


@require_POST
def model_delete_view(request, pk: int):
    model = get_object_or_404(models_visible_to(request.user), pk=pk)
    try:
        model_delete(model=model, user=request.user)
    except CatalogError as exc:
        messages.error(request, str(exc))
        return redirect("catalog:model", pk)
    messages.success(request, f"Deleted {model.name} and its files.")
    return redirect("catalog:list")


@require_POST
def variant_convert_view(request, pk: int):
    """GGUF -> HF safetensors, as an hf-from-gguf job on a worker (it loads the whole model)."""
    from jobs.methods.base import JobError
    from jobs.services import job_submit

    variant = get_object_or_404(variants_visible_to(request.user).select_related("model__team"),
                                pk=pk, format=Variant.Format.GGUF)
    try:
        job = job_submit(team=variant.model.team, user=request.user, method="hf-from-gguf",
                         params={"dtype": "float16"}, input_variant=variant)
    except JobError as exc:
        messages.error(request, str(exc))
        return redirect("catalog:model", variant.model_id)
    return redirect("jobs:detail", job.pk)


def model_compare(request, pk: int):
    """Every variant of a model side by side (sortable, with a size-vs-perplexity chart); POST
    evaluates the ticked variants, one job each with the same parameters."""
    from catalog.comparison import comparison_rows, scatter, sort_headers
    from catalog.evaluations import evaluations_submit
    from catalog.selectors import datasets_visible_to

    model = get_object_or_404(models_visible_to(request.user).select_related("team"), pk=pk)
    if request.method == "POST":
        chosen = model.variants.filter(pk__in=request.POST.getlist("variants"))
        params = {k: request.POST[k] for k in ("dataset", "mode", "context", "chunks")
                  if request.POST.get(k)}
        if not chosen:
            messages.error(request, "variants: tick at least one variant to evaluate")
        else:
            jobs, errors = evaluations_submit(user=request.user, variants=chosen, params=params)
            if jobs:
                messages.success(request, "Evaluating: " + ", ".join(f"job {j.pk}" for j in jobs))
            for variant_id, error in errors.items():
                messages.error(request, f"variant #{variant_id}: {error}")
        return redirect("catalog:compare", pk)
    sort = request.GET.get("sort", "size")
    rows = comparison_rows(model, sort)
    context = {"model": model, "rows": rows, "sort": sort, "chart": scatter(rows),
               "headers": sort_headers(sort),
               "datasets": datasets_visible_to(request.user).filter(team=model.team, kind="txt")}
    template = "catalog/partials/compare_table.html" if request.htmx else "catalog/compare.html"
    return render(request, template, context)
