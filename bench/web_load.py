"""Logged-in users against the web tier: 1 web worker vs WEB_WORKERS (default: one per CPU).

    .venv/bin/python bench/web_load.py [--users 50] [--seconds 60] [--think 1.0] [--workers N]

Starts its own stack on spare loopback ports, like `make run` but throwaway: Redis, a Celery
worker (so /healthz is 200), the runtime server with the demo model (SmolLM2-135M Q4_1) and the
web tier (`python -m quantdash.web`), on a fresh SQLite database and artifact folder. Creates
--users users in one team, each with an API token, and logs each in through the login form with
its own httpx client (its own session cookie). Each user then loops for --seconds: picks a request
from MIX, sends it, waits a random think time (uniform, mean --think s; 0 = none), again.

The same run does this twice, on the same database and processes, changing only the web tier:
first 1 worker, then --workers (default WEB_WORKERS' default). Printed per path: requests, p50
and p99 latency, errors; overall requests/s; the ratios. /v1's 429s are the runtime refusing
more generations than it serves at once (RUNTIME_MAX_CONCURRENT + RUNTIME_QUEUE): designed, so
counted apart, not as errors. A /v1 stream counts as 200 only when it reaches `data: [DONE]`.
Targets on a 2-core machine (docs/benchmarks.md): no errors, /healthz p99 < 100 ms, every page
p99 < 1 s, >= 40 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "web-load-bench-password-1"
RUNTIME_TOKEN = "web-load-bench-runtime-token"
PLANS = [  # the planner's everyday queries (bench/planner_partial_speed.py's cases)
    "preset=smollm2-135m&hardware=cpu-2core-24gb&context=2048",
    "preset=llama-3.1-8b&hardware=rtx-4090&context=8192",
    "preset=llama-3.1-70b&hardware=h100-80gb&devices=2&runtime=vllm&context=32768&batch=8",
    "preset=mixtral-8x7b&hardware=a100-80gb&runtime=transformers&mode=lora&context=4096",
]
# (name, weight): what a user's next request is. Pages dominate, as in a browser session.
MIX = [("planner page", 15), ("planner partial", 25), ("catalog", 15), ("jobs", 15),
       ("estimate api", 10), ("healthz", 10), ("v1 chat", 10)]
PAGES = ("planner page", "planner partial", "catalog", "jobs")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[:4]} exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port} after {timeout}s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass
class User:
    username: str
    api_key: str
    client: httpx.AsyncClient = field(init=False)
    cookies: httpx.Cookies | None = None  # the session, kept from one side to the next


@dataclass
class Sample:
    path: str
    seconds: float
    status: int | str


async def send(user: User, name: str, base: str, model: str, rng: random.Random) -> int | str:
    """One request of the mix; its status (or the exception's name)."""
    c = user.client
    plan = rng.choice(PLANS)
    if name == "planner page":
        return (await c.get(f"{base}/planner/?{plan}")).status_code
    if name == "planner partial":
        return (await c.get(f"{base}/planner/?{plan}", headers={"HX-Request": "true"})).status_code
    if name == "catalog":
        return (await c.get(f"{base}/catalog/")).status_code
    if name == "jobs":
        return (await c.get(f"{base}/jobs/")).status_code
    if name == "estimate api":
        return (await c.get(f"{base}/api/planner/estimate?{plan}")).status_code
    if name == "healthz":
        return (await c.get(f"{base}/healthz")).status_code
    body = {"model": model, "stream": True, "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "Say hello."}]}
    async with c.stream("POST", f"{base}/v1/chat/completions", json=body,
                        headers={"Authorization": f"Bearer {user.api_key}"}) as response:
        text = (await response.aread()).decode()
    if response.status_code == 200 and "data: [DONE]" not in text:
        return "stream cut short"
    return response.status_code


def is_error(sample: Sample) -> bool:
    if sample.path == "v1 chat" and sample.status == 429:
        return False
    return sample.status != 200


async def log_in(user: User, base: str) -> None:
    c = user.client
    await c.get(f"{base}/login/")
    response = await c.post(f"{base}/login/", data={
        "username": user.username, "password": PASSWORD,
        "csrfmiddlewaretoken": c.cookies["csrftoken"]})
    if response.status_code != 302:
        raise SystemExit(f"login of {user.username} answered {response.status_code}")


async def load(users: list[User], base: str, model: str, seconds: float, think: float,
               seed: int) -> tuple[list[Sample], float]:
    names, weights = [n for n, _ in MIX], [w for _, w in MIX]
    samples: list[Sample] = []
    deadline = time.monotonic() + seconds

    async def loop(user: User, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0, think or 0.5))  # don't start in lockstep
        while time.monotonic() < deadline:
            name = rng.choices(names, weights)[0]
            started = time.perf_counter()
            try:
                status = await send(user, name, base, model, rng)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            samples.append(Sample(name, time.perf_counter() - started, status))
            if think:
                await asyncio.sleep(rng.uniform(0, 2 * think))

    started = time.monotonic()
    await asyncio.gather(*(loop(u, random.Random(seed + i)) for i, u in enumerate(users)))
    return samples, time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summary(samples: list[Sample], elapsed: float) -> dict:
    rows = {}
    for name, _ in MIX:
        mine = [s for s in samples if s.path == name]
        times = [s.seconds * 1000 for s in mine] or [float("nan")]
        rows[name] = {"n": len(mine), "p50": percentile(times, 50), "p99": percentile(times, 99),
                      "errors": sum(is_error(s) for s in mine),
                      "429": sum(s.status == 429 for s in mine if s.path == "v1 chat")}
    errors = [s for s in samples if is_error(s)]
    kinds: dict[str, int] = {}
    for s in errors:
        kinds[f"{s.path} {s.status}"] = kinds.get(f"{s.path} {s.status}", 0) + 1
    return {"rows": rows, "rps": len(samples) / elapsed, "errors": len(errors), "kinds": kinds}


def report(results: dict[str, dict], args) -> None:
    labels = list(results)
    print(f"{args.users} users, {args.seconds:g} s each side (after {args.warmup:g} s warm-up), "
          f"think time uniform mean {args.think:g} s, load average before: {args.loadavg}")
    header = f"{'path':<16}" + "".join(f"{'n':>7}{'p50 ms':>9}{'p99 ms':>9}{'err':>5}" for _ in labels)
    print(f"{'':16}" + "".join(f"{label:>30}" for label in labels))
    print(header)
    for name, _ in MIX:
        line = f"{name:<16}"
        for label in labels:
            row = results[label]["rows"][name]
            line += f"{row['n']:>7}{row['p50']:>9.0f}{row['p99']:>9.0f}{row['errors']:>5}"
        print(line)
    for label in labels:
        r = results[label]
        v1 = r["rows"]["v1 chat"]
        print(f"{label}: {r['rps']:.1f} requests/s, {r['errors']} errors "
              f"{r['kinds'] or ''}, /v1 429s (designed) {v1['429']} of {v1['n']}")
    one, many = (results[label] for label in labels)

    def worst_page_p99(side: dict) -> float:
        return max(side["rows"][p]["p99"] for p in PAGES)

    print(f"ratio {labels[1]} / {labels[0]}: requests/s {many['rps'] / one['rps']:.2f}, "
          f"healthz p99 {many['rows']['healthz']['p99'] / one['rows']['healthz']['p99']:.2f}, "
          f"worst page p99 {worst_page_p99(many) / worst_page_p99(one):.2f}")


def setup_database(users: int) -> tuple[list[User], str]:
    """Users in one team with the demo model and an API token each; the model id for /v1."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command

    from accounts.models import Team
    from catalog.imports.demo import demo_model_import
    from runtime.services import api_token_create

    call_command("migrate", verbosity=0)
    team = Team.objects.create(name="bench")
    hashed = make_password(PASSWORD)  # one hash for all: hashing 50 passwords takes ~25 s
    model_users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"user{i:03}", password=hashed) for i in range(users))
    team.members.add(*model_users)
    variant = demo_model_import(team=team).variants.get()
    result = []
    for u in model_users:
        _token, key = api_token_create(user=u, name="bench")
        result.append(User(u.username, key))
    return result, str(variant.pk)


async def run_side(users: list[User], base: str, model: str, args) -> dict:
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    for user in users:
        user.client = httpx.AsyncClient(timeout=60, limits=limits, follow_redirects=False,
                                        cookies=user.cookies)
    try:
        # Logging in hashes a password per user (PBKDF2, by design slow): a few at a time, and
        # once (sessions live in the database, so the second side's web tier knows them).
        gate = asyncio.Semaphore(4)

        async def gated(user: User) -> None:
            async with gate:
                await log_in(user, base)
            user.cookies = user.client.cookies

        await asyncio.gather(*(gated(u) for u in users if u.cookies is None))
        # Warm-up, untimed: each worker process imports the planner's libraries (torch: seconds
        # of CPU) and the runtime loads the model on first use.
        await load(users, base, model, args.warmup, args.think, seed=args.seed + 10_000)
        samples, elapsed = await load(users, base, model, args.seconds, args.think, args.seed)
        return summary(samples, elapsed)
    finally:
        for user in users:
            await user.client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean seconds a user waits between requests (0: none)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                        help="web workers of the second side (default: WEB_WORKERS' default)")
    parser.add_argument("--warmup", type=float, default=10, help="untimed seconds of the mix first")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.loadavg = " ".join(f"{x:.2f}" for x in os.getloadavg())

    work = Path(tempfile.mkdtemp(prefix="quantdash-web-load-"))
    redis_port, runtime_port, web_port = free_port(), free_port(), free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "quantdash.settings",
           "DEBUG": "0", "SECRET_KEY": "web-load-bench-only-" + "x" * 40,
           "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "0",
           "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0",
           "DATABASE_URL": f"sqlite:///{work}/db.sqlite3", "ARTIFACT_ROOT": str(work / "artifacts"),
           "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "RUNTIME_URL": f"http://127.0.0.1:{runtime_port}", "RUNTIME_TOKEN": RUNTIME_TOKEN,
           "RUNTIME_THREADS": "1", "WORKER_NODE_BENCH": "0", "LOG_LEVEL": "WARNING",
           "PYTHONUNBUFFERED": "1"}
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    log = open(work / "processes.log", "ab")
    started: list[subprocess.Popen] = []

    def spawn(argv: list[str], **extra: str) -> subprocess.Popen:
        process = subprocess.Popen(argv, cwd=ROOT, env={**env, **extra}, stdout=log,
                                   stderr=subprocess.STDOUT)
        started.append(process)
        return process

    try:
        redis = spawn(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
                       "--appendonly", "no", "--dir", str(work)])
        users, model = setup_database(args.users)
        wait_port(redis_port, redis)
        spawn([str(Path(sys.executable).parent / "celery"), "-A", "quantdash", "worker", "-Q", "cpu",
               "--concurrency", "1", "--hostname", "cpu@bench", "--loglevel", "WARNING"])
        runtime = spawn([sys.executable, "manage.py", "runtime_server", "--port", str(runtime_port),
                         "--threads", "1"])
        wait_port(runtime_port, runtime)
        base = f"http://127.0.0.1:{web_port}"
        results = {}
        for workers in (1, args.workers):
            label = f"{workers} worker{'s' if workers > 1 else ''}"
            web = spawn([sys.executable, "-m", "quantdash.web", "--host", "127.0.0.1", "--port",
                         str(web_port), "--log-level", "warning", "--no-access-log"],
                        WEB_WORKERS=str(workers))
            wait_port(web_port, web)
            deadline = time.monotonic() + 60
            while httpx.get(f"{base}/healthz").status_code != 200:  # the Celery worker's heartbeat
                if time.monotonic() > deadline:
                    raise SystemExit(f"/healthz is not 200 after 60 s: "
                                     f"{httpx.get(f'{base}/healthz').text}")
                time.sleep(0.5)
            results[label] = asyncio.run(run_side(users, base, model, args))
            stop(web)
            started.remove(web)
    finally:
        for process in reversed(started):
            stop(process)
        log.close()
    args.loadavg += ", after: " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    report(results, args)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
