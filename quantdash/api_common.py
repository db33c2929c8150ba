"""What every JSON endpoint shares (django-ninja): authentication, the one JSON-body parser, and the
two error shapes.

- The dashboard's APIs (/api/...) take the session cookie (writes need the CSRF token) or an API
  token (`Authorization: Bearer qd_...`); errors are {"error": message, "errors": {field: message}}.
- The OpenAI-compatible API (/v1/...) takes API tokens only, and the playground's stream the
  session; their errors are OpenAI's {"error": {"message", "type", "param", "code"}}.

Validation errors are 400 naming the field (a JSON path such as `workload.swa_full`, or the query
parameter), never ninja's default 422.
"""

from __future__ import annotations

import json

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer, SessionAuth

from runtime.errors import RuntimeRequestError
from runtime.services import api_token_user

MAX_JSON_BODY = 1024 * 1024
OPENAI_PREFIXES = ("/v1/", "/playground/")
OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
                405: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
                503: "server_error"}
TOKEN_HINT = "a valid API token is required (Authorization: Bearer qd_...); make one at /playground/tokens/"


class BadRequest(Exception):
    """A 4xx with a message and, per input field, what is wrong with it."""

    def __init__(self, message: str, errors: dict | None = None, status: int = 400):
        super().__init__(message)
        self.errors = errors or {}
        self.status = status


class TokenAuth(HttpBearer):
    """`Authorization: Bearer qd_...`: a per-user API token (runtime.models.ApiToken)."""

    def authenticate(self, request: HttpRequest, token: str):
        user = api_token_user(raw=token)
        if user is not None:
            request.user = user
        return user


session_auth = SessionAuth()  # checks CSRF on writes
session_auth_read_only = SessionAuth(csrf=False)  # POSTs that only compute (the planner estimate)
token_auth = TokenAuth()
DASHBOARD_AUTH = [token_auth, session_auth]  # a token first: a request with one needs no CSRF


class JsonBodyParser(Parser):
    """The one JSON-body parser: bounded, and an object or nothing."""

    def parse_body(self, request: HttpRequest):
        if len(request.body) > MAX_JSON_BODY:
            raise BadRequest("request body over 1 MiB", status=413)
        try:
            data = json.loads(request.body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadRequest("body must be a JSON object")
        return data


def _openai_style(request: HttpRequest) -> bool:
    return request.path.startswith(OPENAI_PREFIXES)


def error_response(request: HttpRequest, status: int, message: str, *, errors: dict | None = None,
                   param: str | None = None, code: str | None = None,
                   headers: dict | None = None) -> JsonResponse:
    """One error, in the shape the route's clients expect."""
    if _openai_style(request):
        body = {"error": {"message": message, "type": OPENAI_TYPES.get(status, "server_error"),
                          "param": param if param is not None else next(iter(errors or {}), None),
                          "code": code}}
    else:
        body = {"error": message, "errors": errors or {}}
    return JsonResponse(body, status=status, headers=headers)


def _field(loc: tuple) -> str:
    """ninja's error location (source, [param,] path...) -> the field's JSON path or query name."""
    parts = [str(p) for p in loc[1:]]
    if loc and loc[0] == "body" and len(parts) > 1:
        parts = parts[1:]  # the body parameter's own name
    return ".".join(parts) or str(loc[0])


def _validation_error(request, exc: ValidationError) -> JsonResponse:
    errors: dict[str, str] = {}
    for error in exc.errors:
        message = "unknown parameter" if error.get("type") == "extra_forbidden" else error.get("msg", "invalid")
        errors.setdefault(_field(tuple(error.get("loc", ()))), message)
    message = "; ".join(f"{field}: {msg}" for field, msg in errors.items())
    return error_response(request, 400, message, errors=errors, code="invalid_value")


def _http_error(request, exc: HttpError) -> JsonResponse:
    cause = exc.__cause__
    if isinstance(cause, BadRequest):  # raised by the body parser; ninja wraps it
        return _bad_request(request, cause)
    if isinstance(exc, AuthenticationError):
        if _openai_style(request):
            return error_response(request, 401, TOKEN_HINT, code="invalid_api_key")
        return JsonResponse({"error": "authentication required"}, status=401)
    return error_response(request, exc.status_code, str(exc))


def _bad_request(request, exc: BadRequest) -> JsonResponse:
    return error_response(request, exc.status, str(exc), errors=exc.errors)


def _runtime_error(request, exc: RuntimeRequestError) -> JsonResponse:
    return error_response(request, exc.status, exc.message, param=exc.param, code=exc.code,
                          headers=exc.headers)


def _not_found(request, exc: Http404) -> JsonResponse:
    if _openai_style(request):
        return error_response(request, 404, "not found", code="not_found")
    return JsonResponse({"error": "not found"}, status=404)


def install_error_handlers(api) -> None:
    api.add_exception_handler(ValidationError, _validation_error)
    api.add_exception_handler(HttpError, _http_error)
    api.add_exception_handler(BadRequest, _bad_request)
    api.add_exception_handler(RuntimeRequestError, _runtime_error)
    api.add_exception_handler(Http404, _not_found)


def method_not_allowed(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """ninja answers a wrong method with a plain-text 405; the APIs answer JSON."""
    allowed = response.get("Allow", "")
    return error_response(request, 405, f"use {allowed.replace(', ', ' or ')}",
                          code="method_not_allowed", headers={"Allow": allowed})
