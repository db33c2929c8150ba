"""Runs one claimed job on a worker: the single place where job success, failure, cancel and
time limits are handled for every method.

The method's run() executes in a child process (jobs.child) in its own process group, so cancel
and time limits can stop it — and anything it started — at once. The runner watches it: it turns
the child's events and log lines into progress, stage and ETA on the Job row, writes the
heartbeat, and on success registers the outputs as catalog variants in one transaction.
"""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal

from catalog.evaluations import evaluation_record
from catalog.models import Variant
from catalog.services import CatalogError
from formats.digest import file_sha256
from jobs import lifecycle
from jobs.methods import get_method
from jobs.methods.base import Method
from jobs.models import Job, Worker
from quantdash import node
from jobs.outputs import register_outputs, variants_discard

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.25
S = Job.Status
# Sent with job_id once a claimed job has ended and its outputs are linked (jobs.sweeps listens:
# a sweep's next steps start when one of its jobs finishes).
job_finished = Signal()


@dataclass
class Watch:
    """What the runner has read so far from the child's files."""

    progress: float = 0.0
    stage: str = "starting"
    log_lines: list[str] = field(default_factory=list)
    events_pos: int = 0
    log_pos: int = 0
    started: float = field(default_factory=time.monotonic)
    first_progress: tuple[float, float] | None = None  # (monotonic time, percent) first seen > 0
    # (monotonic time, percent, seconds left) as of when progress last moved
    projection: tuple[float, float, float] | None = None

    def eta(self) -> float | None:
        """Seconds left at the rate progress has moved over the whole run since it was first
        reported, counted down from when progress last moved. Methods report in steps (GPTQ a
        layer at a time); a rate read at each heartbeat made the ETA climb while the bar stood
        between steps (44 min, 1 h 28 min, 43 min, 52 min ...). Counted down, the ETA falls
        while progress keeps to it; when progress moves on schedule (no later than the last
        projection's rate had it) the new projection is taken only if lower, so the ETA rises
        only when the job fell behind its projection.
        Once a projection runs out before progress moves, the job is late: the whole run's rate
        as of now is given (it rises until progress moves). None while progress hasn't moved
        past its first milestone (hf-from-gguf's 5 % "load", then one long call says nothing
        about that call's length)."""
        now = time.monotonic()
        if self.progress <= 0:
            return None
        if self.first_progress is None:
            self.first_progress = (now, self.progress)
            return None
        if self.projection is None or self.progress != self.projection[1]:
            since, first = self.first_progress
            moved = self.progress - first
            if moved <= 0 or now - since < 2:
                return None
            fresh = (now - since) * (100 - self.progress) / moved
            left = self._left(now)
            if left is not None and self.projection is not None:
                at, was, seconds = self.projection  # was progress due by now at that projection?
                on_schedule = now <= at + seconds * (self.progress - was) / (100 - was)
                fresh = min(fresh, left) if on_schedule else fresh
            self.projection = (now, self.progress, fresh)
        left = self._left(now)
        if left is None:  # ran out before progress moved: late, so the whole run's rate as of now
            since, first = self.first_progress
            left = (now - since) * (100 - self.progress) / (self.progress - first)
        return left

    def _left(self, now: float) -> float | None:
        if self.projection is None:
            return None
        at, _, seconds = self.projection
        left = seconds - (now - at)
        return left if left > 0 else None

    def tail(self) -> str:
        return "\n".join(self.log_lines[-80:])


def _read_new(path: Path, pos: int) -> tuple[list[str], int]:
    if not path.exists():
        return [], pos
    with open(path, "rb") as f:
        f.seek(pos)
        data = f.read()
    complete = data.rsplit(b"\n", 1)[0] + b"\n" if b"\n" in data else b""
    # llama.cpp and progress bars rewrite lines with \r: treat those as line ends too.
    text = complete.decode("utf-8", errors="replace").replace("\r", "\n")
    return [line for line in text.split("\n") if line.strip()], pos + len(complete)


def _update_watch(watch: Watch, workdir: Path, method: Method) -> None:
    events, watch.events_pos = _read_new(workdir / "events.jsonl", watch.events_pos)
    for line in events:
        event = json.loads(line)
        watch.progress = max(watch.progress, 100 * float(event["fraction"]))
        watch.stage = event["stage"]
    lines, watch.log_pos = _read_new(workdir / "log.txt", watch.log_pos)
    for line in lines:
        watch.log_lines.append(line[:500])
        parsed = method.parse_log_line(line)
        if parsed:
            watch.progress = max(watch.progress, 100 * parsed[0])
            watch.stage = parsed[1]
    del watch.log_lines[:-200]


def _stop_group(process: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM the child's process group, then SIGKILL what is left after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _die_with_parent() -> None:
    """Runs in the child before exec: if the worker process dies (kill -9, OOM), the kernel
    kills the job's process too, so no orphan keeps writing (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def child_setup(nice: int):
    """What the job's process does before exec: die with the worker, and lower its CPU priority
    to `nice` (inherited by the tools it starts). llama.cpp's threads spin at their barriers, so
    two processes with as many threads as cores at the same priority slow each other down many
    times over; at a low priority the job gets the cores the runtime leaves idle."""
    def setup() -> None:
        _die_with_parent()
        if nice:
            os.nice(nice)
    return setup


def declared_device(worker: str) -> str:
    """The device the worker declared in its heartbeat (the one routing chose it for): cpu or
    cuda. A worker with no row yet (a runner called directly) computes on the CPU."""
    return Worker.objects.filter(hostname=worker).values_list("device", flat=True).first() or "cpu"


def _spec(job: Job, workdir: Path, worker: str = "") -> dict:
    variant: Variant = job.input_variant
    return {
        "job_id": job.pk, "method": job.method, "params": job.params, "workdir": str(workdir),
        "device": declared_device(worker), "node": worker or job.worker,
        "peak_memory_bytes": int((job.estimate or {}).get("peak_memory_bytes", 0)),
        "input_format": variant.format, "input_quant_type": variant.quant_type,
        "input_dir": str(variant.directory),
        "base_logits_dir": str(settings.BASE_LOGITS_CACHE_DIR),
        "base_logits_max_bytes": settings.BASE_LOGITS_CACHE_MAX_BYTES,
        "input_files": [
            {"path": str(f.absolute_path), "bytes": f.bytes, "sha256": f.sha256}
            for f in variant.files.all()
        ],
    }


def verify_inputs(job: Job) -> str | None:
    """The input variant's files as this node sees them, against the catalog's size and sha256:
    on a shared filesystem a file still being written, a stale cache or a corrupted copy would
    otherwise be quantized silently. Returns the error naming the first file that differs."""
    variant = job.input_variant
    for f in variant.files.all() if variant is not None else []:
        path = f.absolute_path
        size = path.stat().st_size if path.is_file() else None
        digest = file_sha256(path) if size == f.bytes else None
        if digest != f.sha256:
            found = (f"sha256 {digest}" if digest else "missing" if size is None
                     else f"{size} bytes")
            return (f"input file {f.path} changed or is incomplete on this node: sha256 "
                    f"{f.sha256} and {f.bytes} bytes in the catalog, {found} here")
    return None


def _check_disk(job: Job, workdir: Path) -> str | None:
    needed = int(job.estimate.get("output_bytes", 0) * 1.5) + 256 * 1024**2
    free = shutil.disk_usage(workdir).free
    if free < needed:
        return f"not enough free disk: {free / 2**30:.1f} GiB free, about {needed / 2**30:.1f} GiB needed"
    return None


def _disk_full_note(workdir: Path) -> str:
    """Libraries report a full disk in their own words (llama.cpp: a failed write, code 1), or
    the child cannot even write its result: say so when the work folder's disk is (nearly) full."""
    free = shutil.disk_usage(workdir).free
    return f"; disk full: {free / 2**20:.0f} MiB free under ARTIFACT_ROOT" if free < 64 * 1024**2 else ""


def work_folder(job_id: int, attempt: int) -> Path:
    return Path(settings.ARTIFACT_ROOT) / "tmp" / f"job-{job_id}-attempt-{attempt}"


def execute(*, job_id: int, worker: str) -> None:
    if not lifecycle.claim(job_id=job_id, worker=worker):
        logger.info("job %s was not claimable (already taken, cancelled or finished)", job_id)
        return
    job = Job.objects.select_related("input_variant__model").get(pk=job_id)
    method = get_method(job.method)
    workdir = work_folder(job.pk, job.attempts)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    try:
        if method.in_worker:
            _run_in_worker(job, method)
        else:
            _run(job, method, workdir, worker)
    except Exception as exc:  # the runner itself broke: record it, never leave a job running
        logger.exception("job %s runner error", job_id)
        lifecycle.finish(job_id=job_id, status=S.FAILED, error=f"internal error: {exc}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if method.in_worker:
            method.cleanup(job.params)
    job_finished.send(sender=Job, job_id=job_id)


class JobCancelled(Exception):
    pass


class JobTimedOut(Exception):
    """An in-worker job ran past its soft time limit (raised from its progress callback)."""


def _run_in_worker(job: Job, method: Method) -> None:
    """Runs an import in this process; progress() writes the row and raises JobCancelled when
    the user cancelled (the catalog's import functions then leave nothing behind)."""
    started, last = time.monotonic(), [0.0]
    soft, _hard = time_limits(method)

    def progress(fraction: float, stage: str) -> None:
        # The import runs in this process, so nothing can kill it: the soft limit is enforced
        # here, between chunks, and the import's own cleanup leaves nothing behind.
        if time.monotonic() - started > soft:
            raise JobTimedOut(f"timed out: soft time limit of {soft:g} s")
        if time.monotonic() - last[0] < settings.JOB_HEARTBEAT_SECONDS and fraction < 1:
            return
        last[0] = time.monotonic()
        elapsed = time.monotonic() - started
        eta = elapsed * (1 - fraction) / fraction if fraction > 0.01 else None
        running = lifecycle.report(job_id=job.pk, progress=100 * fraction, stage=stage,
                                   eta_seconds=eta)
        cancel = Job.objects.filter(pk=job.pk).values_list("cancel_requested", flat=True).first()
        if cancel or not running:
            raise JobCancelled()

    try:
        variant = method.run_in_worker(job=job, progress=progress)
    except JobCancelled:
        lifecycle.finish(job_id=job.pk, status=S.CANCELLED, error="cancelled by user")
        return
    except JobTimedOut as exc:
        lifecycle.finish(job_id=job.pk, status=S.FAILED, error=str(exc))
        return
    except CatalogError as exc:
        lifecycle.finish(job_id=job.pk, status=S.FAILED, error=str(exc))
        return
    if lifecycle.finish(job_id=job.pk, status=S.SUCCEEDED, result={"outputs": [variant.pk]}):
        job.outputs.add(variant)
        method.follow_up(job=job, variant=variant)
    else:
        variants_discard(variants=[variant])


def _run(job: Job, method: Method, workdir: Path, worker: str = "") -> None:
    if error := verify_inputs(job) or _check_disk(job, workdir):
        lifecycle.finish(job_id=job.pk, status=S.FAILED, error=error)
        return
    spec_path = workdir / "spec.json"
    spec_path.write_text(json.dumps(_spec(job, workdir, worker)))
    # The child works inside its work folder (libraries that write logs or caches to the current
    # directory write them there, and they go with it); the project stays importable.
    env = {**os.environ, **method.child_env, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with open(workdir / "log.txt", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jobs.child", str(spec_path)], cwd=workdir, env=env,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=child_setup(settings.JOB_NICE),
        )
    watch = Watch()
    with node.job_marked(job.pk, process.pid):   # the runtime beside it generates with fewer threads
        outcome, error = _watch(job, method, process, workdir, watch)
    _update_watch(watch, workdir, method)
    lifecycle.report(job_id=job.pk, log_tail=watch.tail())
    if outcome == "exited":
        outcome, error = _read_result(process, workdir, job, watch)
    if outcome == S.SUCCEEDED:
        return
    lifecycle.finish(job_id=job.pk, status=outcome, error=error)


def time_limits(method: Method) -> tuple[float, float]:
    """(soft, hard) seconds for a method: its own, or JOB_TIME_LIMIT_OVERRIDES[method.name]."""
    override = settings.JOB_TIME_LIMIT_OVERRIDES.get(method.name)
    if override:
        return float(override[0]), float(override[1])
    return float(method.soft_time_limit), float(method.hard_time_limit)


def _watch(job, method, process, workdir, watch) -> tuple[str, str]:
    last_beat = 0.0
    soft, hard = time_limits(method)
    while True:
        try:
            process.wait(POLL_SECONDS)
            return "exited", ""
        except subprocess.TimeoutExpired:
            pass
        _update_watch(watch, workdir, method)
        elapsed = time.monotonic() - watch.started
        if elapsed > hard:
            _stop_group(process, grace=0)
            return S.FAILED, f"timed out: hard time limit of {hard:g} s"
        if elapsed > soft:
            # SIGTERM, and SIGKILL at the hard limit at the latest.
            _stop_group(process, grace=max(0.0, min(5.0, hard - elapsed)))
            return S.FAILED, f"timed out: soft time limit of {soft:g} s"
        still_running = True
        if time.monotonic() - last_beat >= settings.JOB_HEARTBEAT_SECONDS:
            last_beat = time.monotonic()
            still_running = lifecycle.report(
                job_id=job.pk, progress=watch.progress, stage=watch.stage,
                eta_seconds=watch.eta(), log_tail=watch.tail())
        # Cancel is read on every poll (one indexed row), not only with the heartbeat, so a
        # cancelled job stops within about POLL_SECONDS whatever JOB_HEARTBEAT_SECONDS is.
        cancel = Job.objects.filter(pk=job.pk).values_list("cancel_requested", flat=True).first()
        if cancel or not still_running:
            _stop_group(process)
            return S.CANCELLED, "cancelled by user" if cancel else "job left the running state"


def _read_result(process, workdir: Path, job: Job, watch: Watch) -> tuple[str, str]:
    result_path = workdir / "result.json"
    if process.returncode < 0:
        sig = signal.Signals(-process.returncode).name
        return S.FAILED, f"the job's process was killed by {sig} (out of memory?)"
    if not result_path.exists():
        return S.FAILED, (f"the job's process exited with code {process.returncode} and no result"
                          + _disk_full_note(workdir))
    result = json.loads(result_path.read_text())
    if not result["ok"]:
        return S.FAILED, result["error"] + _disk_full_note(workdir)
    if result.get("evaluations"):
        return record_evaluations(job, result["evaluations"])
    variants = register_outputs(job=job, outputs=result["outputs"], workdir=workdir / "work")
    if not lifecycle.finish(job_id=job.pk, status=S.SUCCEEDED,
                            result={"outputs": [v.pk for v in variants]}):
        # Cancelled in the last instant: undo the registration.
        variants_discard(variants=variants)
        return S.CANCELLED, "cancelled by user"
    job.outputs.add(*variants)
    return S.SUCCEEDED, ""


def record_evaluations(job: Job, evaluations: list[dict]) -> tuple[str, str]:
    """Stores an evaluate job's measurements on its input variant, in the same transaction as
    the job's success (a cancel that won the race leaves nothing recorded)."""
    with transaction.atomic():
        planner = (job.estimate or {}).get("planner")
        recorded = [evaluation_record(planner=planner, variant=job.input_variant, kind=e["kind"],
                                      metrics=e["metrics"], method=e["method"])
                    for e in evaluations]
        job.evaluations.add(*recorded)
        if not lifecycle.finish(job_id=job.pk, status=S.SUCCEEDED, result={
                "evaluations": [{"kind": e["kind"], "metrics": e["metrics"]} for e in evaluations],
                "evaluation_ids": [r.pk for r in recorded]}):
            transaction.set_rollback(True)
            return S.CANCELLED, "cancelled by user"
    return S.SUCCEEDED, ""
