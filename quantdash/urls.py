from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.views.decorators.csrf import csrf_exempt
from django.urls import include, path

from accounts.views import LoginView
from quantdash import api_site, views
from quantdash.api_common import error_response


@csrf_exempt
@login_not_required
def openai_not_found(request, rest: str):
    """An unknown path under /v1/ answers OpenAI's JSON 404, as every other /v1 error does, never
    the dashboard's HTML page; it changes nothing, so it needs neither a login nor CSRF."""
    return error_response(request, 404, f"unknown route {request.method} {request.path}",
                          code="not_found")


urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("planner/", include("planner.urls")),
    path("catalog/", include("catalog.urls")),
    path("jobs/", include("jobs.urls")),
    path("playground/", include("runtime.urls")),
    # Every JSON endpoint (/api/..., /v1/..., /playground/chat/, /healthz) and /api/openapi.json:
    # one django-ninja API (quantdash/api_site.py).
    path("", api_site.urls),
    path("v1/<path:rest>", openai_not_found),  # after the API: only paths it does not serve
]
