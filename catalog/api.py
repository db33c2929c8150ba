"""JSON API for the catalog (read-only). Another team's objects are 404 JSON."""

from django.shortcuts import get_object_or_404
from ninja import Router

from catalog.api_tasksets import router as tasksets_router
from catalog.comparison import comparison_json, comparison_rows
from catalog.comparison_schemas import CompareOut
from catalog.schemas import DatasetList, ModelList, ModelOut, VariantOut
from catalog.selectors import datasets_visible_to, models_visible_to, variants_visible_to
from catalog.serializers import dataset_json, model_json, variant_json
from quantdash.api_common import DASHBOARD_AUTH

router = Router(auth=DASHBOARD_AUTH)
router.add_router("/tasksets", tasksets_router)


@router.get("/models", response=ModelList, summary="Your teams' models")
def models(request):
    rows = models_visible_to(request.user).select_related("team").prefetch_related("variants__files")
    return {"models": [model_json(m, variants=False) for m in rows]}


@router.get("/models/{int:pk}", response=ModelOut, summary="One model with its variants and config")
def model(request, pk: int):
    found = get_object_or_404(models_visible_to(request.user).prefetch_related("variants__files"), pk=pk)
    return model_json(found)


@router.get("/variants/{int:pk}", response=VariantOut, summary="One variant with download links")
def variant(request, pk: int):
    return variant_json(get_object_or_404(variants_visible_to(request.user).prefetch_related("files"), pk=pk),
                        api=True)


@router.get("/models/{int:pk}/compare", response=CompareOut,
            summary="Every variant of a model with its latest measurements (the comparison page's table)")
def compare(request, pk: int, sort: str = "size"):
    found = get_object_or_404(models_visible_to(request.user), pk=pk)
    return comparison_json(found, sort, comparison_rows(found, sort))


@router.get("/datasets", response=DatasetList, summary="Your teams' datasets")
def datasets(request):
    return {"datasets": [dataset_json(d) for d in datasets_visible_to(request.user)]}
