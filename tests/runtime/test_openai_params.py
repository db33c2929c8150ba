"""/v1 refuses what it can't honour: each OpenAI parameter not implemented yet is a 400 naming it
unless sent at its no-op value, an unknown parameter is a 400 naming it; GET /v1/models/<id>.
Validation runs before any generation, so no runtime server is needed here."""

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def api(teams):
    from runtime.services import api_token_create

    return Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=teams['alice'], name='t')[1]}")


def post(api, path: str, body: dict):
    return api.post(path, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("path, extra, param", [
    ("/v1/chat/completions", {"n": 2}, "n"),
    ("/v1/chat/completions", {"logprobs": True, "top_logprobs": 3}, "logprobs"),
    ("/v1/chat/completions", {"response_format": {"type": "json_object"}}, "response_format"),
    ("/v1/chat/completions", {"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ("/v1/chat/completions", {"tool_choice": "required"}, "tool_choice"),
    ("/v1/chat/completions", {"presence_penalty": 0.5}, "presence_penalty"),
    ("/v1/chat/completions", {"logit_bias": {"50256": -100}}, "logit_bias"),
    ("/v1/completions", {"echo": True}, "echo"),
    ("/v1/completions", {"logprobs": 0}, "logprobs"),
    ("/v1/completions", {"best_of": 3}, "best_of"),
    ("/v1/chat/completions", {"warp_speed": 9}, "warp_speed"),
])
def test_a_parameter_it_cannot_honour_is_a_400_naming_it(api, demo_variant, path, extra, param):
    body = {"model": str(demo_variant.pk), **({"messages": HELLO} if "chat" in path else {"prompt": "Hi"})}
    r = post(api, path, {**body, **extra})
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error", error


def test_no_op_values_pass_the_check(api, demo_variant):
    from runtime.openai_api import refuse_unsupported

    refuse_unsupported({"n": 1, "logprobs": False, "top_logprobs": 0, "echo": False, "tools": [],
                        "tool_choice": "none", "response_format": {"type": "text"}, "presence_penalty": 0,
                        "logit_bias": {}, "parallel_tool_calls": True, "user": "someone"})


def test_one_model_by_id_is_team_scoped(api, teams, demo_variant):
    from runtime.services import api_token_create

    r = api.get(f"/v1/models/{demo_variant.pk}")
    assert r.status_code == 200 and r.json()["id"] == str(demo_variant.pk) and r.json()["object"] == "model"
    bob = Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=teams['bob'], name='t')[1]}")
    r = bob.get(f"/v1/models/{demo_variant.pk}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
