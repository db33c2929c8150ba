"""Scenario 2: the whole worker killed with SIGKILL mid-job, then started again under the same
name. Its heartbeat's reaper finds the job's heartbeat stale, marks the attempt lost and requeues
it; at most one copy of the job ever runs. Whichever worker's reaper notices first requeues it
(jobs.services.jobs_reap); tests/jobs/test_reap.py covers giving up after the last attempt."""

import threading
import time

import pytest
from django.conf import settings

from catalog.models import Variant
from jobs.models import Job, Worker
from jobs.services import job_submit
from tests.support.processes import job_children
from tests.reliability.conftest import WorkerProcess, record, temp_entries
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TYPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M"]


def test_2_killed_worker_job_is_reaped_and_runs_once_more_after_restart(
        teams, demo_variant, redis_server, django_db_blocker):
    worker = WorkerProcess(django_db_blocker, "phoenix@%h").start()
    copies, sampling = [0], threading.Event()

    def sample() -> None:  # how many processes of this job run at once, every 50 ms
        while not sampling.is_set():
            copies[0] = max(copies[0], len(job_children(job.pk)))
            time.sleep(0.05)

    try:
        wait_until(lambda: Worker.objects.filter(hostname__startswith="phoenix@").exists(), 10)
        job = job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                         params={"types": TYPES}, input_variant=demo_variant)
        threading.Thread(target=sample, daemon=True).start()
        wait_until(lambda: Job.objects.get(pk=job.pk).progress > 5 and job_children(job.pk), 90,
                   what="the job to run")
        worker.kill()
        wait_until(lambda: not job_children(job.pk), 5, what="the job's process to die with it")
        assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING  # nobody knows yet

        worker.start()
        restarted = time.monotonic()
        wait_until(lambda: Job.objects.get(pk=job.pk).attempts == 2, settings.JOB_LOST_SECONDS + 20,
                   interval=0.1, what="the reaper to requeue the job and the worker to take it")
        retried_s = time.monotonic() - restarted
        wait_until(lambda: Job.objects.get(pk=job.pk).is_final, 120, interval=0.5,
                   what="the retried job to finish")
        sampling.set()
        job.refresh_from_db()
        assert job.status == Job.Status.SUCCEEDED, job.error
        assert job.attempts == 2 and job.worker.startswith("phoenix@")
        assert copies[0] == 1, f"{copies[0]} copies of the job ran at once"
        assert sorted(v.quant_type for v in job.outputs.all()) == sorted(TYPES)
        assert Variant.objects.exclude(pk=demo_variant.pk).count() == len(TYPES)
        assert temp_entries() == []
        record(2, "worker kill -9", f"job requeued and restarted {retried_s:.1f} s after the worker "
               f"came back (JOB_LOST_SECONDS={settings.JOB_LOST_SECONDS}); attempts 2, at most "
               f"{copies[0]} copy running, {len(TYPES)} variants registered once, 0 temp files")
    finally:
        sampling.set()
        worker.stop()
