"""Tokens/s streamed through the dashboard (/v1 streaming: uvicorn → runtime server → llama.cpp)
against raw llama-cpp-python in this process, on the demo model with the same settings.

    .venv/bin/python bench/playground_throughput.py [--max-tokens 128] [--runs 3] [--threads 1]

Both sides: the demo GGUF (SmolLM2-135M-Instruct Q4_1), the same chat prompt rendered with the
model's own template, temperature 0, seed 1, the same n_ctx and thread count; the runtime
re-evaluates the prompt on every request, so the raw side resets its cache too. Reported per side
(median of --runs): time to first token, decode rate (tokens after the first / time from first to
last token) and end-to-end rate (tokens / total request time). Sets up a throwaway database,
artifact folder, user and API token, and stops the processes it started.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-runtime-token"
MESSAGES = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[:3]} exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port} after {timeout}s")


def measure(stream) -> dict:
    """Consumes an iterator of text pieces; returns timings (one piece = one token)."""
    started = time.perf_counter()
    stamps = [time.perf_counter() for piece in stream if piece]
    total = time.perf_counter() - started
    n = len(stamps)
    decode = (n - 1) / (stamps[-1] - stamps[0]) if n > 1 else 0.0
    return {"tokens": n, "ttft_s": stamps[0] - started, "decode_tps": decode, "e2e_tps": n / total}


def raw_stream(model_path: Path, args):
    from llama_cpp import Llama

    llm = Llama(str(model_path), n_ctx=args.n_ctx, n_threads=args.threads,
                n_threads_batch=args.threads, verbose=False)

    def pieces():
        llm.reset()
        for chunk in llm.create_chat_completion(
                MESSAGES, stream=True, max_tokens=args.max_tokens, temperature=0, seed=1,
                top_p=0.95, top_k=40, min_p=0.05, repeat_penalty=1.1):
            yield chunk["choices"][0]["delta"].get("content")

    return pieces


def dashboard_stream(base_url: str, api_key: str, model_id: str, args):
    import openai

    api = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0, timeout=300)

    def pieces():
        for chunk in api.chat.completions.create(
                model=model_id, messages=MESSAGES, stream=True, max_tokens=args.max_tokens,
                temperature=0, seed=1, top_p=0.95,
                extra_body={"top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1}):
            if chunk.choices:
                yield chunk.choices[0].delta.content

    return pieces


def interleaved(sides: dict, runs: int) -> dict[str, list[dict]]:
    """Alternates the sides run by run, so load from other processes hits both alike."""
    for pieces in sides.values():
        list(pieces())  # warm-up (the runtime loads the model on its first request)
    results = {name: [] for name in sides}
    for _ in range(runs):
        for name, pieces in sides.items():
            results[name].append(measure(pieces()))
    return results


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="llama.cpp threads on both sides (1 is steadiest on a shared 2-core box)")
    parser.add_argument("--n-ctx", type=int, default=1024)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="quantdash-bench-"))
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{work}/db.sqlite3",
           "ARTIFACT_ROOT": str(work / "artifacts"), "RUNTIME_TOKEN": TOKEN, "DEBUG": "1",
           "RUNTIME_N_CTX": str(args.n_ctx), "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantdash.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from accounts.models import Team
    from catalog.imports.demo import demo_model_import, demo_model_path
    from runtime.services import api_token_create

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench")
    team = Team.objects.create(name="bench")
    team.members.add(user)
    variant = demo_model_import(team=team).variants.get()
    _token, api_key = api_token_create(user=user, name="bench")

    runtime_port, web_port = free_port(), free_port()
    env["RUNTIME_URL"] = f"http://127.0.0.1:{runtime_port}"
    log = open(work / "processes.log", "ab")
    runtime = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runtime_server", "--port", str(runtime_port),
         "--threads", str(args.threads)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    web = subprocess.Popen(
        [str(Path(sys.executable).parent / "uvicorn"), "quantdash.asgi:application", "--port",
         str(web_port), "--log-level", "warning"], cwd=ROOT, env=env, stdout=log,
        stderr=subprocess.STDOUT)
    try:
        wait_port(runtime_port, runtime)
        wait_port(web_port, web)
        results = interleaved({
            "raw": raw_stream(demo_model_path(), args),
            "dashboard": dashboard_stream(f"http://127.0.0.1:{web_port}", api_key,
                                          str(variant.pk), args),
        }, args.runs)
        raw, through = results["raw"], results["dashboard"]
    finally:
        for process in (web, runtime):
            process.terminate()
            process.wait(15)

    print(f"SmolLM2-135M-Instruct Q4_1, {args.max_tokens} max tokens, temperature 0, seed 1, "
          f"n_ctx {args.n_ctx}, {args.threads} thread(s), median of {args.runs} runs")
    print(f"{'':28}{'tokens':>8}{'TTFT s':>9}{'decode tok/s':>14}{'end-to-end tok/s':>18}")
    for name, rows in (("raw llama-cpp-python", raw), ("dashboard /v1 stream", through)):
        print(f"{name:28}{median(rows, 'tokens'):>8.0f}{median(rows, 'ttft_s'):>9.3f}"
              f"{median(rows, 'decode_tps'):>14.1f}{median(rows, 'e2e_tps'):>18.1f}")
    print(f"ratio dashboard/raw: decode {median(through, 'decode_tps') / median(raw, 'decode_tps'):.3f}, "
          f"end-to-end {median(through, 'e2e_tps') / median(raw, 'e2e_tps'):.3f}")


if __name__ == "__main__":
    main()
