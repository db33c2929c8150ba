"""Chat speed on a node that also runs a job: the runtime's llama.cpp engine decoding while a job's
llama.cpp tool keeps every core busy, with and without the node-sharing policy, against the quiet
node.

    python bench/shared_node.py [--model GGUF] [--gen 64] [--runs 5] [--threads N]

The chat side is engines.open_engine's llama.cpp engine with RUNTIME_THREADS threads, timed by its
speed_runner (prefill of a short prompt, then --gen greedy tokens; median of --runs after a
warm-up), quiet; beside a job at the same priority with the same threads (no policy); and beside
a job at JOB_NICE with the threads the runtime's model manager uses while a job runs on its node
(RUNTIME_THREADS_WHILE_JOB). The job side is llama-perplexity on WikiText-2 with as many threads
as cores (what an evaluation's cross-check runs), started the way the worker starts a job's
process (jobs.runner.child_setup: its niceness, inherited by the tools). Target: chat keeps at
least half its quiet decode speed beside a job. Run it on a quiet machine: the load average is
printed before each case.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantdash.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from catalog.services import demo_model_path  # noqa: E402
from engines import open_engine  # noqa: E402
from jobs import llama_tools  # noqa: E402
from jobs.runner import child_setup  # noqa: E402
from runtime.manager import ModelManager  # noqa: E402

WIKITEXT = ROOT.parent / "shared" / "data" / "wikitext-2" / "test.txt"


def decode_speed(engine, prompt: list[int], gen: int, runs: int) -> tuple[float, list[float]]:
    """Median decode tokens/s over `runs` runs after one warm-up run, and every run's figure."""
    rates = []
    with engine.speed_runner(prompt, gen) as run:
        run()
        for _ in range(runs):
            _, decode = run()
            rates.append(gen / decode)
    return statistics.median(rates), rates


def start_job(model: Path, threads: int, nice: int) -> subprocess.Popen:
    args = [str(llama_tools.tool("llama-perplexity")), "-m", str(model), "-f", str(WIKITEXT),
            "-c", "512", "-t", str(threads), "--chunks", "10000"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=child_setup(nice))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: the demo model)")
    parser.add_argument("--gen", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=settings.RUNTIME_THREADS, help="chat's quiet threads")
    parser.add_argument("--job-threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    model = args.model or demo_model_path()
    engine = open_engine("gguf", [model], n_ctx=512, threads=args.threads)
    prompt = engine.tokenize("The history of the city begins with a small settlement on the river, where")
    print(f"{model.name}, chat {args.threads} threads quiet, job llama-perplexity {args.job_threads} threads, "
          f"{os.cpu_count()} cores, {args.gen} tokens × {args.runs} runs")
    busy = ModelManager(memory_budget_bytes=1, threads=args.threads).busy_threads
    if settings.RUNTIME_THREADS_WHILE_JOB:
        busy = settings.RUNTIME_THREADS_WHILE_JOB
    cases = (("quiet", None, args.threads),
             ("job at nice 0, chat at full threads (no policy)", 0, args.threads),
             (f"job at nice {settings.JOB_NICE}, chat at {busy} threads (the runtime's policy)",
              settings.JOB_NICE, busy))
    results = []
    for label, nice, threads in cases:
        load = os.getloadavg()[0]
        engine.set_threads(threads)
        job = start_job(model, args.job_threads, nice) if nice is not None else None
        try:
            if job is not None:
                time.sleep(3)   # the job past its load and tokenization, computing
                if job.poll() is not None:
                    raise SystemExit(f"the job process exited early ({job.returncode})")
            median, rates = decode_speed(engine, prompt, args.gen, args.runs)
        finally:
            if job is not None:
                job.kill()
                job.wait()
        results.append((label, median))
        print(f"{label}: decode {median:.2f} tok/s, runs {', '.join(f'{r:.1f}' for r in rates)} "
              f"(load {load:.2f} before)")
    quiet = results[0][1]
    for label, median in results[1:]:
        print(f"{median / quiet:.2f} × quiet: {label}")
    engine.unload()


if __name__ == "__main__":
    main()
