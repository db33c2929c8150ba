"""Starting and stopping the real processes tests talk to."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# WikiText-2 lives beside the checkout (../shared/data), never inside it.
WIKITEXT = ROOT.parent / "shared" / "data" / "wikitext-2"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Polls predicate() until it returns something truthy; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """redis-server on a loopback port, append-only, noeviction — as `make run` starts it."""

    def __init__(self, port: int, directory: Path):
        self.port = port
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", str(self.directory), "--appendonly", "yes",
             "--maxmemory-policy", "noeviction", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), 10, what="redis-server to listen")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def database_url(db: dict | None = None) -> str:
    """DATABASE_URL for the test database (`db`: a DATABASES entry, default the test session's),
    once pytest-django has created it: settings then hold the test name (SQLite `<file>.test`,
    PostgreSQL `test_<NAME>`)."""
    from urllib.parse import quote, urlencode

    from django.conf import settings

    db = db or settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"], safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = f"[{db['HOST']}]" if ":" in db["HOST"] else db["HOST"]  # "" = the local socket
    netloc = f"{auth}@{host}" if auth else host
    if db["PORT"]:
        netloc += f":{db['PORT']}"
    query = f"?{urlencode(db['OPTIONS'])}" if db.get("OPTIONS") else ""
    return f"postgres://{netloc}/{quote(db['NAME'], safe='')}{query}"


def child_env(**extra: str) -> dict:
    """The environment for a worker, web or runtime process: the test database instead of the
    configured one (pytest-django created it: SQLite `<db>.test`, PostgreSQL `test_<name>`)."""
    env = dict(os.environ)
    # The test process allows sync ORM calls from Playwright's event loop; the servers it starts
    # run with Django's async-safety guard on, as in production.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env["DATABASE_URL"] = database_url()
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def start_worker(*, hostname: str, queues: str, log: Path, **env: str) -> subprocess.Popen:
    # --without-mingle: at start a worker waits 1 s for its neighbours' revoked-task lists and
    # logical clocks; quantdash revokes no task and orders nothing by Celery's clock (a job's
    # claim is a conditional UPDATE), and the suite starts ~30 workers.
    return subprocess.Popen(
        [str(VENV_BIN / "celery"), "-A", "quantdash", "worker", "-Q", queues,
         "--concurrency", "1", "--hostname", hostname, "--loglevel", "INFO", "--without-mingle"],
        cwd=ROOT, env=child_env(**env), stdout=open(log, "ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_web(*, port: int, log: Path, **env: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [str(VENV_BIN / "uvicorn"), "quantdash.asgi:application", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=ROOT, env=child_env(**env), stdout=open(log, "ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_until(lambda: port_open(port) or process.poll() is not None, 30, what="uvicorn")
    if process.poll() is not None:
        raise RuntimeError(f"uvicorn exited: see {log}")
    return process


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    stop_all([process], timeout)


def stop_all(processes: list[subprocess.Popen], timeout: float = 15) -> None:
    """SIGTERM to each, then waits for each (SIGKILL after `timeout`): the shutdowns overlap."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.terminate()
    for process in running:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def job_children(job_id: int | None = None) -> list[int]:
    """Pids of this test session's `python -m jobs.child` processes (of one job, when given):
    their spec path lies in this session's ARTIFACT_ROOT and names the job."""
    from django.conf import settings

    result = subprocess.run(["pgrep", "-f", "jobs.child"], capture_output=True, text=True)
    want = f"{settings.ARTIFACT_ROOT}/tmp/job-{'' if job_id is None else f'{job_id}-'}"
    mine = []
    for pid in (int(p) for p in result.stdout.split()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if want in cmdline:
            mine.append(pid)
    return mine
