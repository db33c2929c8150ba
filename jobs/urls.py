from django.urls import path

from jobs import api, views, views_workers

app_name = "jobs"
urlpatterns = [
    path("", views.job_list, name="list"),
    path("new", views.job_new, name="new"),
    path("workers/", views_workers.worker_list, name="workers"),
    path("new/placement", views.job_placement, name="placement"),
    path("<int:pk>/", views.job_detail, name="detail"),
    path("<int:pk>/cancel", views.job_cancel_view, name="cancel"),
]

api_urlpatterns = [
    path("", api.jobs, name="api-jobs"),
    path("<int:pk>", api.job, name="api-job"),
    path("<int:pk>/cancel", api.cancel, name="api-job-cancel"),
]
