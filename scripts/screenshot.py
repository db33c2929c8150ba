"""Takes the planner screenshot the README and the docs show (docs/img/planner.png).

    .venv/bin/python scripts/screenshot.py [--out docs/img/planner.png]

It starts its own dashboard on a spare loopback port with a throwaway SQLite database, artifact
folder and Redis (the login rate limit keeps its counters in Redis), creates an admin, logs in
with Debian's Chromium through Playwright, opens a plan and saves the viewport. Nothing it starts
outlives it, and nothing touches the checkout's own database.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PLAN = "/planner/?source=preset&preset=llama-3.1-8b&hardware=rtx-4090&context=8192"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PASSWORD = "screenshot-only-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not open port {port} within {timeout:.0f} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def shoot(base_url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{base_url}/login/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base_url}/")
        page.goto(base_url + PLAN)
        page.wait_for_selector('tr.plan-row[data-scheme="Q4_K_M"]')
        page.wait_for_load_state("networkidle")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "planner.png")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="quantdash-screenshot-"))
    redis_port, web_port = free_port(), free_port()
    env = {**os.environ, "DEBUG": "1", "DATABASE_URL": f"sqlite:///{work}/db.sqlite3",
           "ARTIFACT_ROOT": str(work / "artifacts"), "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "QUANTDASH_ADMIN_USER": "admin", "QUANTDASH_ADMIN_PASSWORD": PASSWORD,
           "WORKER_NODE_BENCH": "0", "PYTHONUNBUFFERED": "1"}
    log = open(work / "servers.log", "ab")
    started: list[subprocess.Popen] = []
    try:
        redis = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port),
                                  "--save", "", "--appendonly", "no", "--dir", str(work)],
                                 stdout=log, stderr=subprocess.STDOUT)
        started.append(redis)
        for command in (["migrate", "--noinput"], ["ensure_admin"]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True,
                           stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(redis_port, redis, "redis-server")
        web = subprocess.Popen([str(VENV_BIN / "uvicorn"), "quantdash.asgi:application", "--host", "127.0.0.1",
                                "--port", str(web_port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        started.append(web)
        wait_for_port(web_port, web, "uvicorn")
        shoot(f"http://127.0.0.1:{web_port}", args.out)
        print(f"{args.out}: {args.out.stat().st_size / 1024:.0f} KiB")
    finally:
        for process in reversed(started):
            stop(process)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
