from django.urls import path

from planner import api, views

app_name = "planner"
urlpatterns = [
    path("", views.index, name="index"),
    path("models", views.model_options, name="model-options"),
    path("hardware/", views.hardware_create, name="hardware-create"),
    path("hardware/<int:pk>/delete", views.hardware_delete, name="hardware-delete"),
]

# Mounted at /api/planner/ by quantdash/urls.py.
api_urlpatterns = ([
    path("estimate", api.estimate, name="estimate"),
    path("presets", api.presets, name="presets"),
    path("hardware", api.hardware, name="hardware"),
], "planner-api")
