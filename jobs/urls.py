from django.urls import path

from jobs import views, views_workers

app_name = "jobs"
urlpatterns = [
    path("", views.job_list, name="list"),
    path("new", views.job_new, name="new"),
    path("workers/", views_workers.worker_list, name="workers"),
    path("workers/<int:pk>/measure", views_workers.worker_measure, name="worker_measure"),
    path("new/placement", views.job_placement, name="placement"),
    path("<int:pk>/", views.job_detail, name="detail"),
    path("<int:pk>/cancel", views.job_cancel_view, name="cancel"),
]
