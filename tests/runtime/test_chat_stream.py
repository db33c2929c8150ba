"""The playground's chat stream (SSE over ASGI) through real uvicorn and the runtime server."""

import json
import os

import pytest

from runtime.models import Comparison, Conversation
from tests.runtime.http import post, session_headers, sse_events

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PARAMS = {"temperature": 0, "seed": 7, "max_tokens": 24}


def chat(base_url, user, body):
    _connection, response = post(base_url, "/playground/chat/", body, session_headers(user))
    return response


@pytest.fixture
def second_variant(red_demo):
    """A second variant of the demo model whose file is a hard link to the same GGUF."""
    from catalog.models import File, Variant

    original = red_demo.files.get()
    second = Variant.objects.create(model=red_demo.model, format=Variant.Format.GGUF,
                                    quant_type="Q4_1", params={"copy_of": red_demo.pk})
    second.directory.mkdir(parents=True, exist_ok=True)
    os.link(original.absolute_path, second.directory / original.path)
    File.objects.create(variant=second, path=original.path, bytes=original.bytes,
                        sha256=original.sha256)
    return second


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


def test_a_side_by_side_chat_is_one_comparison_of_distinctly_titled_columns(
        runtime_web_server, red_demo, second_variant, teams):
    alice = session_headers(teams["alice"])
    _c, response = post(runtime_web_server, "/playground/comparisons/", {
        "title": "Describe a forest.", "variants": [red_demo.pk, second_variant.pk]}, alice)
    assert response.status == 201
    comparison = json.loads(response.read())["id"]
    starts = []
    for variant in (red_demo, second_variant):
        events = list(sse_events(chat(runtime_web_server, teams["alice"], {
            "variant": variant.pk, "comparison": comparison, "content": "Describe a forest.",
            "params": PARAMS})))
        assert events[-1][1]["type"] == "done"
        starts.append(events[0][1])
    assert [s["comparison"] for s in starts] == [comparison, comparison]

    columns = Comparison.objects.get(pk=comparison).conversations.order_by("pk")
    assert [c.pk for c in columns] == [s["conversation"] for s in starts]
    assert [c.title for c in columns] == [f"Describe a forest. · GGUF Q4_1 #{red_demo.pk}",
                                          f"Describe a forest. · GGUF Q4_1 #{second_variant.pk}"]
    assert [c.messages.count() for c in columns] == [2, 2]
    # A column per variant; someone else (carol, same team) can't add to it or continue it.
    again = chat(runtime_web_server, teams["alice"], {
        "variant": red_demo.pk, "comparison": comparison, "content": "hi", "params": PARAMS})
    assert (again.status, json.loads(again.read())["error"]["param"]) == (400, "variant")
    for body in ({"comparison": comparison}, {"comparison": comparison, "conversation": columns[0].pk}):
        response = chat(runtime_web_server, teams["carol"], {
            "variant": red_demo.pk, "content": "hi", "params": PARAMS, **body})
        assert (response.status, json.loads(response.read())["error"]["param"]) == (404, "comparison")
    assert Conversation.objects.count() == 2
