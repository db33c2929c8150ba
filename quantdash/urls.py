from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts.views import LoginView
from catalog.urls import api_urlpatterns as catalog_api
from jobs.urls import api_urlpatterns as jobs_api
from planner.urls import api_urlpatterns as planner_api
from quantdash import openapi
from quantdash import views
from quantdash.health import healthz

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("planner/", include("planner.urls")),
    path("catalog/", include("catalog.urls")),
    path("api/catalog/", include(catalog_api)),
    path("jobs/", include("jobs.urls")),
    path("api/jobs/", include((jobs_api, "jobs-api"))),
    path("api/planner/", include(planner_api)),
    path("api/openapi.json", openapi.schema_view, name="openapi"),
    path("playground/", include("runtime.urls")),
    path("v1/", include("runtime.openai_urls")),  # OpenAI-compatible API (runtime/openai_api.py)
]
