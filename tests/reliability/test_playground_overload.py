"""Scenario 14: playground overload, against real uvicorn and a real runtime supervisor with one
generation per variant and a queue of 2 (RUNTIME_MAX_CONCURRENT=1, RUNTIME_QUEUE=2): 10
simultaneous chats -> 3 answered, 7 refused at once with 429 and Retry-After; a client that
disconnects frees its slot within 2 s; a killed runtime is reported (503 JSON from /v1, "runtime
unavailable" in the playground) and the supervisor's restart serves the next request."""

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


def chat(variant, max_tokens: int, stream: bool = False) -> dict:
    return {"model": str(variant.pk), "messages": [{"role": "user", "content": "Write a story."}],
            "max_tokens": max_tokens, "temperature": 0, "stream": stream}


def active(runtime, variant) -> int:
    return (runtime.status() or {}).get("queues", {}).get(str(variant.pk), {}).get("active", 0)


def test_14_playground_overload(overload_web, overload_runtime, red_demo, api_keys):  # noqa: F811
    key = {"Authorization": f"Bearer {api_keys['alice']}"}
    _c, warm = post(overload_web, "/v1/chat/completions", chat(red_demo, 2), key)  # loads the model
    assert warm.status == 200, warm.read()[:500]
    warm.read()

    # 10 chats at once against a cap of 1 and a queue of 2.
    results, barrier = [], threading.Barrier(CHATS)

    def ask() -> None:
        barrier.wait()
        started = time.monotonic()
        _connection, response = post(overload_web, "/v1/chat/completions", chat(red_demo, 128), key)
        payload = json.loads(response.read())
        results.append((response.status, response.getheader("Retry-After"), payload,
                        time.monotonic() - started))

    threads = [threading.Thread(target=ask) for _ in range(CHATS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    statuses = sorted(status for status, *_ in results)
    assert statuses == [200] * (1 + QUEUE) + [429] * (CHATS - 1 - QUEUE), statuses
    rejected = [r for r in results if r[0] == 429]
    for _status, retry_after, payload, _took in rejected:
        assert int(retry_after) >= 1
        assert payload["error"]["type"] == "rate_limit_error" and "busy" in payload["error"]["message"]
    slowest_429 = max(took for *_, took in rejected)
    slowest_200 = max(took for status, *_, took in results if status == 200)
    assert slowest_429 < 2, slowest_429

    # A streaming client that disconnects mid-reply frees the slot.
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

    # kill -9 the runtime server: /v1 answers 503 JSON, the playground says "runtime unavailable".
    old_pid = overload_runtime.status()["pid"]
    os.kill(old_pid, signal.SIGKILL)
    killed = time.monotonic()
    _c, response = post(overload_web, "/v1/chat/completions", chat(red_demo, 4), key)
    error = json.loads(response.read())["error"]
    assert response.status == 503 and error["code"] == "runtime_unavailable", (response.status, error)
    assert response.getheader("Retry-After")
    _c, response = post(overload_web, "/playground/chat/", {
        "variant": red_demo.pk, "content": "Hello", "params": {"max_tokens": 4}},
        session_headers(red_demo.model.team.members.get(username="alice")))
    playground = json.loads(response.read())
    assert response.status == 503, (response.status, playground)
    assert "runtime_unavailable" in json.dumps(playground) and "unavailable" in json.dumps(playground)

    # The supervisor restarts it; the next request is served.
    processes.wait_until(lambda: (s := overload_runtime.status()) and s["pid"] != old_pid, 30,
                         interval=0.05, what="the supervisor to restart the runtime server")
    back = time.monotonic() - killed
    _c, response = post(overload_web, "/v1/chat/completions", chat(red_demo, 4), key)
    assert response.status == 200, response.read()[:500]
    served = time.monotonic() - killed
    record(14, "playground overload",
           f"{CHATS} simultaneous chats, cap 1 + queue {QUEUE}: {statuses.count(200)} answered "
           f"(slowest {slowest_200:.1f} s), {len(rejected)} got 429 with Retry-After, slowest "
           f"rejection {slowest_429 * 1000:.0f} ms; a disconnect freed the slot in {freed:.2f} s; "
           f"runtime kill -9: /v1 503 runtime_unavailable and playground 503 \"the runtime server "
           f"is unavailable\", "
           f"restarted in {back:.1f} s, next request served {served:.1f} s after the kill")
