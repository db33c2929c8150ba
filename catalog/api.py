"""JSON API for the catalog (session auth for now). Anonymous calls get 401 JSON, not a login
redirect; another team's objects are 404 JSON."""

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from catalog.selectors import datasets_visible_to, models_visible_to, variants_visible_to
from catalog.serializers import dataset_json, model_json, variant_json
from quantdash.api import api_login_required, not_found


@api_login_required
@require_GET
def models(request):
    rows = models_visible_to(request.user).select_related("team").prefetch_related("variants__files")
    return JsonResponse({"models": [model_json(m, variants=False) for m in rows]})


@api_login_required
@require_GET
def model(request, pk: int):
    found = models_visible_to(request.user).prefetch_related("variants__files").filter(pk=pk).first()
    if found is None:
        return not_found()
    return JsonResponse(model_json(found))


@api_login_required
@require_GET
def variant(request, pk: int):
    found = variants_visible_to(request.user).prefetch_related("files").filter(pk=pk).first()
    if found is None:
        return not_found()
    return JsonResponse(variant_json(found, api=True))


@api_login_required
@require_GET
def datasets(request):
    return JsonResponse({"datasets": [dataset_json(d) for d in datasets_visible_to(request.user)]})
