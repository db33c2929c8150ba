"""Scenarios 1 and 6: a job's process killed with SIGKILL, and cancels of queued and running jobs,
also across a worker killed and started again. One real Celery worker for the module."""

import os
import signal
import time

import pytest
from django.conf import settings

from catalog.models import Variant
from jobs.models import Job, Worker
from jobs.services import job_cancel, job_submit
from tests.support.processes import job_children
from tests.reliability.conftest import WorkerProcess, record, temp_entries
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
# Long enough on 2 cores (~2 s per type) to be caught mid-run.
TYPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M", "Q3_K_M"]
HOST = "faults@%h"


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, redis_server):
    worker = WorkerProcess(django_db_blocker, HOST).start()
    yield worker
    worker.stop()


def submit(teams, variant, types) -> Job:
    # A transactional test flushed the table; the worker's next heartbeat (1 s) declares it again.
    wait_until(lambda: Worker.objects.filter(hostname__startswith="faults@").exists(), 10,
               what="the worker's heartbeat row")
    return job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                      params={"types": types}, input_variant=variant)


def running_child(job: Job) -> list[int]:
    return wait_until(lambda: Job.objects.get(pk=job.pk).progress > 5 and job_children(job.pk),
                      90, what=f"job {job.pk}'s child process to be working")


def log_says_unclaimable(worker: WorkerProcess, job: Job) -> bool:
    return f"job {job.pk} was not claimable" in worker.log.read_text(errors="replace")


def test_1_killed_child_fails_the_job_within_three_heartbeats(teams, demo_variant, worker):
    job = submit(teams, demo_variant, TYPES)
    [pid] = running_child(job)
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    beats = 3 * settings.JOB_HEARTBEAT_SECONDS
    wait_until(lambda: Job.objects.get(pk=job.pk).status != Job.Status.RUNNING, beats + 5,
               interval=0.05, what="the runner to notice its child died")
    took = time.monotonic() - killed
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED, job.status
    assert "killed by SIGKILL" in job.error, job.error
    assert took <= beats, f"{took:.1f} s"
    assert job.outputs.count() == 0 and Variant.objects.exclude(pk=demo_variant.pk).count() == 0
    wait_until(lambda: not temp_entries(), 5, what="the work folder to be removed")
    record(1, "child kill -9", f"job failed {took:.2f} s after the kill (limit: 3 heartbeats = "
           f"{beats} s), 0 variants, 0 temp files")


def test_6_cancels_of_queued_and_running_jobs_hold_across_a_worker_restart(
        teams, demo_variant, worker):
    # Running: stops within seconds and leaves nothing.
    running = submit(teams, demo_variant, TYPES)
    running_child(running)
    queued = submit(teams, demo_variant, ["Q2_K"])  # the worker (concurrency 1) is busy
    job_cancel(job=queued)
    asked = time.monotonic()
    job_cancel(job=running)
    wait_until(lambda: Job.objects.get(pk=running.pk).is_final, 10, interval=0.05,
               what="the running job to stop")
    stop_s = time.monotonic() - asked
    wait_until(lambda: not job_children(), 5, what="the job's processes to exit")
    # Queued: the worker takes its message afterwards and must not run it.
    wait_until(lambda: log_says_unclaimable(worker, queued), 30, what="the cancelled message")
    for job, status in ((running, Job.Status.CANCELLED), (queued, Job.Status.CANCELLED)):
        job.refresh_from_db()
        assert job.status == status, (job.pk, job.status, job.error)
    assert queued.attempts == 0 and queued.started_at is None
    assert stop_s < 5, f"{stop_s:.1f} s"

    # Across a restart: a job cancelled while its worker is dead never runs again, and a job
    # queued and cancelled while no worker runs never starts once one is back.
    victim = submit(teams, demo_variant, TYPES)
    running_child(victim)
    worker.kill()
    wait_until(lambda: not job_children(), 5, what="the job's process to die with its worker")
    job_cancel(job=victim)  # still "running" in the row: only flagged
    waiting = submit(teams, demo_variant, ["Q2_K"])
    job_cancel(job=waiting)
    restarted = time.monotonic()
    worker.start()
    wait_until(lambda: Job.objects.get(pk=victim.pk).is_final, settings.JOB_LOST_SECONDS + 15,
               interval=0.2, what="the reaper to settle the dead worker's cancelled job")
    wait_until(lambda: log_says_unclaimable(worker, waiting), 30, what="the cancelled message")
    settled_s = time.monotonic() - restarted
    victim.refresh_from_db()
    waiting.refresh_from_db()
    assert victim.status == Job.Status.CANCELLED and victim.attempts == 1, (victim.status, victim.error)
    assert waiting.status == Job.Status.CANCELLED and waiting.attempts == 0
    assert not job_children()
    assert Variant.objects.exclude(pk=demo_variant.pk).count() == 0
    wait_until(lambda: not temp_entries(), 5, what="work folders to be removed")
    record(6, "cancel", f"running job stopped {stop_s:.2f} s after cancel; queued job never started "
           f"(0 attempts); across kill -9 + restart: cancelled job not retried, settled "
           f"{settled_s:.1f} s after restart; 0 variants, 0 temp files")
