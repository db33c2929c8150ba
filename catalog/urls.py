from django.urls import path

from catalog import views, views_import

app_name = "catalog"
# /catalog/import/, /catalog/models/<pk>/compare/ and /catalog/variants/<pk>/convert/ submit jobs:
# they are routed by jobs/urls_catalog.py (namespace "catalog-jobs"), mounted at /catalog/ after
# this module, since the catalog layer never imports jobs (STYLE.md practice 15).
urlpatterns = [
    path("", views.model_list, name="list"),
    path("models/<int:pk>/", views.model_detail, name="model"),
    path("models/<int:pk>/lineage/", views.model_lineage, name="lineage"),
    path("models/<int:pk>/delete/", views.model_delete_view, name="model-delete"),
    path("variants/<int:pk>/delete/", views.variant_delete_view, name="variant-delete"),
    path("files/<int:pk>/download/", views.file_download, name="download"),
    path("datasets/", views_import.dataset_list, name="datasets"),
    path("datasets/<int:pk>/download/", views_import.dataset_download, name="dataset-download"),
    path("datasets/<int:pk>/delete/", views_import.dataset_delete_view, name="dataset-delete"),
]
