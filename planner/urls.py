from django.urls import path

from planner import views, views_choose

app_name = "planner"
urlpatterns = [
    path("", views.index, name="index"),
    path("models", views.model_options, name="model-options"),
    path("choose/<int:pk>/", views_choose.model_choose, name="choose"),
    path("hardware/", views.hardware_create, name="hardware-create"),
    path("hardware/<int:pk>/delete", views.hardware_delete, name="hardware-delete"),
]
