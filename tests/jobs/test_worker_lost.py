"""A worker killed mid-job (kill -9): the reaper of another worker retries the job, which then
runs exactly once more and registers its outputs once."""

import os
import signal

import pytest

from catalog.models import Variant
from jobs.models import Job
from jobs.services import job_submit
from tests.support import processes
from tests.support.fixtures import start_worker_and_wait
from tests.support.processes import job_children, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TYPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M", "Q3_K_M"]


def test_killed_worker_job_is_retried_once_by_another_worker(
        teams, demo_variant, redis_server, django_db_blocker, session_dir):
    victim = start_worker_and_wait(django_db_blocker, session_dir, "victim@%h")
    rescuer = None
    try:
        job = job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                         params={"types": TYPES}, input_variant=demo_variant)
        wait_until(lambda: Job.objects.get(pk=job.pk).progress > 5, 60, what="the job to run")
        os.killpg(victim.pid, signal.SIGKILL)  # the worker, its pool process; the job dies with it
        victim.wait(10)
        wait_until(lambda: not job_children(job.pk), 5,
                   what="the job's process to die with its worker")

        rescuer = start_worker_and_wait(django_db_blocker, session_dir, "rescuer@%h")
        wait_until(lambda: Job.objects.get(pk=job.pk).is_final, 120, interval=0.5,
                   what="the retried job to finish")
        job.refresh_from_db()
        assert job.status == Job.Status.SUCCEEDED, job.error
        assert job.attempts == 2
        assert job.worker.startswith("rescuer@")
        assert sorted(v.quant_type for v in job.outputs.all()) == sorted(TYPES)
        assert Variant.objects.exclude(pk=demo_variant.pk).count() == len(TYPES)
    finally:
        if victim.poll() is None:
            processes.stop(victim)
        if rescuer is not None:
            processes.stop(rescuer)


def test_a_job_lost_too_often_fails_as_lost(teams, demo_variant, settings):
    from django.utils import timezone

    from jobs.services import jobs_reap

    job = Job.objects.create(team=teams["red"], kind="quantize", method="gguf",
                             input_variant=demo_variant, status=Job.Status.RUNNING,
                             attempts=settings.JOB_MAX_ATTEMPTS, worker="gone@node",
                             heartbeat=timezone.now() - timezone.timedelta(minutes=5))
    assert jobs_reap() == [job.pk]
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "stopped sending heartbeats (lost)" in job.error and "gave up after 2" in job.error
