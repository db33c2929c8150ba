"""Fixtures shared by every test module.

Who may see what: `alice` is in team "red", `bob` in team "blue", `carol` in both. Red data must be
invisible (404) to bob and visible to alice and carol.
"""

from pathlib import Path

import pytest

from tests.support import processes

PASSWORD = "correct-horse-battery"
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture
def teams(db):
    from django.contrib.auth import get_user_model

    from accounts.models import Team

    User = get_user_model()
    red, blue = Team.objects.create(name="red"), Team.objects.create(name="blue")
    alice = User.objects.create_user("alice", password=PASSWORD)
    bob = User.objects.create_user("bob", password=PASSWORD)
    carol = User.objects.create_user("carol", password=PASSWORD)
    red.members.add(alice, carol)
    blue.members.add(bob, carol)
    return {"red": red, "blue": blue, "alice": alice, "bob": bob, "carol": carol}


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


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, redis_server, session_dir):
    """One real Celery worker process on the cpu and gpu queues, sharing the test database."""
    process = processes.start_worker(
        hostname="test-worker@%h", queues="cpu,gpu", log=session_dir / "worker.log"
    )
    with django_db_blocker.unblock():
        from jobs.models import Worker

        processes.wait_until(
            lambda: process.poll() is not None or any(w.is_alive for w in Worker.objects.all()),
            60, what="the celery worker's first heartbeat",
        )
    if process.poll() is not None:
        raise RuntimeError(f"celery worker exited: {(session_dir / 'worker.log').read_text()[-3000:]}")
    yield process
    processes.stop(process)


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
