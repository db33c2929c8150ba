"""The web tier in one process: the uvicorn command line quantdash.web builds, the view slots in
quantdash.asgi, and /healthz answered before Django (same answer, never behind page work)."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.aio import run_async

from quantdash.web import uvicorn_argv

ROOT = Path(__file__).resolve().parents[2]


def _scope(path: str, *headers: tuple[bytes, bytes], method: str = "GET") -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": [(b"host", b"127.0.0.1:8000"), *headers],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}


class Exchange:
    """One request to an ASGI app: an empty body, then no disconnect; what the app sent."""

    def __init__(self, app, scope: dict):
        self.app, self.scope, self.sent, self._asked = app, scope, [], False
        self.done = asyncio.Event()

    async def receive(self):
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays until the app is done

    async def send(self, message):
        self.sent.append(message)

    async def run(self):
        try:
            await self.app(self.scope, self.receive, self.send)
        finally:
            self.done.set()

    @property
    def status(self) -> int:
        return self.sent[0]["status"]

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode().lower(): v.decode() for k, v in self.sent[0]["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


def test_the_command_line_runs_uvicorn_with_the_worker_count_and_the_callers_options():
    assert uvicorn_argv(["--port", "8000"], 3) == [sys.executable, "-m", "uvicorn",
                                                   "quantdash.asgi:application", "--workers", "3",
                                                   "--port", "8000"]
    with pytest.raises(ValueError, match="WEB_WORKERS"):
        uvicorn_argv([], 0)


@pytest.mark.parametrize("value, expected", [(None, len(os.sched_getaffinity(0))), ("3", 3)])
def test_web_workers_defaults_to_the_cpus_and_follows_the_variable(value, expected):
    env = {k: v for k, v in os.environ.items() if k != "WEB_WORKERS"}
    if value is not None:
        env["WEB_WORKERS"] = value
    out = subprocess.run([sys.executable, "-c", "import quantdash.settings as s; print(s.WEB_WORKERS)"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    assert int(out) == expected


def test_make_run_starts_the_web_tier_through_quantdash_web():
    script = (ROOT / "scripts" / "run.sh").read_text()
    assert "-m quantdash.web --host 127.0.0.1" in script
    assert "uvicorn quantdash.asgi" not in script  # one worker, the old way


class Blocking:
    """A stand-in for Django: each request's view waits until the test lets it go."""

    def __init__(self):
        self.running: list[str] = []
        self.most_at_once = 0
        self.go = asyncio.Event()

    async def __call__(self, scope, receive, send):
        await receive()  # Django reads the body before the view
        self.running.append(scope["path"])
        self.most_at_once = max(self.most_at_once, len(self.running))
        await self.go.wait()
        self.running.remove(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"page"})


async def _settle():
    for _ in range(20):
        await asyncio.sleep(0)


def test_no_more_sync_views_run_at_once_than_the_slots_and_async_views_take_none():
    from quantdash.asgi import ViewSlots

    async def scenario():
        pages = Blocking()
        app = ViewSlots(pages, 2)
        exchanges = [Exchange(app, _scope(f"/catalog/?n={i}")) for i in range(4)]
        exchanges[-1] = Exchange(app, _scope("/v1/models"))  # an async view
        tasks = [asyncio.create_task(e.run()) for e in exchanges]
        await _settle()
        assert pages.most_at_once == 3  # two pages in their slots, and the async view
        assert "/v1/models" in pages.running
        pages.go.set()
        await asyncio.gather(*tasks)
        assert [e.status for e in exchanges] == [200] * 4
        assert pages.most_at_once == 3

    run_async(scenario())


def test_a_slot_is_given_back_when_the_response_starts():
    """A long response body (a file download, a stream) holds no slot once its headers are out."""
    from quantdash.asgi import ViewSlots

    async def scenario():
        body_sent = asyncio.Event()

        async def download(scope, receive, send):
            await receive()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            if scope["path"] == "/catalog/":  # the long one
                await body_sent.wait()
            await send({"type": "http.response.body", "body": b"file"})

        app = ViewSlots(download, 1)
        first, second = Exchange(app, _scope("/catalog/")), Exchange(app, _scope("/jobs/"))
        first_task = asyncio.create_task(first.run())
        await _settle()
        await asyncio.wait_for(second.run(), 5)  # while the first is still sending its body
        assert not first.done.is_set()
        body_sent.set()
        await first_task

    run_async(scenario())


@pytest.mark.django_db(transaction=True)
def test_healthz_is_answered_while_every_slot_is_taken_by_page_work():
    from quantdash.asgi import BodyLimit, HealthFirst, ViewSlots

    async def scenario():
        pages = Blocking()
        app = HealthFirst(BodyLimit(ViewSlots(pages, 2)))
        busy = [asyncio.create_task(Exchange(app, _scope(f"/planner/?n={i}")).run()) for i in range(5)]
        await _settle()
        assert len(pages.running) == 2  # both slots held, three pages waiting
        health = Exchange(app, _scope("/healthz"))
        await asyncio.wait_for(health.run(), 30)
        assert health.status in (200, 503) and "checks" in json.loads(health.body)
        assert len(pages.running) == 2 and not any(task.done() for task in busy)
        pages.go.set()
        await asyncio.gather(*busy)

    run_async(scenario())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("proxy", [(), ((b"x-forwarded-proto", b"https"),)], ids=["http", "https"])
def test_healthz_before_django_answers_as_the_django_view_does(proxy, settings):
    from quantdash.asgi import application, django_application

    settings.HEALTHZ_MAX_AGE_SECONDS = 0   # a check of its own, not one an earlier test made

    async def both():
        ours, django = Exchange(application, _scope("/healthz", *proxy)), \
            Exchange(django_application, _scope("/healthz", *proxy))
        await ours.run()
        await django.run()
        return ours, django

    ours, django = run_async(both())
    assert ours.status == django.status
    assert json.loads(ours.body) == json.loads(django.body)
    skip = {"expires", "vary"}  # the clock's second; Vary: Cookie, for a response never cached
    assert {k: v for k, v in ours.headers.items() if k not in skip} == \
        {k: v for k, v in django.headers.items() if k not in skip}
    assert "expires" in ours.headers


@pytest.mark.parametrize("scope, answered", [
    (_scope("/healthz"), True),
    (_scope("/healthz", method="HEAD"), False),  # Django's 405, as before
    ({**_scope("/healthz"), "headers": [(b"host", b"evil.example")]}, False),  # Django's 400
    (_scope("/healthz/"), False),
])
def test_only_a_get_for_an_allowed_host_is_answered_before_django(scope, answered):
    from quantdash.health import answers_asgi

    assert answers_asgi(scope) is answered


@pytest.mark.django_db(transaction=True)
def test_healthz_answers_from_a_recent_check_and_refreshes_it(redis_running, settings):
    """Within the max age the answer is the latest check's, even after what it checks changed;
    past half of it a fresh check starts in the background and the next answer is that one; past
    the max age a request waits for a fresh check."""
    from django.utils import timezone

    from jobs.models import Worker
    from quantdash import health
    from quantdash.asgi import application

    settings.HEALTHZ_MAX_AGE_SECONDS = 1.0

    async def status() -> int:
        exchange = Exchange(application, _scope("/healthz"))
        await exchange.run()
        return exchange.status

    async def scenario():
        await asyncio.sleep(1.1)                   # whatever an earlier test left is too old now
        assert await status() == 503               # no worker: a fresh check, awaited
        await asyncio.to_thread(Worker.objects.create, hostname="w@health", last_seen=timezone.now())
        assert await status() == 503               # the same check's answer, 0 s old
        await asyncio.sleep(0.6)
        assert await status() == 503               # over half the max age: answered, refresh started
        assert health._latest.running is not None
        await health._latest.running               # (however long the check takes on a busy machine)
        assert await status() == 200               # the refreshed check
        await asyncio.to_thread(Worker.objects.all().delete)
        await asyncio.sleep(1.1)
        assert await status() == 503               # past the max age: waited for a fresh check

    run_async(scenario())


def test_the_web_process_freezes_its_start_up_objects_and_torchs_import():
    # A full garbage collection walks every tracked object holding the GIL; with torch imported
    # that was 0.22-0.24 s, and the load bench's /healthz p99 was that pause. Frozen objects are
    # not walked: what is left to walk right after start-up and after the import is close to none.
    code = ("import gc, quantdash.asgi\n"
            "print(len(gc.get_objects()), gc.get_freeze_count())\n"
            "from planner import model_definition\n"
            "model_definition.load_libraries()\n"
            "print(len(gc.get_objects()), gc.get_freeze_count())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "DJANGO_SETTINGS_MODULE": "quantdash.settings"}, check=True).stdout
    (walked_at_start, frozen_at_start), (walked_after_torch, frozen_after_torch) = (
        map(int, line.split()) for line in out.splitlines()[-2:])
    assert frozen_at_start > 50_000 and walked_at_start < frozen_at_start / 100
    assert frozen_after_torch > frozen_at_start + 100_000 and walked_after_torch < frozen_after_torch / 100
