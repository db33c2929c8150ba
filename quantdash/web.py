"""Starts the web tier: uvicorn serving quantdash.asgi with WEB_WORKERS processes.

    python -m quantdash.web [uvicorn options, e.g. --host 0.0.0.0 --port 8000 --proxy-headers]

`make run` (scripts/run.sh) and the Docker web image both start the dashboard this way, so the
worker count has one default: the CPUs this process may run on. One process uses one core at a
time (the GIL), and every page is Python work, so a single process leaves the other cores idle.
Nothing the workers need to agree on is kept in a process: sessions are in the database, the
login failure counters in Redis (CACHES), and the /v1 concurrency limits in the runtime server.
"""

from __future__ import annotations

import os
import sys

from django.conf import settings

APPLICATION = "quantdash.asgi:application"


def uvicorn_argv(args: list[str], workers: int) -> list[str]:
    """The uvicorn command line: the app, the worker count, then the caller's options."""
    if workers < 1:
        raise ValueError(f"WEB_WORKERS must be at least 1, got {workers}")
    return [sys.executable, "-m", "uvicorn", APPLICATION, "--workers", str(workers), *args]


def main() -> None:
    # Only settings are read here (no app is loaded): the workers import Django themselves.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantdash.settings")
    argv = uvicorn_argv(sys.argv[1:], settings.WEB_WORKERS)
    # exec: uvicorn becomes this process, so signals from run.sh or Docker reach it directly.
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
