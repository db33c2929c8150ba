"""Catalog paths whose views submit jobs (jobs/views_catalog.py). quantdash/urls.py mounts this
at /catalog/ right after catalog.urls, so the paths are the ones the catalog always had; the
namespace differs ("catalog-jobs") because one namespace can't be split over two URLconfs."""

from django.urls import path

from jobs import views_catalog

app_name = "catalog-jobs"
urlpatterns = [
    path("import/", views_catalog.model_import, name="import"),
    path("models/<int:pk>/compare/", views_catalog.model_compare, name="compare"),
    path("models/<int:pk>/evaluate/", views_catalog.model_evaluate, name="evaluate"),
    path("models/<int:pk>/variants/", views_catalog.model_variants, name="model-variants"),
    path("variants/<int:pk>/convert/", views_catalog.variant_convert_view, name="variant-convert"),
]
