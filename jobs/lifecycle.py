"""The Job state machine. Every status change goes through these functions, each a conditional
UPDATE whose row count says whether the transition happened, so two workers (or a worker and a
user pressing Cancel) can never both win.

    queued  -> running (claim) | cancelled (cancel before start)
    running -> succeeded | failed | cancelled (finish) | queued (requeue after a lost worker)
"""

from django.db.models import F
from django.utils import timezone

from jobs.models import Job

S = Job.Status
LOG_TAIL_CHARS = 8000


def claim(*, job_id: int, worker: str) -> bool:
    """queued -> running. False if someone else claimed it, or it was cancelled meanwhile."""
    now = timezone.now()
    return Job.objects.filter(pk=job_id, status=S.QUEUED, cancel_requested=False).update(
        status=S.RUNNING, worker=worker, started_at=now, heartbeat=now,
        attempts=F("attempts") + 1, progress=0, stage="starting", eta_seconds=None, error="",
    ) == 1


def report(*, job_id: int, progress: float | None = None, stage: str | None = None,
           eta_seconds: float | None = None, log_tail: str | None = None) -> bool:
    """Progress and heartbeat of a running job. False once the job is no longer running."""
    fields: dict = {"heartbeat": timezone.now()}
    if progress is not None:
        fields["progress"] = max(0.0, min(100.0, progress))
    if stage is not None:
        fields["stage"] = stage[:60]
    if eta_seconds is not None:
        fields["eta_seconds"] = eta_seconds
    if log_tail is not None:
        fields["log_tail"] = log_tail[-LOG_TAIL_CHARS:]
    return Job.objects.filter(pk=job_id, status=S.RUNNING).update(**fields) == 1


def finish(*, job_id: int, status: str, error: str = "", result: dict | None = None) -> bool:
    """running -> a final state. Refuses non-final target states."""
    if status not in Job.FINAL:
        raise ValueError(f"finish() needs a final status, not {status!r}")
    fields = {"status": status, "finished_at": timezone.now(), "error": error[:10000]}
    if status == S.SUCCEEDED:
        fields.update(progress=100.0, stage="done", eta_seconds=0)
    if result is not None:
        fields["result"] = result
    return Job.objects.filter(pk=job_id, status=S.RUNNING).update(**fields) == 1


def cancel_queued(*, job_id: int) -> bool:
    """queued -> cancelled, before any worker started it."""
    return Job.objects.filter(pk=job_id, status=S.QUEUED).update(
        status=S.CANCELLED, cancel_requested=True, finished_at=timezone.now(), stage="cancelled",
    ) == 1


def request_cancel(*, job_id: int) -> bool:
    """Flags a running job; its runner sees the flag within a second and stops the child."""
    return Job.objects.filter(pk=job_id, status=S.RUNNING).update(cancel_requested=True) == 1


def requeue(*, job_id: int, heartbeat_before, reason: str) -> bool:
    """running -> queued, for a job whose worker went silent (the reaper's retry)."""
    return Job.objects.filter(
        pk=job_id, status=S.RUNNING, heartbeat__lt=heartbeat_before
    ).update(status=S.QUEUED, worker="", stage="requeued", error=reason) == 1


def fail_lost(*, job_id: int, heartbeat_before, reason: str, status: str = S.FAILED) -> bool:
    """running -> failed (or cancelled, when the user had asked) for a job whose worker is gone."""
    return Job.objects.filter(
        pk=job_id, status=S.RUNNING, heartbeat__lt=heartbeat_before
    ).update(status=status, finished_at=timezone.now(), stage="lost", error=reason) == 1
