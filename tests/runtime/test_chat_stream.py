"""The playground's chat stream (SSE over ASGI) through real uvicorn and the runtime server."""

import pytest

from runtime.models import Conversation
from tests.runtime.http import post, session_headers, sse_events

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PARAMS = {"temperature": 0, "seed": 7, "max_tokens": 24}


def chat(base_url, user, body):
    _connection, response = post(base_url, "/playground/chat/", body, session_headers(user))
    return response


def test_a_chat_streams_tokens_one_by_one_and_is_saved(runtime_web_server, red_demo, teams):
    response = chat(runtime_web_server, teams["alice"], {
        "variant": red_demo.pk, "content": "Tell me about the sea.", "system": "Be brief.",
        "params": PARAMS})
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    events = list(sse_events(response))
    kinds = [e["type"] for _t, e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    tokens = [(t, e["text"]) for t, e in events if e["type"] == "token"]
    assert len(tokens) >= 5  # one event per token, not one blob
    assert tokens[-1][0] > tokens[0][0]  # and they arrived over time
    stats = events[-1][1]["stats"]
    assert stats["completion_tokens"] > 0 and stats["tokens_per_s"] > 0 and stats["ttft_s"] > 0
    assert stats["context_used"] == stats["prompt_tokens"] + stats["completion_tokens"]
    assert stats["n_ctx"] == 512

    conversation = Conversation.objects.get(pk=events[0][1]["conversation"])
    assert (conversation.user, conversation.team, conversation.variant) == (
        teams["alice"], teams["red"], red_demo)
    saved = list(conversation.messages.values_list("role", "content"))
    assert saved == [("system", "Be brief."), ("user", "Tell me about the sea."),
                     ("assistant", "".join(text for _t, text in tokens))]
    assert conversation.messages.last().stats["finish_reason"] in ("stop", "length")


def test_a_conversation_continues_with_its_history(runtime_web_server, red_demo, teams):
    first = list(sse_events(chat(runtime_web_server, teams["alice"], {
        "variant": red_demo.pk, "content": "My name is Ada.", "params": PARAMS})))
    conversation = first[0][1]["conversation"]
    second = list(sse_events(chat(runtime_web_server, teams["alice"], {
        "variant": red_demo.pk, "conversation": conversation, "content": "What is my name?",
        "params": PARAMS})))
    assert second[0][1]["conversation"] == conversation
    # the second prompt holds the whole first exchange
    assert second[0][1]["prompt_tokens"] > first[0][1]["prompt_tokens"] + 5
    assert Conversation.objects.get(pk=conversation).messages.count() == 4


def test_someone_elses_conversation_or_another_teams_variant_is_404(runtime_web_server, red_demo, teams):
    response = chat(runtime_web_server, teams["bob"], {"variant": red_demo.pk, "content": "hi"})
    assert response.status == 404
    assert "does not exist" in response.read().decode()
    events = list(sse_events(chat(runtime_web_server, teams["alice"], {
        "variant": red_demo.pk, "content": "hi", "params": PARAMS})))
    response = chat(runtime_web_server, teams["carol"], {
        "variant": red_demo.pk, "conversation": events[0][1]["conversation"], "content": "hi"})
    assert response.status == 404


def test_an_overlong_prompt_is_refused_before_streaming(runtime_web_server, red_demo, teams):
    response = chat(runtime_web_server, teams["alice"], {
        "variant": red_demo.pk, "content": "word " * 600, "params": PARAMS})
    assert response.status == 400
    assert "context window is 512 tokens" in response.read().decode()
    assert not Conversation.objects.exists()
