"""Overload, disconnects and crashes, against real uvicorn and the runtime server (cap 1 and a
queue of 1 per variant in the test session)."""

import json
import os
import signal
import socket
import threading
import time

import pytest

from tests.runtime.http import post, sse_events
from tests.support.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def body(variant, max_tokens: int, stream: bool = False) -> dict:
    return {"model": str(variant.pk), "messages": [{"role": "user", "content": "Write a story."}],
            "max_tokens": max_tokens, "temperature": 0, "stream": stream}


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def active_generations(runtime_server, variant) -> int:
    return (runtime_server.status() or {}).get("queues", {}).get(str(variant.pk), {}).get("active", 0)


def test_past_the_cap_and_queue_requests_get_429_with_retry_after_quickly(
        runtime_web_server, runtime_server, red_demo, api_keys):
    results = []

    def ask() -> None:
        started = time.monotonic()
        _connection, response = post(runtime_web_server, "/v1/chat/completions",
                                     body(red_demo, 48), auth(api_keys["alice"]))
        payload = json.loads(response.read())
        results.append((response.status, response.getheader("Retry-After"), payload,
                        time.monotonic() - started))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    statuses = sorted(status for status, *_ in results)
    assert statuses.count(200) >= 1 and statuses.count(429) >= 1, statuses
    for status, retry_after, payload, took in results:
        if status == 429:
            assert int(retry_after) >= 1 and took < 2
            assert payload["error"]["type"] == "rate_limit_error"
            assert "busy" in payload["error"]["message"]


def test_a_client_that_disconnects_frees_its_slot_within_2_seconds(
        runtime_web_server, runtime_server, red_demo, api_keys):
    connection, response = post(runtime_web_server, "/v1/chat/completions",
                                body(red_demo, 400, stream=True), auth(api_keys["alice"]))
    assert response.status == 200
    events = sse_events(response)
    for _ in range(4):
        next(events)
    assert active_generations(runtime_server, red_demo) == 1
    connection.sock.shutdown(socket.SHUT_RDWR)
    connection.close()
    gone = time.monotonic()
    wait_until(lambda: active_generations(runtime_server, red_demo) == 0, 2,
               what="the runtime to free the disconnected request's slot")
    assert time.monotonic() - gone < 2
    _connection, response = post(runtime_web_server, "/v1/chat/completions", body(red_demo, 4),
                                 auth(api_keys["alice"]))
    assert response.status == 200


def test_the_stop_button_path_ends_generation_on_the_server(runtime_web_server, runtime_server,
                                                           red_demo, teams):
    from runtime.models import Message
    from tests.runtime.http import session_headers

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


def test_a_crashed_runtime_is_reported_and_restarted(runtime_web_server, runtime_server,
                                                     red_demo, api_keys):
    old_pid = runtime_server.status()["pid"]
    os.kill(old_pid, signal.SIGKILL)
    _connection, response = post(runtime_web_server, "/v1/chat/completions", body(red_demo, 4),
                                  auth(api_keys["alice"]))
    assert response.status == 503
    error = json.loads(response.read())["error"]
    assert error["code"] == "runtime_unavailable" and response.getheader("Retry-After")
    new = wait_until(lambda: (s := runtime_server.status()) and s["pid"] != old_pid and s, 30,
                     what="the supervisor to restart the runtime server")
    assert new["models"] == []
    _connection, response = post(runtime_web_server, "/v1/chat/completions", body(red_demo, 4),
                                  auth(api_keys["alice"]))
    assert response.status == 200
