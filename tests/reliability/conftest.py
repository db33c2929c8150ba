"""Reliability scenarios: each proves one failure is handled by the production code paths, on one
machine with Redis on loopback, and records one figure (docs/benchmarks.md, "Reliability
scenarios").

`record()` prints the figure and appends it to SESSION_DIR/reliability.txt, so it survives pytest's
output capture; `python -m tests.reliability.table FILE` turns that file into the table in
docs/benchmarks.md.
"""

import os
import signal
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from tests.support import processes
from tests.support.fixtures import (start_worker_and_wait, start_workers_and_wait,
                                    stop_worker_and_forget, stop_workers_and_forget)
from tests.support.testenv import SESSION_DIR

REPORT = SESSION_DIR / "reliability.txt"


def record(number: int, name: str, figure: str) -> None:
    line = f"RELIABILITY {number} {name}: {figure}"
    print(line)
    with open(REPORT, "a") as f:
        f.write(line + "\n")


def pytest_terminal_summary(terminalreporter):
    if REPORT.exists():
        terminalreporter.section("reliability figures")
        terminalreporter.write(REPORT.read_text())
        terminalreporter.write_line(f"(written to {REPORT})")


def temp_entries() -> list[str]:
    """What is left under ARTIFACT_ROOT/tmp and ARTIFACT_ROOT/uploads (work folders, staging)."""
    root = Path(settings.ARTIFACT_ROOT)
    return sorted(str(p.relative_to(root)) for d in ("tmp", "uploads") if (root / d).exists()
                  for p in (root / d).iterdir())


class WorkerProcess:
    """A real Celery worker (concurrency 1) that a test may kill -9 and start again."""

    def __init__(self, django_db_blocker, hostname: str, **env: str):
        self.blocker, self.hostname, self.env = django_db_blocker, hostname, env
        self.process: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        self.process = start_worker_and_wait(self.blocker, SESSION_DIR, self.hostname, **self.env)
        return self

    def kill(self) -> None:
        """SIGKILL to the worker's whole process group (main process and pool child)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            stop_worker_and_forget(self.blocker, self.process, self.hostname)

    @property
    def log(self) -> Path:
        return SESSION_DIR / f"worker-{self.hostname.split('@')[0]}.log"

    @staticmethod
    def start_all(workers: list["WorkerProcess"]) -> None:
        """Starts several at once (their start-ups overlap), each once its first heartbeat is in."""
        started = start_workers_and_wait(workers[0].blocker, SESSION_DIR,
                                         [(w.hostname, w.env) for w in workers])
        for worker, process in zip(workers, started):
            worker.process = process

    @staticmethod
    def stop_all(workers: list["WorkerProcess"]) -> None:
        """stop() for several at once: their warm shutdowns overlap."""
        stop_workers_and_forget(workers[0].blocker, [(w.process, w.hostname) for w in workers
                                                     if w.process is not None])


@pytest.fixture(scope="session")
def web(django_db_setup, redis_server):
    """uvicorn on the test database with a 128 MiB upload cap (scenarios 7-10, 12, 13, 15)."""
    process = processes.start_web(port=(port := processes.free_port()),
                                  log=SESSION_DIR / "web-reliability.log",
                                  UPLOAD_MAX_BYTES=str(UPLOAD_CAP))
    url = f"http://127.0.0.1:{port}"
    url_process[url] = process
    yield url
    processes.stop(process)


UPLOAD_CAP = 128 * 1024**2
url_process: dict[str, subprocess.Popen] = {}
