"""Test-session environment, set before pytest-django reads the settings.

Loaded as an early plugin (`-p tests.support.testenv` in pyproject's addopts): the database is a
SQLite *file* (so worker and web processes started by the tests see the same data as the test),
artifacts go to a temporary folder, and Redis gets a free loopback port.
"""

import os
import tempfile
from pathlib import Path

from tests.support.processes import free_port

SESSION_DIR = Path(tempfile.mkdtemp(prefix="quantdash-test-"))
REDIS_PORT = free_port()

os.environ.setdefault("DATABASE_URL", f"sqlite:///{SESSION_DIR}/db.sqlite3")
os.environ["REDIS_URL"] = f"redis://127.0.0.1:{REDIS_PORT}/0"
os.environ["ARTIFACT_ROOT"] = str(SESSION_DIR / "artifacts")
os.environ["WORKER_HEARTBEAT_SECONDS"] = "1"
os.environ["WORKER_STALE_SECONDS"] = "5"
os.environ["JOB_HEARTBEAT_SECONDS"] = "1"
os.environ["JOB_LOST_SECONDS"] = "4"
# Test workers don't measure their node at start (it would load the shared 2-core box under other
# tests); tests/jobs/test_node_bench.py starts one with WORKER_NODE_BENCH=1.
os.environ.setdefault("WORKER_NODE_BENCH", "0")
os.environ["DEBUG"] = "1"
# Playwright's sync API runs an event loop in the test thread; Django's ORM calls from that
# thread are still synchronous and safe.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


def pytest_unconfigure(config) -> None:
    """The session's model files (several GB per full run) are deleted at the end; its logs stay
    in SESSION_DIR for diagnosing a failure. QUANTDASH_KEEP_TEST_ARTIFACTS=1 keeps everything."""
    import shutil

    if os.environ.get("QUANTDASH_KEEP_TEST_ARTIFACTS") != "1":
        shutil.rmtree(SESSION_DIR / "artifacts", ignore_errors=True)
