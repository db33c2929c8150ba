"""Scenarios 9 and 13 against the real uvicorn server: malformed safetensors and GGUF headers get
a clear 4xx at once with flat memory and no crash; an upload over the cap gets 413 before its
body is read (quantdash.asgi.BodyLimit), and /healthz stays fast while a slow upload trickles in."""

import json
import socket
import struct
import threading
import time
import urllib.request
from urllib.parse import urlsplit

import psutil
import pytest

from catalog.models import Model
from tests.reliability.conftest import UPLOAD_CAP, record, temp_entries, url_process
from tests.reliability.web import session_headers, upload

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def safetensors(header: dict | bytes, data_len: int, header_len: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if header_len is None else header_len) + raw + b"\0" * data_len


def gguf(*, n_tensors=0, kv: bytes = b"", n_kv=0) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + kv


def gguf_string(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


T = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
CONFIG = ("config.json", b'{"model_type": "llama"}')
BIG = 101 * 1024**2
CASES = {
    "safetensors header longer than the file": [CONFIG, ("model.safetensors", safetensors({"a": T}, 16, header_len=10**12))],
    "safetensors header over 100 MiB": [CONFIG, ("model.safetensors", struct.pack("<Q", BIG) + b" " * (BIG + 16))],
    "safetensors overlapping offsets": [CONFIG, ("model.safetensors", safetensors(
        {"a": T, "b": {**T, "data_offsets": [8, 24]}}, 24))],
    "safetensors offsets past the data": [CONFIG, ("model.safetensors", safetensors(
        {"a": {**T, "data_offsets": [0, 2**62]}}, 16))],
    "gguf 2^60 tensors": [("evil.gguf", gguf(n_tensors=2**60))],
    "gguf 2^60 metadata pairs": [("evil.gguf", gguf(n_kv=2**60))],
    "gguf 1 TiB key length": [("evil.gguf", gguf(n_kv=1, kv=struct.pack("<Q", 2**40)))],
    "gguf 2^62-byte string value": [("evil.gguf", gguf(n_kv=1, kv=gguf_string(b"general.name")
                                                      + struct.pack("<IQ", 8, 2**62)))],
    "gguf 2^60-item array": [("evil.gguf", gguf(n_kv=1, kv=gguf_string(b"tokenizer.ggml.tokens")
                                               + struct.pack("<IIQ", 9, 8, 2**60)))],
    "gguf alignment 3": [("evil.gguf", gguf(n_kv=1, kv=gguf_string(b"general.alignment")
                                           + struct.pack("<II", 4, 3)))],
    "gguf alignment 0": [("evil.gguf", gguf(n_kv=1, kv=gguf_string(b"general.alignment")
                                           + struct.pack("<II", 4, 0)))],
}


def test_9_malformed_headers_get_a_clear_4xx_fast_with_flat_memory(teams, web):
    server = psutil.Process(url_process[web].pid)
    upload(web, teams["alice"], teams["red"].pk, CASES["gguf alignment 3"])  # warm up the views
    before = server.memory_info().rss
    slowest, statuses = 0.0, {}
    for name, files in CASES.items():
        status, _headers, content, took = upload(web, teams["alice"], teams["red"].pk, files)
        statuses[name] = status
        assert status == 400, (name, status, content[-1500:])
        assert b'class="error' in content or b"errorlist" in content, name
        slowest = max(slowest, took)
        assert took < 1.0, f"{name}: {took:.2f} s"
    after = server.memory_info().rss
    assert server.is_running() and server.status() != psutil.STATUS_ZOMBIE
    assert after - before < 64 * 1024**2, f"RSS grew {(after - before) / 2**20:.0f} MiB"
    assert not Model.objects.exists() and temp_entries() == []
    record(9, "malformed headers", f"{len(CASES)}/{len(CASES)} answered 400 naming the problem, "
           f"slowest {slowest * 1000:.0f} ms after the body; uvicorn RSS {before / 2**20:.0f} -> "
           f"{after / 2**20:.0f} MiB; no crash")


def _raw(base_url: str) -> socket.socket:
    url = urlsplit(base_url)
    return socket.create_connection((url.hostname, url.port), timeout=30)


def _request_head(path: str, headers: dict) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _healthz_ms(base_url: str) -> float:
    started = time.monotonic()
    try:
        urllib.request.urlopen(base_url + "/healthz", timeout=10).read()
    except urllib.error.HTTPError:
        pass  # 503 without a worker is still an answer
    return (time.monotonic() - started) * 1000


def test_13_an_upload_over_the_cap_is_413_before_its_body_and_healthz_stays_fast(teams, web):
    auth = {**session_headers(teams["alice"]), "Content-Type": "multipart/form-data; boundary=x"}
    # Declared too large: the answer comes before a single body byte is sent.
    sock = _raw(web)
    started = time.monotonic()
    sock.sendall(_request_head("/jobs/import/", {**auth, "Content-Length": str(10 * 1024**3)}))
    answer = sock.recv(65536)
    declared_ms = (time.monotonic() - started) * 1000
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

    # Chunked, no length: stopped once the cap passes; count what the server accepted.
    sock = _raw(web)
    sock.sendall(_request_head("/jobs/import/", {**auth, "Transfer-Encoding": "chunked"}))
    chunk, sent, answer = b"\0" * 1024**2, 0, []
    reader = threading.Thread(target=lambda: answer.append(sock.recv(65536)), daemon=True)
    reader.start()
    try:
        while sent < 4 * UPLOAD_CAP and not answer:
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sent += len(chunk)
    except OSError:  # the server closed the connection after its 413
        pass
    reader.join(10)
    assert not reader.is_alive(), "no answer to the chunked upload within 10 s"
    sock.close()
    answer = answer[0] if answer else b""
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent <= UPLOAD_CAP + 16 * 1024**2, f"sent {sent >> 20} MiB before the 413"

    # Another route: a JSON API body over REQUEST_MAX_BYTES (16 MiB) is refused the same way.
    sock = _raw(web)
    sock.sendall(_request_head("/api/jobs/", {**auth, "Content-Type": "application/json",
                                              "Content-Length": str(1024**3)}))
    api_answer = sock.recv(65536)
    sock.close()
    assert api_answer.startswith(b"HTTP/1.1 413") and b"application/json" in api_answer

    # A slow upload (under the cap) trickling in while /healthz is timed.
    sock = _raw(web)
    sock.sendall(_request_head("/jobs/import/", {**auth, "Content-Length": str(50 * 1024**2)}))
    stop, latencies = threading.Event(), []

    def trickle():
        while not stop.is_set():
            sock.sendall(b"\0" * 4096)
            time.sleep(0.05)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    time.sleep(0.5)
    for _ in range(20):
        latencies.append(_healthz_ms(web))
        time.sleep(0.1)
    stop.set()
    thread.join(5)
    assert not thread.is_alive(), "the trickling upload was still blocked 5 s after being stopped"
    sock.close()
    assert max(latencies) < 500, latencies
    record(13, "upload over the cap", f"declared 10 GiB: 413 in {declared_ms:.0f} ms with 0 body "
           f"bytes sent; chunked: 413 after {sent / 2**20:.0f} MiB (cap {UPLOAD_CAP >> 20} MiB); "
           f"/healthz max {max(latencies):.0f} ms during a slow upload")
