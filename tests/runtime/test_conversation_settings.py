"""A conversation keeps the sampling settings its last message was sent with (the chat stream saves
them), and the playground page hands them back to its form when the chat is reopened."""

import json

import pytest

from runtime.models import Comparison, Conversation
from tests.runtime.http import post, session_headers, sse_events


def chat(base_url, user, body) -> list:
    _connection, response = post(base_url, "/playground/chat/", body, session_headers(user))
    assert response.status == 200
    return list(sse_events(response))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_each_message_saves_the_settings_it_was_sent_with(runtime_web_server, red_demo, teams):
    events = chat(runtime_web_server, teams["alice"], {
        "variant": red_demo.pk, "content": "Name a colour.",
        "params": {"temperature": 0, "max_tokens": 4, "stop": ["\n"], "logprobs": 2}})
    conversation = Conversation.objects.get(pk=events[0][1]["conversation"])
    assert conversation.settings == {"temperature": 0.0, "max_tokens": 4, "stop": ["\n"], "logprobs": 2}

    chat(runtime_web_server, teams["alice"], {
        "variant": red_demo.pk, "conversation": conversation.pk, "content": "Another.",
        "params": {"temperature": 1.2, "max_tokens": 3, "seed": 5}})
    conversation.refresh_from_db()
    assert conversation.settings == {"temperature": 1.2, "max_tokens": 3, "seed": 5}  # the latest


def initial(page: str) -> dict:
    return json.loads(page.split('id="playground-initial" type="application/json">')[1]
                      .split("</script>")[0])


@pytest.mark.django_db
def test_a_reopened_chat_hands_its_settings_to_the_form(client, teams, red_demo):
    red, alice = teams["red"], teams["alice"]
    client.force_login(alice)
    kept = {"temperature": 0.0, "max_tokens": 64, "logprobs": 5}
    single = Conversation.objects.create(team=red, user=alice, variant=red_demo, title="At zero",
                                         settings=kept)
    assert initial(client.get(f"/playground/?c={single.pk}").content.decode())["settings"] == kept
    assert initial(client.get("/playground/").content.decode())["settings"] == {}  # a new chat: defaults

    comparison = Comparison.objects.create(team=red, user=alice, title="Side by side")
    for title in ("left", "right"):
        Conversation.objects.create(team=red, user=alice, variant=red_demo, comparison=comparison,
                                    title=title, settings={"temperature": 0.3})
    page = client.get(f"/playground/?comparison={comparison.pk}").content.decode()
    assert initial(page)["settings"] == {"temperature": 0.3}
