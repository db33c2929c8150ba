"""Scenario 12: the authorization matrix over every URL pattern the resolver knows (a new route
is covered automatically, or fails here until it is mapped): another team's objects are 404 for
every method; state-changing requests without a CSRF token are 403; GETs change nothing; the
APIs without credentials are 401."""

import re

import pytest
from django.apps import apps
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.reliability.conftest import record

pytestmark = pytest.mark.django_db
# Route prefix -> which of team red's objects fills its <pk>.
OBJECT_FOR = [
    ("catalog/models/", "model"), ("api/catalog/models/", "model"),
    ("catalog/variants/", "variant"), ("api/catalog/variants/", "variant"),
    ("catalog/files/", "file"), ("catalog/datasets/", "dataset"),
    ("catalog/tasks/", "taskset"), ("api/catalog/tasksets/", "taskset"),
    ("jobs/models/", "model"), ("jobs/variants/", "variant"), ("jobs/", "job"), ("api/jobs/", "job"),
    ("playground/conversations/", "conversation"), ("playground/tokens/", "token"),
    ("playground/cancel/", "request"), ("planner/hardware/", "hardware"), ("v1/models/", "variant"),
    ("playground/leaderboard/", "model"), ("playground/blind/pairs/", "blind_pair"),
    ("planner/choose/", "model"), ("api/planner/choose/", "model"),
]
PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def routes(resolver: URLResolver | None = None, prefix: str = "") -> list[str]:
    out = []
    for p in (resolver or get_resolver()).url_patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            out += routes(p, route)
        elif isinstance(p, URLPattern):
            out.append(route)
    return out


@pytest.fixture
def red_objects(teams, demo_variant):
    from catalog.models import Dataset, TaskSet
    from jobs.models import Job
    from planner.models import HardwareProfile
    from catalog.models import BlindPair
    from runtime.models import Conversation
    from runtime.services import api_token_create

    red, alice = teams["red"], teams["alice"]
    token = api_token_create(user=alice, name="red")[0]
    return {
        "model": demo_variant.model.pk, "variant": demo_variant.pk,
        "file": demo_variant.files.get().pk,
        "dataset": Dataset.objects.create(team=red, name="d", kind="txt", path="d.txt").pk,
        "taskset": TaskSet.objects.create(team=red, name="t", kind="mc", sha256="0" * 64).pk,
        "job": Job.objects.create(team=red, kind="quantize", method="gguf",
                                  input_variant=demo_variant).pk,
        "conversation": Conversation.objects.create(team=red, user=alice, title="t").pk,
        "token": token.pk, "request": f"{alice.pk}-deadbeef",
        "blind_pair": BlindPair.objects.create(team=red, user=alice, model=demo_variant.model,
                                               variant_a=demo_variant, variant_b=demo_variant,
                                               prompt="p").pk,
        "hardware": HardwareProfile.objects.create(team=red, name="h", memory_gb=1,
                                                   bandwidth_gbs=1, tflops=1).pk,
    }


def state() -> list:
    """Every row of every project model (sessions and the login clock left out)."""
    rows = []
    for model in apps.get_models():
        if model._meta.app_label in ("sessions", "admin", "contenttypes"):
            continue
        rows += [(model.__name__, r) for r in model.objects.order_by("pk").values()]
    return [(m, {k: v for k, v in r.items() if k != "last_login"}) for m, r in rows]


def test_12_authorization_matrix(teams, red_objects):
    from runtime.services import api_token_create

    bob = Client()
    bob.force_login(teams["bob"])
    bob_token = Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=teams['bob'], name='b')[1]}")
    # every route with a parameter names an object, except /v1's catch-all JSON 404 (checked below)
    owned = [r for r in routes() if PARAM.search(r) and not r.startswith("admin/") and r != "v1/<path:rest>"]
    checked = 0
    for route in owned:
        kind = next((k for prefix, k in OBJECT_FOR if route.startswith(prefix)), None)
        assert kind, f"new route {route!r}: map it to an object in OBJECT_FOR"
        url = "/" + PARAM.sub(lambda m: str(red_objects[kind]), route)
        as_bob = bob_token if route.startswith("v1/") else bob  # /v1 takes tokens, not sessions
        for method in ("get", "post"):
            response = getattr(as_bob, method)(url)
            assert response.status_code in (404, 405), (method, url, response.status_code)
            checked += response.status_code == 404
    # Every other team's object is a 404 above; now CSRF, GET side effects and API auth.
    alice = Client(enforce_csrf_checks=True)
    alice.force_login(teams["alice"])
    plain = [r for r in routes() if not r.startswith("admin/") and "<path:" not in r]
    csrf_refused = get_clean = 0
    exempt = []
    for route in plain:
        kind = next((k for prefix, k in OBJECT_FOR if route.startswith(prefix)), None)
        url = "/" + PARAM.sub(lambda m: str(red_objects[kind]), route)
        before = state()
        alice.get(url)
        assert state() == before, f"GET {url} changed data"
        get_clean += 1
        if route.startswith("v1/"):
            continue  # token-authenticated API: no cookies, so no CSRF (checked below)
        before = state()
        response = alice.post(url)
        if response.status_code == 403:
            csrf_refused += 1
        elif response.status_code != 405:  # a CSRF-exempt POST must then change nothing
            assert state() == before, f"POST {url} without CSRF changed data"
            exempt.append(url)
    anonymous = Client()
    api = [r for r in plain if r.startswith(("api/", "v1/")) and r not in ("api/openapi.json", "api/docs")]
    for method in ("get", "post"):  # an unknown /v1 route: OpenAI's JSON 404, logged in or not
        response = getattr(anonymous, method)("/v1/no-such-route")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    for route in api:
        kind = next((k for prefix, k in OBJECT_FOR if route.startswith(prefix)), None)
        url = "/" + PARAM.sub(lambda m: str(red_objects[kind]), route)
        for method in ("get", "post"):
            response = getattr(anonymous, method)(url)
            assert response.status_code in (401, 405), (method, url, response.status_code)
    record(12, "authorization matrix", f"{len(owned)} object routes x GET/POST as another team: "
           f"{checked} answers 404, the rest 405, 0 leaks; {csrf_refused} POST routes 403 without "
           f"CSRF (+{len(exempt)} exempt read-only: {', '.join(exempt)}, changed nothing); {get_clean} GETs changed nothing; {len(api)} API routes 401 without credentials")
