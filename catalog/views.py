from django.db.models import Q
from django.shortcuts import get_object_or_404, render

from catalog.selectors import models_visible_to


def model_list(request):
    query = request.GET.get("q", "").strip()
    models = models_visible_to(request.user).select_related("team").prefetch_related("variants__files")
    if query:
        models = models.filter(Q(name__icontains=query) | Q(architecture__icontains=query))
    template = "catalog/partials/model_table.html" if request.htmx else "catalog/list.html"
    return render(request, template, {"models": models, "q": query})


def model_detail(request, pk: int):
    model = get_object_or_404(models_visible_to(request.user), pk=pk)
    variants = model.variants.prefetch_related("files").select_related("parent")
    return render(request, "catalog/model.html", {"model": model, "variants": variants})
