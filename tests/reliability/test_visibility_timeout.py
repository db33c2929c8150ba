"""Scenario 3: a job that runs longer than the broker's visibility timeout. Redis hands the
unacknowledged message (acks_late) to another worker while the first still runs it; the Job claim
(a conditional UPDATE) makes that delivery a no-op, so the job runs exactly once."""

import pytest

from catalog.models import Variant
from jobs.models import Job, Worker
from jobs.services import job_submit
from tests.reliability.conftest import WorkerProcess, record
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TYPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M"]
# Redis gives an unacked message back to the queue 2 s after delivery (scanned every second).
TINY_VISIBILITY = {"CELERY_VISIBILITY_TIMEOUT": "2", "CELERY_UNACKED_RESTORE_SECONDS": "1"}


def test_3_a_job_longer_than_the_visibility_timeout_runs_exactly_once(
        teams, demo_variant, redis_server, django_db_blocker):
    workers = [WorkerProcess(django_db_blocker, f"{name}@%h", **TINY_VISIBILITY)
               for name in ("vis-a", "vis-b")]
    try:
        WorkerProcess.start_all(workers)
        wait_until(lambda: Worker.objects.filter(hostname__startswith="vis-").count() == 2, 10)
        job = job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                         params={"types": TYPES}, input_variant=demo_variant)
        wait_until(lambda: Job.objects.get(pk=job.pk).is_final, 180, interval=0.5,
                   what="the job to finish")
        job.refresh_from_db()
        logs = "".join(w.log.read_text(errors="replace") for w in workers)
        # Only this job's lines count: the same logs also show stale messages that an earlier
        # test's killed worker left unacked, re-delivered here and refused (or still in flight).
        no_ops = logs.count(f"job {job.pk} was not claimable")
        assert job.status == Job.Status.SUCCEEDED, job.error
        assert no_ops >= 1, "Redis never re-delivered the message: the test proved nothing"
        assert job.attempts == 1  # every re-delivery was refused: it ran exactly once
        assert sorted(v.quant_type for v in job.outputs.all()) == sorted(TYPES)
        assert Variant.objects.exclude(pk=demo_variant.pk).count() == len(TYPES)
        deliveries = 1 + no_ops
        seconds = (job.finished_at - job.started_at).total_seconds()
        record(3, "visibility timeout", f"{seconds:.0f} s job, visibility timeout "
               f"{TINY_VISIBILITY['CELERY_VISIBILITY_TIMEOUT']} s (configuration): {deliveries} "
               f"deliveries, {no_ops} no-op claims, attempts {job.attempts}, "
               f"{job.outputs.count()} variants registered once")
    finally:
        WorkerProcess.stop_all(workers)
