"""Submitting, cancelling and reaping jobs. Views, the API and the CLI call these."""

import hashlib
import json
import logging
import shutil
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Team
from catalog.models import Dataset
from jobs import lifecycle, routing
from jobs.methods import get_method
from jobs.methods.base import JobError
from jobs.models import Job
from jobs.runner import work_folder
from jobs.tasks import run_job

logger = logging.getLogger(__name__)
DUPLICATE_WINDOW = timedelta(seconds=30)


def _send(job_id: int, queue: str) -> bool:
    """Puts the job's message on its queue. If the broker can't be reached the job is flagged
    `needs_enqueue` (the submit still succeeds) and the reaper sends it once Redis is back."""
    try:
        run_job.apply_async(args=[job_id], queue=queue, retry=False)
    except Exception as exc:  # kombu/redis raise several types for an unreachable broker
        logger.warning("job %s: broker unreachable, will retry enqueueing: %s", job_id, exc)
        Job.objects.filter(pk=job_id).update(needs_enqueue=True)
        return False
    Job.objects.filter(pk=job_id, needs_enqueue=True).update(needs_enqueue=False)
    return True


def _enqueue(job: Job) -> None:
    transaction.on_commit(lambda: _send(job.pk, job.queue))


def _fingerprint(*, team_id: int, user_id, method: str, variant_id, params: dict) -> str:
    raw = json.dumps([team_id, user_id, method, variant_id, params], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def _resolve_dataset(team: Team, params: dict) -> tuple[dict, int | None]:
    """A catalog dataset id in params["dataset"] becomes the text file path methods read
    (params["dataset_path"]); a value that isn't an id is taken as a path on the server (CLI).
    The GGUF job's calibration text for an on-the-fly importance matrix, params
    ["imatrix_dataset"], resolves the same way to params["imatrix_dataset_path"] (its id stays
    in params["imatrix_dataset"])."""
    value = params.pop("imatrix_dataset", None)
    if value not in (None, ""):
        path, imatrix_id = _dataset_path(team, value, field="imatrix_dataset")
        params.update({"imatrix_dataset_path": path, "imatrix_dataset": imatrix_id})
    value = params.pop("dataset", None)
    if value in (None, ""):
        return params, None
    params["dataset_path"], dataset_id = _dataset_path(team, value, field="dataset")
    return params, dataset_id


def _dataset_path(team: Team, value, *, field: str) -> tuple[str, int | None]:
    if isinstance(value, int) or str(value).isdigit():
        dataset = Dataset.objects.filter(team=team, pk=int(value)).first()
        if dataset is None:
            raise JobError.field(field, f"no dataset {value} in this team")
        if dataset.kind != Dataset.Kind.TXT:
            raise JobError.field(field, f"{dataset.name} is {dataset.get_kind_display()}; "
                                 "calibration and perplexity read plain text (.txt) datasets")
        return str(dataset.directory / dataset.path), dataset.pk
    return str(value), None


def job_submit(*, team: Team, user, method: str, params: dict, input_variant,
               enqueue: bool = True) -> Job:
    """Validates, estimates, routes and saves a job, then enqueues it once the row is committed.

    The same submission twice within DUPLICATE_WINDOW (a double click) returns the first job.
    With enqueue=False the caller runs it itself (`manage.py quantize --inline`), so routing is
    skipped and the queue is recorded as "inline".
    """
    impl = get_method(method)
    if input_variant is None and impl.kind != "import":
        raise JobError.field("input", "choose an input variant")
    if input_variant is not None and input_variant.model.team_id != team.pk:
        raise JobError.field("input", "that variant is not in this team")
    if impl.input_formats and input_variant.format not in impl.input_formats:
        raise JobError.field(
            "input", f"{method} needs a {' or '.join(impl.input_formats)} input, "
            f"not {input_variant.get_format_display()}")
    params, dataset_id = _resolve_dataset(team, dict(params))
    cleaned = impl.validate(params, input_variant)
    if dataset_id is not None:
        cleaned["dataset"] = dataset_id
    estimate = impl.estimate(cleaned, input_variant)
    queue = (routing.choose_queue(method=method, peak_memory_bytes=estimate.get("peak_memory_bytes", 0))
             if enqueue else "inline")
    key = _fingerprint(team_id=team.pk, user_id=getattr(user, "pk", None), method=method,
                       variant_id=getattr(input_variant, "pk", None), params=cleaned)
    with transaction.atomic():
        # Lock the team row: on PostgreSQL a lock on zero matching jobs serialises nothing, so
        # two simultaneous identical submissions would both pass the duplicate check.
        Team.objects.select_for_update().filter(pk=team.pk).first()
        duplicate = Job.objects.filter(
            team=team, idempotency_key=key, created_at__gte=timezone.now() - DUPLICATE_WINDOW,
        ).exclude(status__in=[Job.Status.FAILED, Job.Status.CANCELLED]).first()
        if duplicate:
            return duplicate
        job = Job.objects.create(
            team=team, submitted_by=user if getattr(user, "pk", None) else None, kind=impl.kind,
            method=method, params=cleaned, input_variant=input_variant, queue=queue,
            estimate=estimate, idempotency_key=key,
        )
        if enqueue:
            _enqueue(job)
    return job


def evaluations_submit(*, user, variants, params: dict) -> tuple[list[Job], dict[int, str]]:
    """One evaluate job per variant, all with the same parameters (the comparison page's "evaluate
    selected"). Returns (jobs submitted, {variant id: why it was refused})."""
    jobs, errors = [], {}
    for variant in variants:
        try:
            jobs.append(job_submit(team=variant.model.team, user=user, method="evaluate",
                                   params=dict(params), input_variant=variant))
        except JobError as exc:
            errors[variant.pk] = str(exc)
    return jobs, errors


def job_cancel(*, job: Job) -> Job:
    """Cancels a queued job at once, or asks the runner of a running job to stop it."""
    if not lifecycle.cancel_queued(job_id=job.pk):
        lifecycle.request_cancel(job_id=job.pk)
    job.refresh_from_db()
    return job


def jobs_reap(*, now=None) -> list[int]:
    """Running jobs whose heartbeat went stale lost their worker (killed, OOM): requeue them while
    attempts remain, otherwise mark them failed. Queued jobs whose message never reached the
    broker are sent again. Returns the ids it touched."""
    now = now or timezone.now()
    resent = [job.pk for job in Job.objects.filter(status=Job.Status.QUEUED, needs_enqueue=True)
              if _send(job.pk, job.queue)]
    stale_before = now - timedelta(seconds=settings.JOB_LOST_SECONDS)
    touched = []
    for job in Job.objects.filter(status=Job.Status.RUNNING, heartbeat__lt=stale_before):
        reason = f"worker {job.worker or '?'} stopped sending heartbeats (lost)"
        lost_attempt = job.attempts
        if job.cancel_requested:  # the user asked to stop it: it ends cancelled, never retried
            done = lifecycle.fail_lost(job_id=job.pk, heartbeat_before=stale_before,
                                       reason=f"cancelled by user; {reason}",
                                       status=Job.Status.CANCELLED)
        elif job.attempts < settings.JOB_MAX_ATTEMPTS:
            done = lifecycle.requeue(job_id=job.pk, heartbeat_before=stale_before, reason=reason)
            if done:
                # Routed again: its old queue may be the node queue of the worker that died.
                Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
                    queue=routing.requeue_queue(job=job))
                job.refresh_from_db()
                _enqueue(job)
        else:
            done = lifecycle.fail_lost(
                job_id=job.pk, heartbeat_before=stale_before,
                reason=f"{reason}; gave up after {job.attempts} attempts")
        if done:
            logger.warning("reaped job %s: %s", job.pk, reason)
            # The lost attempt's runner never got to its cleanup: remove its work folder (its
            # process died with the worker, PR_SET_PDEATHSIG).
            shutil.rmtree(work_folder(job.pk, lost_attempt), ignore_errors=True)
            touched.append(job.pk)
    return resent + touched
