"""/api/openapi.json: public, OpenAPI 3.1, and every JSON API route is documented."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db


def api_routes(patterns=None, prefix="") -> set[str]:
    out = set()
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            out |= api_routes(p.url_patterns, route)
        elif isinstance(p, URLPattern) and re.match(r"api/(planner|jobs|catalog)/", route):
            out.add("/" + re.sub(r"<int:(\w+)>", r"{\1}", route))
    return out


def test_schema_is_public_and_covers_every_api_route(client):
    r = client.get("/api/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    assert api_routes() == set(doc["paths"])


def test_refs_resolve(client):
    doc = client.get("/api/openapi.json").json()
    refs = set(re.findall(r'"\$ref": "#/components/(\w+)/(\w+)"', r.content.decode())) if (
        r := client.get("/api/openapi.json")) else set()
    assert refs
    for section, name in refs:
        assert name in doc["components"][section], name
