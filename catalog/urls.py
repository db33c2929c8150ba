from django.urls import path

from catalog import views, views_import, views_reference_text, views_tasksets

app_name = "catalog"
# The catalog's own pages. Their job-submitting actions (model import, GGUF -> HF, "evaluate
# selected") go to /jobs/... (jobs/urls.py): the catalog is a lower layer than jobs and never
# imports it.
urlpatterns = [
    path("", views.model_list, name="list"),
    path("models/<int:pk>/", views.model_detail, name="model"),
    path("models/<int:pk>/compare/", views.model_compare, name="compare"),
    path("models/<int:pk>/lineage/", views.model_lineage, name="lineage"),
    path("models/<int:pk>/delete/", views.model_delete_view, name="model-delete"),
    path("variants/<int:pk>/delete/", views.variant_delete_view, name="variant-delete"),
    path("files/<int:pk>/download/", views.file_download, name="download"),
    path("datasets/", views_import.dataset_list, name="datasets"),
    path("datasets/wikitext-2/", views_reference_text.dataset_wikitext, name="dataset-wikitext"),
    path("datasets/<int:pk>/download/", views_import.dataset_download, name="dataset-download"),
    path("datasets/<int:pk>/delete/", views_import.dataset_delete_view, name="dataset-delete"),
    path("tasks/", views_tasksets.taskset_list, name="tasksets"),
    path("tasks/<int:pk>/download/", views_tasksets.taskset_download, name="taskset-download"),
    path("tasks/<int:pk>/delete/", views_tasksets.taskset_delete_view, name="taskset-delete"),
]
