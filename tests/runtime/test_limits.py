"""The playground's stop button, against real uvicorn and the runtime server (cap 1 and a queue of
1 per variant in the test session).

Overload (429 with Retry-After), a client that disconnects, and a runtime crash and restart are
proved once, against their own runtime supervisor, in tests/reliability/test_playground_overload.py
(so no test here kills the session's runtime server, which other modules share)."""

import json

import pytest

from tests.runtime.http import post, session_headers, sse_events

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_stop_button_path_ends_generation_on_the_server(runtime_web_server, runtime_server,
                                                           red_demo, teams):
    from runtime.models import Message

    headers = session_headers(teams["alice"])
    _connection, response = post(runtime_web_server, "/playground/chat/", {
        "variant": red_demo.pk, "content": "Write a long story.",
        "params": {"max_tokens": 400, "temperature": 0}}, headers)
    events = sse_events(response)
    start = next(events)[1]
    next(events)
    _c, cancel = post(runtime_web_server, f"/playground/cancel/{start['request_id']}/", {}, headers)
    assert json.loads(cancel.read()) == {"cancelled": True}
    rest = [event for _t, event in events]
    assert rest[-1]["type"] == "done" and rest[-1]["finish_reason"] == "cancelled"
    assert rest[-1]["stats"]["completion_tokens"] < 400
    assert Message.objects.get(role="assistant").stats["finish_reason"] == "cancelled"
    # another user can't cancel it by guessing: ids name their user
    _c, other = post(runtime_web_server, f"/playground/cancel/{start['request_id']}/", {},
                     session_headers(teams["carol"]))
    assert other.status == 404
