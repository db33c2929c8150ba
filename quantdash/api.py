"""Helpers shared by the JSON APIs: 401 JSON instead of a login redirect, JSON bodies, errors."""

import json
from functools import wraps

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse

MAX_JSON_BODY = 1024 * 1024


class BadRequest(Exception):
    def __init__(self, message: str, errors: dict | None = None, status: int = 400):
        super().__init__(message)
        self.errors = errors or {}
        self.status = status


def api_login_required(view):
    """Like login_required, but answers 401 JSON (an API client can't follow a login redirect)."""

    @login_not_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse({"error": "authentication required"}, status=401)
        try:
            return view(request, *args, **kwargs)
        except BadRequest as exc:
            return JsonResponse({"error": str(exc), "errors": exc.errors}, status=exc.status)

    return wrapper


def json_body(request) -> dict:
    if len(request.body) > MAX_JSON_BODY:
        raise BadRequest("request body over 1 MiB", status=413)
    try:
        data = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return data


def not_found() -> JsonResponse:
    return JsonResponse({"error": "not found"}, status=404)
