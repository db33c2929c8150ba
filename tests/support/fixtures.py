"""Fixtures shared by every test module.

Who may see what: `alice` is in team "red", `bob` in team "blue", `carol` in both. Red data must be
invisible (404) to bob and visible to alice and carol.
"""

import functools
from pathlib import Path

import pytest

from tests.support import processes

PASSWORD = "correct-horse-battery"
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@functools.cache
def password_hash() -> str:
    """PASSWORD hashed once per session with the default hasher (PBKDF2, ~0.25 s on 2 cores), so
    the servers the tests start accept it too."""
    from django.contrib.auth.hashers import make_password

    return make_password(PASSWORD)


@pytest.fixture
def teams(db):
    from django.contrib.auth import get_user_model

    from accounts.models import Team

    User = get_user_model()
    red, blue = Team.objects.create(name="red"), Team.objects.create(name="blue")
    alice, bob, carol = (User.objects.create(username=name, password=password_hash())
                         for name in ("alice", "bob", "carol"))
    red.members.add(alice, carol)
    blue.members.add(bob, carol)
    return {"red": red, "blue": blue, "alice": alice, "bob": bob, "carol": carol}


@pytest.fixture
def demo_variant(teams):
    """The demo GGUF (SmolLM2-135M-Instruct Q4_1) registered in team red."""
    from catalog.imports.demo import demo_model_import

    return demo_model_import(team=teams["red"]).variants.get()


@pytest.fixture(scope="session")
def session_dir() -> Path:
    from tests.support.testenv import SESSION_DIR

    return SESSION_DIR


@pytest.fixture(scope="session")
def redis_server(session_dir):
    from tests.support.testenv import REDIS_PORT

    server = processes.RedisServer(REDIS_PORT, session_dir / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_running(redis_server):
    """Redis up for this test (a test that stopped it gets it back here)."""
    if not redis_server.running:
        redis_server.start()
    return redis_server


def start_worker_and_wait(django_db_blocker, session_dir, hostname: str, queues: str = "cpu,gpu",
                          **env: str):
    """A real Celery worker process sharing the test database, once its first heartbeat is in
    (`env`: extra environment variables, e.g. shrunken time limits)."""
    [process] = start_workers_and_wait(django_db_blocker, session_dir, [(hostname, env)], queues)
    return process


def start_workers_and_wait(django_db_blocker, session_dir, specs: list[tuple[str, dict]],
                           queues: str = "cpu,gpu") -> list:
    """Several workers ([(hostname, env)]) started at once, each once its first heartbeat is in:
    their ~3 s start-ups overlap instead of adding up."""
    from django.utils import timezone

    started = timezone.now()
    launched = []
    for hostname, env in specs:
        log = session_dir / f"worker-{hostname.split('@')[0]}.log"
        launched.append((hostname, log, processes.start_worker(hostname=hostname, queues=queues,
                                                               log=log, **env)))
    with django_db_blocker.unblock():
        from jobs.models import Worker

        for hostname, log, process in launched:
            processes.wait_until(
                lambda: process.poll() is not None or Worker.objects.filter(
                    hostname__startswith=hostname.split("%")[0], started_at__gte=started).exists(),
                60, what=f"worker {hostname}'s first heartbeat",
            )
            if process.poll() is not None:
                raise RuntimeError(f"celery worker exited: {log.read_text()[-3000:]}")
    return [process for _, _, process in launched]


def stop_worker_and_forget(django_db_blocker, process, hostname: str) -> None:
    """Stops a worker and deletes its heartbeat row: a beat written after the last test's flush
    would otherwise leave a worker that looks alive to the next module's routing."""
    stop_workers_and_forget(django_db_blocker, [(process, hostname)])


def stop_workers_and_forget(django_db_blocker, workers: list[tuple]) -> None:
    """stop_worker_and_forget for several [(process, hostname)]: all are asked to stop first, so
    their ~3 s warm shutdowns overlap."""
    processes.stop_all([process for process, _ in workers])
    with django_db_blocker.unblock():
        from jobs.models import Worker

        for _, hostname in workers:
            Worker.objects.filter(hostname__startswith=hostname.split("@")[0] + "@").delete()


class SharedWorker:
    """The `celery_worker` process, kept between consecutive modules that both use it: a start
    and a stop cost ~3 s each on 2 cores. It is stopped before any module that doesn't ask for it
    runs (pytest_runtest_teardown below), so a module that starts, kills or restarts its own
    workers still owns every worker that runs during it, as with one worker per module."""

    HOSTNAME = "test-worker@%h"

    def __init__(self):
        self.process = None
        self.blocker = None

    def start(self, django_db_blocker, session_dir):
        if self.process is None or self.process.poll() is not None:
            self.blocker = django_db_blocker
            self.process = start_worker_and_wait(django_db_blocker, session_dir, self.HOSTNAME)
            return self.process
        # Kept from the last module, whose last transactional test flushed its heartbeat row: a
        # module starts, as with a fresh worker, once the next beat has declared it again.
        with django_db_blocker.unblock():
            from jobs.models import Worker

            processes.wait_until(
                lambda: self.process.poll() is not None
                or Worker.objects.filter(hostname__startswith="test-worker@").exists(),
                60, what="the test worker's heartbeat row")
        if self.process.poll() is not None:
            raise RuntimeError(f"celery worker exited: see {session_dir}/worker-test-worker.log")
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            stop_worker_and_forget(self.blocker, self.process, self.HOSTNAME)
            self.process = None


shared_worker = SharedWorker()


@pytest.fixture(scope="session")
def _shared_worker_stopped_at_exit(django_db_setup, redis_server):
    yield shared_worker
    shared_worker.stop()


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, django_db_blocker, redis_server, session_dir,
                  _shared_worker_stopped_at_exit):
    """The test worker, running for this module (and the next ones while they use it too)."""
    return shared_worker.start(django_db_blocker, session_dir)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem) -> None:
    """Stops the shared worker before the first test of a module that doesn't use it, after this
    test's own teardown (as the module-scoped fixture's finalizer ran). Module boundaries only:
    within a module it runs on, as the module-scoped fixture kept it."""
    if shared_worker.process is None:
        return
    if nextitem is None or (getattr(nextitem, "module", None) is not getattr(item, "module", None)
                            and "celery_worker" not in nextitem.fixturenames):
        shared_worker.stop()


@pytest.fixture(scope="session")
def web_server(django_db_setup, redis_server, session_dir):
    """uvicorn serving the ASGI app on a free port, on the test database."""
    port = processes.free_port()
    process = processes.start_web(port=port, log=session_dir / "web.log")
    yield f"http://127.0.0.1:{port}"
    processes.stop(process)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def browser_login(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


# --- runtime (model serving) ------------------------------------------------------------------
RUNTIME_TOKEN = "test-runtime-token"
# Small context and one generation per variant with one waiting: cheap on 2 cores, and easy to
# overload on purpose. The dashboard computes n_ctx, so the web server gets the same values.
# One llama.cpp thread: on a shared 2-core machine two threads spin-wait on each other and run
# about 4x slower than one.
RUNTIME_ENV = {"RUNTIME_TOKEN": RUNTIME_TOKEN, "RUNTIME_N_CTX": "512", "RUNTIME_QUEUE_TIMEOUT": "30",
               "RUNTIME_RETRY_AFTER": "1"}


class RuntimeServer:
    """`manage.py runtime_supervisor` (which runs and restarts `runtime_server`) on a free port."""

    def __init__(self, port: int, log: Path, queue: int = 1, **env: str):
        import subprocess
        import sys

        self.port, self.log, self.url = port, log, f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, str(processes.ROOT / "manage.py"), "runtime_supervisor", "--",
             "--port", str(port), "--max-concurrent", "1", "--queue", str(queue), "--threads", "1"],
            cwd=processes.ROOT, env=processes.child_env(**RUNTIME_ENV, **env), stdout=open(log, "ab"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        processes.wait_until(lambda: self.status() or self.process.poll() is not None, 60,
                             what="the runtime server")
        if self.process.poll() is not None:
            raise RuntimeError(f"runtime supervisor exited: {log.read_text()[-3000:]}")

    def status(self) -> dict | None:
        import json
        import urllib.request

        request = urllib.request.Request(f"{self.url}/status", headers={"X-Runtime-Token": RUNTIME_TOKEN})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            return None


@pytest.fixture(scope="session")
def runtime_server(django_db_setup, session_dir):
    server = RuntimeServer(processes.free_port(), session_dir / "runtime.log")
    yield server
    processes.stop(server.process)


@pytest.fixture(scope="session")
def runtime_web_server(django_db_setup, redis_server, runtime_server, session_dir):
    """uvicorn like `web_server`, configured to talk to the test session's runtime server."""
    port = processes.free_port()
    process = processes.start_web(port=port, log=session_dir / "web-runtime.log",
                                  RUNTIME_URL=runtime_server.url, **RUNTIME_ENV)
    yield f"http://127.0.0.1:{port}"
    processes.stop(process)
