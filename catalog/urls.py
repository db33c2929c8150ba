from django.urls import path

from catalog import api, views, views_import

app_name = "catalog"
urlpatterns = [
    path("", views.model_list, name="list"),
    path("import/", views_import.model_import, name="import"),
    path("models/<int:pk>/", views.model_detail, name="model"),
    path("models/<int:pk>/lineage/", views.model_lineage, name="lineage"),
    path("models/<int:pk>/compare/", views.model_compare, name="compare"),
    path("models/<int:pk>/delete/", views.model_delete_view, name="model-delete"),
    path("variants/<int:pk>/delete/", views.variant_delete_view, name="variant-delete"),
    path("variants/<int:pk>/convert/", views.variant_convert_view, name="variant-convert"),
    path("files/<int:pk>/download/", views.file_download, name="download"),
    path("datasets/", views_import.dataset_list, name="datasets"),
    path("datasets/<int:pk>/download/", views_import.dataset_download, name="dataset-download"),
    path("datasets/<int:pk>/delete/", views_import.dataset_delete_view, name="dataset-delete"),
]

# Mounted at /api/catalog/ by quantdash/urls.py.
api_urlpatterns = ([
    path("models", api.models, name="models"),
    path("models/<int:pk>", api.model, name="model"),
    path("variants/<int:pk>", api.variant, name="variant"),
    path("datasets", api.datasets, name="datasets"),
], "catalog-api")
