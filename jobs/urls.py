from django.urls import path

from jobs import views, views_catalog, views_sweeps, views_workers

app_name = "jobs"
# Every page or action that submits a job is under /jobs/, including those started from a
# catalog page (import, GGUF -> HF, "evaluate selected"): the catalog app owns /catalog/ and
# never imports jobs, so a job-submitting view can't live there.
urlpatterns = [
    path("", views.job_list, name="list"),
    path("new", views.job_new, name="new"),
    path("workers/", views_workers.worker_list, name="workers"),
    path("workers/<int:pk>/measure", views_workers.worker_measure, name="worker_measure"),
    path("new/placement", views.job_placement, name="placement"),
    path("<int:pk>/", views.job_detail, name="detail"),
    path("<int:pk>/cancel", views.job_cancel_view, name="cancel"),
    path("import/", views_catalog.model_import, name="import"),
    path("models/<int:pk>/evaluate", views_catalog.model_evaluate, name="model-evaluate"),
    path("models/<int:pk>/compare/evaluate", views_catalog.compare_evaluate, name="compare-evaluate"),
    path("models/<int:pk>/variants/", views_catalog.model_variants, name="model-variants"),
    path("variants/<int:pk>/convert", views_catalog.variant_convert_view, name="variant-convert"),
    path("models/<int:pk>/sweep", views_sweeps.sweep_new, name="sweep-new"),
    path("sweeps/<int:pk>/", views_sweeps.sweep_detail, name="sweep"),
    path("sweeps/<int:pk>/cancel", views_sweeps.sweep_cancel_view, name="sweep-cancel"),
]
