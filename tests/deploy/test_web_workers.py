"""Several web worker processes: `python -m quantdash.web` (make run, the Docker web image) starts
WEB_WORKERS of them and each serves requests; state the processes must share (the login failure
counters) is shared, so a limit holds however the requests are spread over them."""

import os
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest
import redis

from tests.reliability.web import CSRF, post_body
from tests.support import processes
from tests.support.fixtures import PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=20) as response:
        return response.status


def _spawned_workers(supervisor: psutil.Process) -> list[psutil.Process] | None:
    workers = [c for c in supervisor.children() if "spawn_main" in " ".join(c.cmdline())]
    return workers if len(workers) == 2 else None


def test_the_web_tier_runs_web_workers_processes_and_each_answers(redis_running, session_dir):
    port = processes.free_port()
    log = session_dir / "web-workers.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "quantdash.web", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=processes.child_env(WEB_WORKERS="2"), stdout=open(log, "ab"),
        stderr=subprocess.STDOUT, start_new_session=True)
    try:
        processes.wait_until(lambda: processes.port_open(port) or process.poll() is not None, 60,
                             what="python -m quantdash.web")
        assert process.poll() is None, log.read_text()[-3000:]
        supervisor = psutil.Process(process.pid)
        # quantdash.web became uvicorn (exec: signals reach it), with the worker count
        assert supervisor.cmdline()[1:6] == ["-m", "uvicorn", "quantdash.asgi:application",
                                             "--workers", "2"]
        workers = processes.wait_until(lambda: _spawned_workers(supervisor), 60,
                                       what="two uvicorn workers")
        url = f"http://127.0.0.1:{port}/login/"
        processes.wait_until(lambda: _get(url) == 200, 60, what="the login page")
        # With one worker paused, the other takes every connection: each answers on its own.
        for paused in workers:
            os.kill(paused.pid, signal.SIGSTOP)
            try:
                assert _get(url) == 200
            finally:
                os.kill(paused.pid, signal.SIGCONT)
        assert {w.pid for w in workers} == {w.pid for w in supervisor.children()
                                            if "spawn_main" in " ".join(w.cmdline())}
    finally:
        processes.stop(process)
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers), \
        "stopping the web tier stops its workers"


def test_failed_logins_are_counted_across_web_processes(teams, redis_running, session_dir):
    """Three failed logins lock alice out although no one process saw three of them."""
    limit = "3"
    ports = [processes.free_port(), processes.free_port()]
    webs = [processes.start_web(port=port, log=session_dir / f"web-login-{i}.log",
                                LOGIN_FAILURE_LIMIT=limit) for i, port in enumerate(ports)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]

    def login(url: str, password: str) -> int:
        body = urllib.parse.urlencode({"username": "alice", "password": password}).encode()
        status, _h, _c, _t = post_body(url, "/login/", body, {
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={CSRF}",
            "X-CSRFToken": CSRF, "Referer": url + "/login/"})
        return status

    try:
        statuses = [login(urls[0], "wrong"), login(urls[1], "wrong"), login(urls[0], "wrong")]
        assert statuses == [200, 200, 429]
        assert login(urls[1], PASSWORD) == 429  # the other process knows of the lockout too
    finally:
        for web in webs:
            processes.stop(web)
        client = redis.Redis.from_url(redis_running.url)
        for key in client.scan_iter("quantdash:*login-failures:*"):
            client.delete(key)
