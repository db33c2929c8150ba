"""Catalog pages: list, model page, lineage partial, comparison, downloads, deletion. Every lookup
goes through a team-scoped selector, so another team's objects are a 404 on every route.

Pages that submit jobs (import, GGUF -> HF conversion, "evaluate selected") are routed under
/jobs/ and live in jobs/views_catalog.py: the catalog layer never imports jobs."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from catalog.comparison import (KL_TOOL, MODEL_PAGE_KEYS, comparison_rows, methods_used, scatter,
                                sort_headers)
from catalog.downloads import ranged_file_response
from catalog.forms import CatalogFilterForm
from catalog.selectors import (catalog_search, datasets_visible_to, files_visible_to, lineage,
                               models_visible_to, tags_visible_to, variants_visible_to)
from catalog.services import CatalogError, model_delete, variant_delete


@require_GET
def model_list(request):
    form = CatalogFilterForm(request.GET or None, user=request.user)
    models = catalog_search(request.user, form.filters())
    context = {"models": models, "form": form, "tags": tags_visible_to(request.user),
               "q": form.filters().q}
    template = "catalog/partials/model_table.html" if request.htmx else "catalog/list.html"
    return render(request, template, context)


def watched_job_ids(request) -> list[int]:
    """The job ids in ?watch=1,2 (the model page's "evaluate selected" redirects with them)."""
    ids = request.GET.get("watch", "").split(",")
    return [int(x) for x in ids if x.strip().isdigit() and len(x.strip()) < 19][:50]


def model_variants_context(request, model) -> dict:
    """What the model page's variants table (catalog/partials/model_variants.html) shows: every
    variant with its latest perplexity, KL and speed. jobs/views_catalog.py adds the evaluate
    jobs running on them when it renders the polled partial."""
    watch = watched_job_ids(request)
    rows = comparison_rows(model, "id", keys=MODEL_PAGE_KEYS, artifacts=True)
    return {"model": model, "rows": rows, "headers": sort_headers("id", MODEL_PAGE_KEYS, rows),
            "watch": ",".join(map(str, watch)), "polling": bool(watch)}


@require_GET
def model_detail(request, pk: int):
    """The model page: its variants with their measurements; tick some and "Evaluate selected"
    (the form posts to jobs:model-evaluate). After that the page is opened with ?watch=<job
    ids> and its variants table polls jobs/views_catalog.model_variants until the jobs end."""
    model = get_object_or_404(models_visible_to(request.user).select_related("team"), pk=pk)
    context = model_variants_context(request, model) | {
        "lineage": lineage(model),
        "datasets": datasets_visible_to(request.user).filter(team=model.team, kind="txt")}
    return render(request, "catalog/model.html", context)


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


@require_GET
def model_compare(request, pk: int):
    """Every variant of a model side by side (sortable, with a size-vs-perplexity chart). Its
    "evaluate selected" form posts to jobs:compare-evaluate, which submits the jobs."""
    model = get_object_or_404(models_visible_to(request.user).select_related("team"), pk=pk)
    sort = request.GET.get("sort", "size")
    rows = comparison_rows(model, sort)
    context = {"model": model, "rows": rows, "sort": sort, "chart": scatter(rows),
               "headers": sort_headers(sort, rows=rows), "methods": methods_used(rows),
               "kl_tool": KL_TOOL,
               "datasets": datasets_visible_to(request.user).filter(team=model.team, kind="txt")}
    template = "catalog/partials/compare_table.html" if request.htmx else "catalog/compare.html"
    return render(request, template, context)
