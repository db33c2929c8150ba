"""Keeps the runtime server running: starts it, and starts it again when it exits.

A crash (a segfault in a native library, an out-of-memory kill) ends only the runtime process; the
dashboard reports "runtime unavailable" meanwhile. Restarts back off from 1 s to 30 s when the
server keeps dying within 10 s of starting, and reset after a healthy run.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("runtime.supervisor")
ROOT = Path(__file__).resolve().parent.parent


def supervise(server_args: list[str], *, max_backoff: float = 30.0) -> int:
    stopping = False
    child: subprocess.Popen | None = None

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True
        if child and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    backoff = 1.0
    while not stopping:
        started = time.monotonic()
        child = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "runtime_server", *server_args])
        log.info("runtime server started (pid %s)", child.pid)
        code = child.wait()
        if stopping:
            break
        ran = time.monotonic() - started
        backoff = 1.0 if ran > 10 else min(backoff * 2, max_backoff)
        log.warning("runtime server exited with %s after %.0f s; restarting in %.0f s", code, ran, backoff)
        deadline = time.monotonic() + backoff
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.1)
    return 0
