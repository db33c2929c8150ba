"""The site's one NinjaAPI: every JSON endpoint's router, mounted at the site root so the paths stay
/api/..., /v1/..., /playground/chat/ and /healthz; the OpenAPI document at /api/openapi.json
(generated from the routers' schemas) and its browsable docs at /api/docs.

Each route answers 401 JSON itself, so the site-wide LoginRequiredMiddleware lets them through
(a login redirect means nothing to an API client).
"""

from __future__ import annotations

from functools import wraps
from inspect import iscoroutinefunction

from django.urls import URLPattern, URLResolver
from django.views.decorators.http import require_safe
from ninja import NinjaAPI

from catalog.api import router as catalog_router
from jobs.api import router as jobs_router
from planner.api import router as planner_router
from quantdash.api_common import JsonBodyParser, install_error_handlers, method_not_allowed
from quantdash.health import router as health_router
from runtime.openai_api import router as openai_router
from runtime.playground_api import router as playground_router

DESCRIPTION = """Plan memory, browse the catalog, run jobs, chat.

- `/api/...`: the session cookie (writes send the CSRF token) or an API token
  (`Authorization: Bearer qd_...`, made at /playground/tokens/). Errors:
  `{"error": message, "errors": {field: message}}`; another team's objects are 404.
- `/v1/...`: OpenAI-compatible, API tokens only; errors in OpenAI's shape.
- `/playground/chat/`: the playground's token stream (session).
- `/healthz`: no login."""

api = NinjaAPI(title="quantdash API", version="0.2.0", description=DESCRIPTION,
               openapi_url="/api/openapi.json", docs_url="/api/docs", urls_namespace="api",
               parser=JsonBodyParser())
install_error_handlers(api)
api.add_router("/api/planner", planner_router, tags=["planner"])
api.add_router("/api/jobs", jobs_router, tags=["jobs"])
api.add_router("/api/catalog", catalog_router, tags=["catalog"])
api.add_router("/v1", openai_router, tags=["openai"])
api.add_router("/playground", playground_router, tags=["playground"])
api.add_router("", health_router, tags=["health"])


def _json_405(view):
    """Marks the view as answering for itself (LoginRequiredMiddleware) and turns ninja's
    plain-text 405 into JSON."""
    if iscoroutinefunction(view):
        @wraps(view)
        async def wrapper(request, *args, **kwargs):
            response = await view(request, *args, **kwargs)
            return method_not_allowed(request, response) if response.status_code == 405 else response
    else:
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            return method_not_allowed(request, response) if response.status_code == 405 else response
    wrapper.login_required = False
    wrapper.csrf_exempt = True  # ninja checks CSRF itself (session auth), per operation
    return wrapper


def _wrapped(patterns: list) -> list:
    out, seen = [], set()
    for p in patterns:
        if isinstance(p, URLResolver):
            out.append(p)
        elif isinstance(p, URLPattern):
            route = str(p.pattern)
            if route == "":
                out.append(p)  # ninja's root (it reverses it for the document's paths); "/" is the
                continue       # dashboard's home, listed first in quantdash/urls.py
            if route in seen:
                continue  # ninja lists a path once per operation; the first serves every method
            seen.add(route)
            view = p.callback
            if p.name in ("openapi-json", "openapi-view"):  # plain views that took any method
                view = require_safe(view)
            out.append(URLPattern(p.pattern, _json_405(view), p.default_args, p.name))
    return out


_patterns, _app_name, _namespace = api.urls
urls = (_wrapped(_patterns), _app_name, _namespace)
