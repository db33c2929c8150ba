"""The runtime protocol itself (runtime/server.py, runtime/client.py), spoken to the session's real
runtime server process with a hand-written payload: the demo GGUF copied under ARTIFACT_ROOT (one
variant id for the whole module, so the model loads once).

Admission (429, queueing), disconnects and crashes go through the dashboard in
tests/reliability/test_playground_overload.py; here are the transport's own checks."""

import asyncio
import http.client
import json
import math
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.fixtures import RUNTIME_TOKEN

pytestmark = pytest.mark.slow
PROMPT = "The capital of France is"


def artifact_dir() -> Path:
    from django.conf import settings

    return Path(settings.ARTIFACT_ROOT) / "test-server"


@pytest.fixture(scope="module")
def demo_files(demo_gguf) -> list[str]:
    target = artifact_dir() / demo_gguf.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(demo_gguf, target)
    return [str(target)]


@pytest.fixture(scope="module")
def vocab(demo_gguf):
    """The demo model's own tokenizer, read by llama.cpp without the weights: the reference the
    server's token counts are checked against."""
    from llama_cpp import Llama

    llm = Llama(str(demo_gguf), vocab_only=True, verbose=False)
    yield llm
    llm.close()


def payload(files: list[str], **fields) -> dict:
    return {"request_id": "server-test", "variant_id": "server-test-demo", "format": "gguf",
            "files": files, "n_ctx": 512, "config": {}, "prompt": PROMPT,
            "params": {"max_tokens": 4, "temperature": 0}, **fields}


def post(runtime, path: str, body: dict | None = None, *, token: str = RUNTIME_TOKEN,
         content: bytes | None = None) -> httpx.Response:
    return httpx.post(f"{runtime.url}{path}", json=body, content=content, timeout=60,
                      headers={"X-Runtime-Token": token})


def lines(response: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines()]


def test_every_route_wants_the_token(runtime_server):
    for method, path in [("GET", "/status"), ("POST", "/generate"), ("POST", "/embed"),
                         ("POST", "/cancel/abc"), ("GET", "/nowhere")]:
        for headers in ({}, {"X-Runtime-Token": "wrong"}):
            response = httpx.request(method, f"{runtime_server.url}{path}", headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.json()["error"]["code"] == "unauthorized"
    response = httpx.get(f"{runtime_server.url}/nowhere", headers={"X-Runtime-Token": RUNTIME_TOKEN})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_bodies_must_be_json_objects_of_at_most_8_mib(runtime_server, demo_files):
    for content in (b"[1, 2]", b"not json", b""):
        response = post(runtime_server, "/generate", content=content)
        assert response.status_code == 400, content
        assert response.json()["error"]["code"] == "bad_request"
    # A declared length over the limit is refused from the headers alone, before any body is read.
    connection = http.client.HTTPConnection("127.0.0.1", runtime_server.port, timeout=10)
    connection.putrequest("POST", "/generate")
    for name, value in [("X-Runtime-Token", RUNTIME_TOKEN), ("Content-Type", "application/json"),
                        ("Content-Length", str(9 * 2**20))]:
        connection.putheader(name, value)
    connection.endheaders()  # and no body
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"]["code"] == "body_too_large"
    connection.close()
    # Every refusal names the parameter.
    outside = post(runtime_server, "/generate", payload(["/etc/passwd"]))
    assert outside.status_code == 400 and outside.json()["error"]["param"] == "files"
    both = post(runtime_server, "/generate", payload(demo_files, messages=[{"role": "user", "content": "x"}]))
    assert both.status_code == 400 and both.json()["error"]["param"] == "messages"
    scoring = post(runtime_server, "/generate", payload(demo_files, params={"max_tokens": 0}))
    assert scoring.status_code == 400 and scoring.json()["error"]["param"] == "max_tokens"
    for params, param in [({"logprobs": 21}, "logprobs"), ({"temperature": "hot"}, "temperature"),
                          ({"max_tokens": 1.5}, "max_tokens"), ({"stop": "x"}, "stop")]:
        response = post(runtime_server, "/generate", payload(demo_files, params=params))
        assert response.status_code == 400 and response.json()["error"]["param"] == param, params


def in_a_thread(coroutine):
    """asyncio.run where a browser test's Playwright may hold this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_request_ids_are_checked_by_the_server_and_the_client(runtime_server, demo_files, settings):
    for bad in ("", "a b", "../status", "x" * 129, 7):
        response = post(runtime_server, "/generate", payload(demo_files, request_id=bad))
        assert response.status_code == 400, bad
        assert response.json()["error"]["param"] == "request_id"
    response = post(runtime_server, "/cancel/a.b")
    assert response.status_code == 400 and response.json()["error"]["param"] == "request_id"
    assert post(runtime_server, "/cancel/nothing-running").json() == {"cancelled": False}

    from runtime import client
    from runtime.errors import RuntimeRequestError
    from tests.support.processes import free_port

    # Nothing listens there: had the client sent a request, the answer would be 503.
    settings.RUNTIME_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RuntimeRequestError) as info:
        in_a_thread(client.cancel(request_id="a/../../status"))
    assert (info.value.status, info.value.param) == (400, "request_id")
    with pytest.raises(RuntimeRequestError) as info:
        in_a_thread(client.cancel(request_id="fine-id"))
    assert (info.value.status, info.value.code) == (503, "runtime_unavailable")


def test_echo_with_max_tokens_0_scores_the_prompt(runtime_server, demo_files, vocab):
    response = post(runtime_server, "/generate", payload(
        demo_files, echo=True, params={"max_tokens": 0, "logprobs": 2}))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    start, done = lines(response)
    expected = vocab.tokenize(PROMPT.encode(), add_bos=True)
    assert start["type"] == "start" and start["prompt_tokens"] == len(expected)
    assert start["prompt_text"].endswith(PROMPT)
    scored = start["prompt_logprobs"]
    assert len(scored) == start["prompt_tokens"] and scored[0] is None
    assert "".join(s["token"] for s in scored[1:]) == PROMPT.removeprefix(
        vocab.detokenize(expected[:1]).decode())
    for s in scored[1:]:
        assert s["logprob"] <= 0 and len(s["top_logprobs"]) == 2
        assert s["top_logprobs"][0]["logprob"] >= s["logprob"] - 1e-4  # the best comes first
    assert done["type"] == "done" and done["finish_reason"] == "length"
    assert done["stats"]["completion_tokens"] == 0
    assert done["stats"]["prompt_tokens"] == len(expected)


def test_token_events_carry_logprobs_only_when_asked(runtime_server, demo_files, vocab):
    plain = lines(post(runtime_server, "/generate", payload(demo_files)))
    assert [e["type"] for e in plain][0] == "start" and plain[-1]["type"] == "done"
    assert all("logprobs" not in e for e in plain if e["type"] == "token")
    assert "prompt_text" not in plain[0]

    events = lines(post(runtime_server, "/generate", payload(
        demo_files, params={"max_tokens": 4, "temperature": 0, "logprobs": 1})))
    tokens = [e for e in events if e["type"] == "token"]
    done = events[-1]
    assert done["finish_reason"] == "length" and done["stats"]["completion_tokens"] == 4
    assert sum(len(e["logprobs"]) for e in tokens) == 4
    assert "".join(e["text"] for e in tokens) == "".join(
        lp["token"] for e in tokens for lp in e["logprobs"])
    assert [e["text"] for e in tokens] == [e["text"] for e in plain if e["type"] == "token"]
    assert done["stats"]["context_used"] == len(vocab.tokenize(PROMPT.encode(), add_bos=True)) + 4


def test_a_prompt_longer_than_the_context_is_refused_before_the_stream(runtime_server, demo_files):
    response = post(runtime_server, "/generate", payload(demo_files, prompt=None,
                                                         prompt_tokens=[1] * 600))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_a_running_id_is_taken_and_cancel_stops_it(runtime_server, demo_files):
    body = payload(demo_files, request_id="server-test-long", prompt=None,
                   messages=[{"role": "user", "content": "Write a long story."}],
                   params={"max_tokens": 300, "temperature": 0})
    events, started = [], threading.Event()

    def stream() -> None:
        with httpx.stream("POST", f"{runtime_server.url}/generate", json=body, timeout=60,
                          headers={"X-Runtime-Token": RUNTIME_TOKEN}) as response:
            for line in response.iter_lines():
                events.append(json.loads(line))
                if events[-1]["type"] == "token":
                    started.set()

    reader = threading.Thread(target=stream)
    reader.start()
    assert started.wait(60)
    again = post(runtime_server, "/generate", body)
    assert again.status_code == 409 and again.json()["error"]["param"] == "request_id"
    assert post(runtime_server, "/cancel/server-test-long").json() == {"cancelled": True}
    reader.join(10)
    assert not reader.is_alive()
    assert events[-1]["finish_reason"] == "cancelled"
    assert events[-1]["stats"]["completion_tokens"] < 300


def test_embed_gguf_vectors_and_refuses_other_formats(runtime_server, demo_files, tiny_chat_hf,
                                                      vocab):
    body = {"variant_id": "server-test-demo", "format": "gguf", "files": demo_files, "n_ctx": 512,
            "config": {}, "input": ["Hello", "The capital of France"]}
    response = post(runtime_server, "/embed", body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert len(result["data"]) == 2
    width = int(vocab.metadata["llama.embedding_length"])  # 576 (vocab_only leaves n_embd() 0)
    for vector in result["data"]:
        assert len(vector) == width and math.isclose(math.hypot(*vector), 1.0, rel_tol=1e-3)
    assert result["prompt_tokens"] == sum(
        len(vocab.tokenize(text.encode(), add_bos=True)) for text in body["input"])

    folder = artifact_dir() / "tiny-hf"
    shutil.copytree(tiny_chat_hf, folder, dirs_exist_ok=True)
    response = post(runtime_server, "/embed", {
        **body, "variant_id": "server-test-tiny", "format": "hf", "n_ctx": 256,
        "files": [str(p) for p in sorted(folder.iterdir())]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("model_cannot_embed", "model")


def test_the_done_stats_say_a_job_was_running_on_the_node(runtime_server, demo_files):
    """The runner's marker (quantdash.node) of a live process on this machine reaches the server,
    which reports it with the threads it generated with (what the playground shows)."""
    import subprocess
    import sys

    from quantdash import node

    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with node.job_marked(987654, job.pid):
            done = lines(post(runtime_server, "/generate", payload(
                demo_files, params={"max_tokens": 2, "temperature": 0})))[-1]
    finally:
        job.kill()
    assert done["stats"]["node_jobs"] >= 1 and done["stats"]["threads"] == 1
