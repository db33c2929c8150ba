"""Submitting, cancelling and reaping jobs. Views, the API and the CLI call these."""

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from datetime import timedelta
from importlib import metadata

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Team
from catalog.models import Dataset, TaskSet, Variant
from catalog.services import CatalogError
from catalog.tasksets import builtin_spec, spec as taskset_spec
from jobs import lifecycle, llama_tools, routing
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
        dataset = text_dataset(team, value, field=field)
        return str(dataset.directory / dataset.path), dataset.pk
    return str(value), None


def text_dataset(team: Team, value, *, field: str) -> Dataset:
    """The team's plain-text dataset with id `value`: what calibration and evaluation read. Another
    team's, an unknown id or another kind of dataset is a JobError naming `field`."""
    dataset = Dataset.objects.filter(team=team, pk=int(value)).first()
    if dataset is None:
        raise JobError.field(field, f"no dataset {value} in this team")
    if dataset.kind != Dataset.Kind.TXT:
        raise JobError.field(field, f"{dataset.name} is {dataset.get_kind_display()}; "
                             "calibration and evaluation read plain text (.txt) datasets")
    return dataset


def _resolve_tasks(team: Team, params: dict) -> tuple[dict, list | None]:
    """The "tasks" job's params["tasks"] (task set ids of this team, or "builtin:<lm-eval task
    name>") become params["task_specs"], what the method runs (catalog.tasksets.spec). A
    built-in task needs the Hub for its data: refused here, at once, when it can't be reached."""
    value = params.pop("tasks", None)
    if value is None:
        return params, None
    if not isinstance(value, list) or not value:
        raise JobError.field("tasks", "choose at least one task: a list of task set ids or "
                             "\"builtin:<lm-eval task name>\"")
    specs, chosen = [], []
    for item in value:
        if isinstance(item, str) and item.startswith("builtin:"):
            try:
                specs.append(builtin_spec(item.removeprefix("builtin:").strip()))
            except CatalogError as exc:
                raise JobError.field("tasks", str(exc)) from None
            chosen.append(f"builtin:{specs[-1]['name']}")
            continue
        taskset = None
        if (isinstance(item, int) and not isinstance(item, bool)) or str(item).isdigit():
            taskset = TaskSet.objects.filter(team=team, pk=int(item)).first()
        if taskset is None:
            raise JobError.field("tasks", f"no task set {item} in this team")
        specs.append(taskset_spec(taskset))
        chosen.append(taskset.pk)
    if len(set(map(str, chosen))) != len(chosen):
        raise JobError.field("tasks", "a task is listed twice")
    params["task_specs"] = specs
    return params, chosen


@dataclass
class JobCheck:
    """What submitting would do, worked out without saving: the method's cleaned parameters,
    its estimate, where it would run (None when not routed), the warnings the job records, and
    the variants an earlier identical job already made (see existing_outputs)."""

    cleaned: dict
    estimate: dict
    placement: routing.Placement | None
    warnings: list[str]
    existing: list


class DuplicateOutputs(JobError):
    """The outputs of this job already exist; `existing` lists those variants."""

    reason = ("an identical job (same input sha256, method, parameters and tool versions) "
              "already made these outputs")

    def __init__(self, existing: list):
        self.existing = existing
        made = "; ".join(f"#{v.pk} {v.label} (from #{v.parent_id}, made "
                         f"{v.created_at:%Y-%m-%d %H:%M} UTC)" for v in existing)
        message = f"{self.reason}: {made}; use those, or ask for another copy"
        super().__init__(f"another_copy: {message}", {"another_copy": message})


def _tool_version_now(name: str) -> str | None:
    """The version of a tool as this installation has it, or None where it can't be told."""
    if name == "llama.cpp":
        return llama_tools.version()
    if name == "llama-cpp-python":
        return llama_tools.LLAMA_CPP_VERSION
    try:
        return metadata.version(name)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def _input_digest(variant: Variant) -> list[tuple[str, str]]:
    return sorted(variant.files.values_list("path", "sha256"))


def existing_outputs(*, team: Team, method: str, cleaned: dict, input_variant) -> list[Variant]:
    """Variants of `team` made by a succeeded job with this method and the same cleaned
    parameters, from an input whose files have the same sha256 (the same variant, or a copy of
    it), with tool versions that are still the installed ones (a recorded tool whose installed
    version can't be told here is not compared)."""
    if input_variant is None:
        return []
    digest = _input_digest(input_variant)
    if not digest:
        return []
    jobs = (Job.objects.filter(team=team, method=method, status=Job.Status.SUCCEEDED,
                               input_variant__model__team=team)
            .select_related("input_variant").prefetch_related("outputs").order_by("pk"))
    found: list[Variant] = []
    for job in jobs:
        if job.params != cleaned or _input_digest(job.input_variant) != digest:
            continue
        for variant in job.outputs.all():
            now = {k: _tool_version_now(k) for k in (variant.tool_versions or {})}
            if all(now[k] in (None, v) for k, v in (variant.tool_versions or {}).items()):
                found.append(variant)
    return found


def job_check(*, team: Team, method: str, params: dict, input_variant, route: bool = True,
              another_copy: bool = False) -> JobCheck:
    """Every check submitting makes, in one place, for the new-job preview and for job_submit:
    raises JobError for a refusal (DuplicateOutputs when the outputs already exist and
    `another_copy` is not set), and returns the warnings the job would record.

    The method's validate() runs before the input-format check, so that a method's own, more
    helpful refusal (an HF-only method on a GGUF input offers the conversion) is the one given."""
    impl = get_method(method)
    if input_variant is None and impl.kind != "import":
        raise JobError.field("input", "choose an input variant")
    if input_variant is not None and input_variant.model.team_id != team.pk:
        raise JobError.field("input", "that variant is not in this team")
    params, dataset_id = _resolve_dataset(team, dict(params))
    params, task_ids = _resolve_tasks(team, params) if method == "tasks" else (params, None)
    cleaned = impl.validate(params, input_variant)
    if impl.input_formats and input_variant.format not in impl.input_formats:
        raise JobError.field(
            "input", f"{method} needs a {' or '.join(impl.input_formats)} input, "
            f"not {input_variant.get_format_display()}")
    if dataset_id is not None:
        cleaned["dataset"] = dataset_id
    if task_ids is not None:
        cleaned["tasks"] = task_ids
    estimate = impl.estimate(cleaned, input_variant)
    placement = (routing.placement(method=method,
                                   peak_memory_bytes=estimate.get("peak_memory_bytes", 0))
                 if route else None)
    warnings = [cleaned["warning"]] if cleaned.get("warning") else []
    existing = existing_outputs(team=team, method=method, cleaned=cleaned,
                                input_variant=input_variant)
    if existing and not another_copy:
        raise DuplicateOutputs(existing)
    if existing:
        warnings.append("makes another copy of " + ", ".join(f"#{v.pk} {v.label}" for v in existing))
    if placement is not None and not placement.live:
        warnings.append(f"no worker of queue {placement.queue} is up right now: the job waits")
    return JobCheck(cleaned, estimate, placement, warnings, existing)


def job_submit(*, team: Team, user, method: str, params: dict, input_variant,
               enqueue: bool = True, another_copy: bool = False) -> Job:
    """Checks (job_check), then saves the job and enqueues it once the row is committed.

    The same submission twice within DUPLICATE_WINDOW (a double click) returns the first job.
    A job whose outputs an identical job already made is refused unless `another_copy`.
    With enqueue=False the caller runs it itself (`manage.py quantize --inline`), so routing is
    skipped and the queue is recorded as "inline".
    """
    check = job_check(team=team, method=method, params=params, input_variant=input_variant,
                      route=enqueue, another_copy=another_copy)
    cleaned, estimate = check.cleaned, check.estimate
    queue = check.placement.queue if enqueue else "inline"
    impl = get_method(method)
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
