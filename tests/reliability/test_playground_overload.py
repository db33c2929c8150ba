"""Scenario 14: playground overload, against real uvicorn and a real runtime supervisor with one
generation per variant and a queue of 2 (RUNTIME_MAX_CONCURRENT=1, RUNTIME_QUEUE=2), one test per
behaviour: 10 simultaneous chats -> 3 answered, 7 refused at once with 429 and Retry-After; a
client that disconnects frees its slot within 2 s; a killed runtime is reported (503 JSON from /v1,
"runtime unavailable" in the playground) and the supervisor's restart serves the next request.

These are the only tests of overload, disconnects and crashes through the web server; the stop
button's cancel path is in tests/runtime/test_limits.py."""

import json
import os
import signal
import socket
import threading
import time

import pytest

from tests.reliability.conftest import record
from tests.runtime.conftest import api_keys, red_demo  # noqa: F401  (fixtures)
from tests.runtime.http import post, session_headers, sse_events
from tests.support import processes
from tests.support.fixtures import RUNTIME_ENV, RuntimeServer
from tests.support.testenv import SESSION_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
CHATS, QUEUE = 10, 2


@pytest.fixture(scope="module")
def overload_runtime(django_db_setup):
    server = RuntimeServer(processes.free_port(), SESSION_DIR / "runtime-overload.log", queue=QUEUE)
    yield server
    processes.stop(server.process)


@pytest.fixture(scope="module")
def overload_web(django_db_setup, redis_server, overload_runtime):
    process = processes.start_web(port=(port := processes.free_port()),
                                  log=SESSION_DIR / "web-overload.log", RUNTIME_URL=overload_runtime.url,
                                  RUNTIME_MAX_CONCURRENT="1", RUNTIME_QUEUE=str(QUEUE), **RUNTIME_ENV)
    yield f"http://127.0.0.1:{port}"
    processes.stop(process)


@pytest.fixture
def key(api_keys) -> dict:  # noqa: F811
    return {"Authorization": f"Bearer {api_keys['alice']}"}


@pytest.fixture
def warm_demo(overload_web, red_demo, key):  # noqa: F811
    """The demo variant, loaded in the runtime server: timings leave the load out, and a restart
    is seen to drop it. Each test's variant is a new row (the database is flushed between tests),
    so each test that needs it loaded loads its own."""
    _c, warm = post(overload_web, "/v1/chat/completions", chat(red_demo, 2), key)
    assert warm.status == 200, warm.read()[:500]
    warm.read()
    return red_demo


def chat(variant, max_tokens: int, stream: bool = False) -> dict:
    return {"model": str(variant.pk), "messages": [{"role": "user", "content": "Write a story."}],
            "max_tokens": max_tokens, "temperature": 0, "stream": stream}


def active(runtime, variant) -> int:
    return (runtime.status() or {}).get("queues", {}).get(str(variant.pk), {}).get("active", 0)


def test_14_past_the_cap_and_queue_chats_get_429_with_retry_after_at_once(overload_web, warm_demo, key):
    results, barrier = [], threading.Barrier(CHATS)

    def ask() -> None:
        barrier.wait()
        started = time.monotonic()
        _connection, response = post(overload_web, "/v1/chat/completions", chat(warm_demo, 64), key)
        payload = json.loads(response.read())
        results.append((response.status, response.getheader("Retry-After"), payload,
                        time.monotonic() - started))

    threads = [threading.Thread(target=ask) for _ in range(CHATS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive(), "a chat got no answer within 120 s"
    assert len(results) == CHATS, results  # every chat answered (a failed one raised in its thread)
    statuses = sorted(status for status, *_ in results)
    assert statuses == [200] * (1 + QUEUE) + [429] * (CHATS - 1 - QUEUE), statuses
    rejected = [r for r in results if r[0] == 429]
    for _status, retry_after, payload, _took in rejected:
        assert int(retry_after) >= 1
        assert payload["error"]["type"] == "rate_limit_error" and "busy" in payload["error"]["message"]
    slowest_429 = max(took for *_, took in rejected)
    slowest_200 = max(took for status, *_, took in results if status == 200)
    assert slowest_429 < 2, slowest_429
    record(14, "playground overload",
           f"{CHATS} simultaneous chats, cap 1 + queue {QUEUE}: {statuses.count(200)} answered "
           f"(slowest {slowest_200:.1f} s), {len(rejected)} got 429 with Retry-After, slowest "
           f"rejection {slowest_429 * 1000:.0f} ms")


def test_14_a_client_that_disconnects_frees_its_slot_within_2_seconds(overload_web, overload_runtime,
                                                                      red_demo, key):  # noqa: F811
    connection, response = post(overload_web, "/v1/chat/completions", chat(red_demo, 400, True), key)
    assert response.status == 200
    events = sse_events(response)
    for _ in range(4):
        next(events)
    assert active(overload_runtime, red_demo) == 1
    connection.sock.shutdown(socket.SHUT_RDWR)
    connection.close()
    gone = time.monotonic()
    processes.wait_until(lambda: active(overload_runtime, red_demo) == 0, 2,
                         interval=0.02, what="the disconnected request's slot to be freed")
    freed = time.monotonic() - gone
    assert freed < 2, freed
    # the web server's slot is free too: the next chat is answered, not queued behind a ghost
    _c, response = post(overload_web, "/v1/chat/completions", chat(red_demo, 4), key)
    assert response.status == 200, response.read()[:500]
    record(14, "playground disconnect", f"a streaming client that disconnected mid-reply freed "
           f"its slot in {freed:.2f} s")


def test_14_a_killed_runtime_is_reported_and_restarted(overload_web, overload_runtime, warm_demo, key):
    """One test, not two: a second kill within 10 s of the restart would double the supervisor's
    backoff (runtime/supervisor.py)."""
    before = overload_runtime.status()
    assert before["models"], before  # so that the restart is seen to start empty
    old_pid = before["pid"]
    os.kill(old_pid, signal.SIGKILL)
    killed = time.monotonic()
    _c, response = post(overload_web, "/v1/chat/completions", chat(warm_demo, 4), key)
    payload = json.loads(response.read())
    assert response.status == 503, (response.status, payload)
    assert payload["error"]["code"] == "runtime_unavailable", payload
    assert response.getheader("Retry-After")
    _c, response = post(overload_web, "/playground/chat/", {
        "variant": warm_demo.pk, "content": "Hello", "params": {"max_tokens": 4}},
        session_headers(warm_demo.model.team.members.get(username="alice")))
    playground = json.loads(response.read())
    assert response.status == 503, (response.status, playground)
    assert "runtime_unavailable" in json.dumps(playground) and "unavailable" in json.dumps(playground)

    new = processes.wait_until(lambda: (s := overload_runtime.status()) and s["pid"] != old_pid and s,
                               30, interval=0.05, what="the supervisor to restart the runtime server")
    back = time.monotonic() - killed
    assert new["models"] == [], new
    _c, response = post(overload_web, "/v1/chat/completions", chat(warm_demo, 4), key)
    assert response.status == 200, response.read()[:500]
    served = time.monotonic() - killed
    record(14, "runtime kill -9", "/v1 503 runtime_unavailable and playground 503 \"the runtime "
           f"server is unavailable\", restarted in {back:.1f} s, next request served {served:.1f} s "
           "after the kill")
