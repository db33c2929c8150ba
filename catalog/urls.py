from django.urls import path

from catalog import views

app_name = "catalog"
urlpatterns = [
    path("", views.model_list, name="list"),
    path("models/<int:pk>/", views.model_detail, name="model"),
]
