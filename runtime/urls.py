from django.urls import path

from runtime import views

app_name = "runtime"
urlpatterns = [
    path("", views.playground, name="playground"),
]
