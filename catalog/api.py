"""JSON API for the catalog (session auth for now). Anonymous calls get 401 JSON, not a login
redirect; another team's objects are 404 JSON."""

from functools import wraps

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from catalog.selectors import datasets_visible_to, models_visible_to, variants_visible_to
from catalog.serializers import dataset_json, model_json, variant_json

NOT_FOUND = {"error": "not found"}


def api_login_required(view):
    """Like login_required, but answers 401 JSON (the project's LoginRequiredMiddleware would
    redirect to the login page, which an API client cannot use)."""

    @login_not_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse({"error": "authentication required"}, status=401)
        return view(request, *args, **kwargs)

    return wrapper


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
        return JsonResponse(NOT_FOUND, status=404)
    return JsonResponse(model_json(found))


@api_login_required
@require_GET
def variant(request, pk: int):
    found = variants_visible_to(request.user).prefetch_related("files").filter(pk=pk).first()
    if found is None:
        return JsonResponse(NOT_FOUND, status=404)
    return JsonResponse(variant_json(found, api=True))


@api_login_required
@require_GET
def datasets(request):
    return JsonResponse({"datasets": [dataset_json(d) for d in datasets_visible_to(request.user)]})
