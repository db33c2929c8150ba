"""The site's JSON API (quantdash/api_site.py, django-ninja): the generated OpenAPI document covers every
JSON route; errors are 400 naming the field, JSON 401/404/405 in each family's shape; the dashboard
API takes an API token as well as the session; the OpenAI API takes tokens only."""

import json
import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db
JSON_ROUTE = re.compile(r"^(api/|v1/|healthz$|playground/(chat|cancel|comparisons|blind/pairs)/)")
NOT_OPERATIONS = {"api/openapi.json", "api/docs", "v1/<path:rest>"}  # the last: /v1's JSON 404


def json_routes(patterns=None, prefix="") -> set[str]:
    out = set()
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            out |= json_routes(p.url_patterns, route)
        elif isinstance(p, URLPattern) and JSON_ROUTE.match(route) and route not in NOT_OPERATIONS:
            out.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))
    return out


@pytest.fixture
def token(teams):
    from runtime.services import api_token_create

    return api_token_create(user=teams["alice"], name="t")[1]


def test_the_generated_document_covers_every_json_route(client):
    r = client.get("/api/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    routes = json_routes()
    assert {"/healthz", "/v1/chat/completions", "/playground/chat/", "/api/planner/estimate"} <= routes
    assert routes == set(doc["paths"])
    schemas = doc["components"]["schemas"]
    # request bodies come from the schemas the views validate with
    assert {"PlanRequest", "WorkloadSpec", "JobSubmit", "ChatRequest", "ChatTurn", "Health"} <= set(schemas)
    assert schemas["WorkloadSpec"]["additionalProperties"] is False
    body = doc["paths"]["/api/jobs/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/JobSubmit")
    assert client.get("/api/docs").status_code == 200


def test_dashboard_api_takes_a_token_without_csrf(teams, demo_variant, token):
    api = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/catalog/models").json()["models"][0]["id"] == demo_variant.model_id
    r = api.post("/api/jobs/", json.dumps({"variant": demo_variant.pk, "method": "gguf",
                                           "params": {"types": ["Q9_9"]}}), content_type="application/json")
    assert r.status_code == 400 and "Q9_9" in r.json()["errors"]["types"]  # reached the method's check
    wrong = Client(HTTP_AUTHORIZATION="Bearer qd_nope")
    assert wrong.get("/api/jobs/").json() == {"error": "authentication required"}


def test_errors_name_the_field_and_stay_json(client, teams, demo_variant):
    client.force_login(teams["alice"])
    r = client.post("/api/jobs/", json.dumps({"variant": demo_variant.pk, "method": "gguf", "colour": 1}),
                    content_type="application/json")
    assert r.status_code == 400 and set(r.json()["errors"]) == {"colour"}
    r = client.put("/api/jobs/")
    assert r.status_code == 405 and r["Allow"] and "use" in r.json()["error"]
    r = client.post("/api/planner/estimate", b"x" * (1024 * 1024 + 1), content_type="application/json")
    assert r.status_code == 413 and "1 MiB" in r.json()["error"]
    assert client.get("/api/catalog/models/999999").json() == {"error": "not found"}


def test_openai_errors_are_in_openais_shape_and_sessions_do_not_open_it(client, teams, token):
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    r = api.post("/v1/chat/completions", json.dumps({"model": "1", "messages": []}),
                 content_type="application/json")
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "messages" and error["type"] == "invalid_request_error"
    r = api.post("/v1/chat/completions", json.dumps({"model": "1", "messages": [{"role": "robot", "content": "x"}]}),
                 content_type="application/json")
    assert r.json()["error"]["param"] == "messages.0.role"
    assert api.delete("/v1/models").json()["error"]["code"] == "method_not_allowed"
    client.force_login(teams["alice"])
    r = client.get("/v1/models")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_an_unknown_v1_route_is_openais_json_404(client):
    for method in ("get", "post", "delete"):
        r = getattr(client, method)("/v1/no-such-route")
        assert r.status_code == 404 and r["Content-Type"] == "application/json", (method, r.content[:80])
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == "not_found"
        assert "/v1/no-such-route" in error["message"]
    assert client.get("/v1/models").status_code == 401  # real routes are still served by the API
