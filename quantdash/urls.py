from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts.views import LoginView
from quantdash import apis, views

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("planner/", include("planner.urls")),
    path("catalog/", include("catalog.urls")),
    path("catalog/", include("jobs.urls_catalog")),
    path("jobs/", include("jobs.urls")),
    path("playground/", include("runtime.urls")),
    # Every JSON endpoint (/api/..., /v1/..., /playground/chat/, /healthz) and /api/openapi.json:
    # one django-ninja API (quantdash/apis.py).
    path("", apis.urls),
]
