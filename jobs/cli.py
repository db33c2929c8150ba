"""What the `quantize`, `evaluate` and `score_tasks` management commands share: find the variant, submit, run or wait.

Both commands queue a job by default, `--wait` polls the row until a worker finishes it, `--inline`
runs it in this process without a worker; a failed or cancelled job exits non-zero (CommandError).
"""

from __future__ import annotations

import json
import socket
import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError

from catalog.models import Variant
from jobs import runner
from jobs.methods.base import JobError
from jobs.models import Job
from jobs.services import job_submit


def add_run_arguments(parser: ArgumentParser) -> None:
    """The --wait/--inline/--json/--another-copy options both commands take."""
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--wait", action="store_true", help="queue it and wait for the result")
    how.add_argument("--inline", action="store_true", help="run it in this process, no worker")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--another-copy", action="store_true",
                        help="run it even though an identical job already made these outputs")


def variant_or_error(variant_id: int) -> Variant:
    """The variant with its model's team loaded, or a CommandError naming the id."""
    variant = Variant.objects.select_related("model__team").filter(pk=variant_id).first()
    if variant is None:
        raise CommandError(f"no variant {variant_id}")
    return variant


def submit_and_finish(*, variant: Variant, method: str, params: dict[str, Any], inline: bool, wait: bool,
                      another_copy: bool = False) -> Job:
    """Submit the job, then run it inline or wait for a worker (polling once a second); the job, refreshed.
    A job whose outputs already exist is refused (naming them) unless `another_copy`."""
    try:
        job = job_submit(team=variant.model.team, user=None, method=method, params=params,
                         input_variant=variant, enqueue=not inline, another_copy=another_copy)
    except JobError as exc:
        raise CommandError(str(exc)) from exc
    if inline:
        runner.execute(job_id=job.pk, worker=f"inline@{socket.gethostname()}")
    elif wait:
        while not Job.objects.get(pk=job.pk).is_final:
            time.sleep(1)
    job.refresh_from_db()
    return job


def status_line(job: Job) -> str:
    """The one-line summary both commands print without --json."""
    return f"job {job.pk}: {job.status} {job.error}".rstrip()


def evaluations_json(job: Job, variant: Variant) -> str:
    """What `evaluate --json` and `score_tasks --json` print: the job and each Evaluation it made."""
    return json.dumps({
        "job": job.pk, "status": job.status, "error": job.error, "variant": variant.pk,
        "evaluations": [{"id": e.pk, "kind": e.kind, "metrics": e.metrics, "method": e.method}
                        for e in job.evaluations.order_by("pk")]}, indent=2)


def raise_if_failed(job: Job) -> None:
    """Exit non-zero for a failed or cancelled job, after its output was printed."""
    if job.status in (Job.Status.FAILED, Job.Status.CANCELLED):
        raise CommandError(f"job {job.pk} {job.status}: {job.error}")
