"""What running quantization as a quantdash job costs over calling llama.cpp directly.

Side by side in one run (this machine is noisy): the raw llama-quantize runs (jobs/llama_tools.py's binary, as the job runs it) for
the demo model's Q4_1 GGUF -> Q8_0 and Q4_K_M, and the same work as a job submitted through
jobs.services.job_submit to a real Celery worker over a real Redis (claim, child process, progress,
sha256 of the outputs, registration as catalog variants). Rounds alternate raw and job; the
medians and their ratio are printed.

    .venv/bin/python bench/job_overhead.py [--rounds 3]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TYPES = ["Q8_0", "Q4_K_M"]


def setup_environment(tmp: Path) -> None:
    from tests.support.processes import free_port

    os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    os.environ["ARTIFACT_ROOT"] = str(tmp / "artifacts")
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    os.environ["WORKER_HEARTBEAT_SECONDS"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "quantdash.settings"


def raw_quantize(source: Path, out: Path) -> float:
    """The same llama-quantize binary the job runs, called directly with the same arguments."""
    import subprocess

    from jobs import llama_tools

    started = time.perf_counter()
    for qtype in TYPES:
        target = out / f"raw-{qtype}.gguf"
        subprocess.run([str(llama_tools.tool("llama-quantize")), "--allow-requantize", str(source),
                        str(target), qtype, str(os.cpu_count() or 1)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target.unlink()
    return time.perf_counter() - started


def job_quantize(team, variant) -> float:
    from jobs.models import Job
    from jobs.services import job_submit

    started = time.perf_counter()
    job = job_submit(team=team, user=None, method="gguf", params={"types": TYPES},
                     input_variant=variant)
    while not Job.objects.get(pk=job.pk).is_final:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    for output in job.outputs.all():  # keep the disk clean between rounds
        from jobs.outputs import variants_discard

        variants_discard(variants=[output])
    Job.objects.filter(pk=job.pk).delete()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="quantdash-bench-"))
    setup_environment(tmp)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from accounts.services import team_get_or_create
    from catalog.imports.demo import demo_model_import
    from tests.support import processes

    call_command("migrate", verbosity=0)
    port = int(settings.REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    redis = processes.RedisServer(port, tmp / "redis")
    redis.start()
    worker = processes.start_worker(hostname="bench@%h", queues="cpu", log=tmp / "worker.log")
    try:
        from jobs.models import Worker

        processes.wait_until(lambda: Worker.objects.exists(), 60, what="the worker")
        team = team_get_or_create(name="bench")
        variant = demo_model_import(team=team).variants.get()
        source = variant.files.get().absolute_path
        raw, job = [], []
        for _ in range(args.rounds):
            raw.append(raw_quantize(source, tmp))
            job.append(job_quantize(team, variant))
        raw_s, job_s = statistics.median(raw), statistics.median(job)
        print(f"demo Q4_1 -> {' + '.join(TYPES)}, {args.rounds} rounds, medians on {os.cpu_count()} cores")
        print(f"  raw llama-quantize       : {raw_s:6.2f} s   ({', '.join(f'{t:.2f}' for t in raw)})")
        print(f"  quantdash job (worker)   : {job_s:6.2f} s   ({', '.join(f'{t:.2f}' for t in job)})")
        print(f"  job / raw                : {job_s / raw_s:6.2f}x  (overhead {job_s - raw_s:+.2f} s)")
    finally:
        processes.stop(worker)
        redis.stop()


if __name__ == "__main__":
    main()
