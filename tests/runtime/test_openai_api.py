"""The OpenAI-compatible API, driven by the official openai client against real uvicorn and the
runtime server."""

import json
import urllib.error
import urllib.request

import openai
import pytest

from tests.runtime.http import post

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
GREEDY = {"temperature": 0, "seed": 3, "max_tokens": 16}
HELLO = [{"role": "user", "content": "Say hello."}]


def client(base_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=60)


def test_models_are_the_users_team_variants(runtime_web_server, red_demo, api_keys):
    ids = [m.id for m in client(runtime_web_server, api_keys["alice"]).models.list()]
    assert ids == [str(red_demo.pk)]
    assert list(client(runtime_web_server, api_keys["bob"]).models.list()) == []


def test_chat_streams_and_matches_the_non_streaming_answer(runtime_web_server, red_demo, api_keys):
    api = client(runtime_web_server, api_keys["alice"])
    stream = api.chat.completions.create(model=str(red_demo.pk), messages=HELLO, stream=True,
                                         stream_options={"include_usage": True}, **GREEDY)
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 3
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes in (["stop"], ["length"])
    assert chunks[-1].usage.completion_tokens > 0

    whole = api.chat.completions.create(model=str(red_demo.pk), messages=HELLO, **GREEDY)
    assert whole.choices[0].message.content == "".join(pieces)  # same seed, temperature 0
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens
    assert whole.model == str(red_demo.pk)


def test_the_next_turn_reports_the_prompt_tokens_it_took_from_the_cache(runtime_web_server, red_demo,
                                                                        api_keys):
    api = client(runtime_web_server, api_keys["alice"])
    turn = [{"role": "user", "content": "Name a colour of the rainbow and say why you like it."}]
    first = api.chat.completions.create(model=str(red_demo.pk), messages=turn, **GREEDY)
    turn += [{"role": "assistant", "content": first.choices[0].message.content},
             {"role": "user", "content": "And another one?"}]
    second = api.chat.completions.create(model=str(red_demo.pk), messages=turn, **GREEDY)
    cached = second.usage.prompt_tokens_details.cached_tokens
    # the whole first prompt is a prefix of the second one and stays in the context; the new
    # turn's own tokens are evaluated
    assert first.usage.prompt_tokens - 2 <= cached < second.usage.prompt_tokens


def test_plain_completions_stream_and_not(runtime_web_server, red_demo, api_keys):
    api = client(runtime_web_server, api_keys["alice"])
    result = api.completions.create(model=str(red_demo.pk), prompt="The capital of France is",
                                    **GREEDY)
    assert result.choices[0].text and result.usage.prompt_tokens > 3
    pieces = [c.choices[0].text for c in api.completions.create(
        model=str(red_demo.pk), prompt="The capital of France is", stream=True, **GREEDY)]
    assert "".join(pieces) == result.choices[0].text


def test_another_teams_variant_is_404_in_openai_shape(runtime_web_server, red_demo, api_keys):
    with pytest.raises(openai.NotFoundError) as info:
        client(runtime_web_server, api_keys["bob"]).chat.completions.create(
            model=str(red_demo.pk), messages=HELLO, **GREEDY)
    error = info.value.body
    assert error["code"] == "model_not_found" and error["type"] == "invalid_request_error"


def test_no_or_wrong_token_is_401(runtime_web_server, red_demo):
    with pytest.raises(openai.AuthenticationError):
        client(runtime_web_server, "qd_not-a-real-token").models.list()
    _connection, response = post(runtime_web_server, "/v1/chat/completions",
                                 {"model": str(red_demo.pk), "messages": HELLO})
    assert response.status == 401
    assert json.loads(response.read())["error"]["code"] == "invalid_api_key"


def test_a_prompt_longer_than_the_context_is_400(runtime_web_server, red_demo, api_keys):
    with pytest.raises(openai.BadRequestError) as info:
        client(runtime_web_server, api_keys["alice"]).chat.completions.create(
            model=str(red_demo.pk), messages=[{"role": "user", "content": "word " * 600}], **GREEDY)
    assert info.value.body["code"] == "context_length_exceeded"
    assert "context window is 512 tokens" in info.value.body["message"]


def test_bad_sampling_values_are_400_naming_the_field(runtime_web_server, red_demo, api_keys):
    with pytest.raises(openai.BadRequestError) as info:
        client(runtime_web_server, api_keys["alice"]).chat.completions.create(
            model=str(red_demo.pk), messages=HELLO, temperature=5)
    assert info.value.body["param"] == "temperature"


def test_session_login_does_not_open_the_api(runtime_web_server, red_demo, teams):
    from tests.runtime.http import session_headers

    request = urllib.request.Request(f"{runtime_web_server}/v1/models",
                                     headers=session_headers(teams["alice"]))
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 401
