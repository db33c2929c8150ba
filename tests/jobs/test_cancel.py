"""Cancelling queued and running jobs on a real worker: stops within seconds, leaves nothing."""

import time
from pathlib import Path

import pytest
from django.conf import settings

from catalog.models import Variant
from jobs.models import Job
from jobs.services import job_cancel, job_submit
from tests.support.processes import job_children, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
# Twelve requantizations of the demo model take ~30 s on 2 cores: long enough to cancel midway.
MANY_TYPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_1",
              "Q4_0", "Q3_K_L", "Q3_K_M"]


def test_cancel_of_a_running_job_stops_it_and_leaves_no_files(teams, demo_variant, celery_worker):
    job = job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                     params={"types": MANY_TYPES}, input_variant=demo_variant)
    wait_until(lambda: Job.objects.get(pk=job.pk).progress > 5, 60, what="the job to make progress")
    workdirs = list((Path(settings.ARTIFACT_ROOT) / "tmp").glob(f"job-{job.pk}-*"))
    assert workdirs, "the running job has a work folder"
    assert job_children(), "the job runs in a child process"

    asked = time.monotonic()
    job_cancel(job=job)
    wait_until(lambda: Job.objects.get(pk=job.pk).is_final, 10, what="the cancel to take effect")
    took = time.monotonic() - asked
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert took < 5, f"cancel took {took:.1f} s"
    assert job.outputs.count() == 0
    assert Variant.objects.exclude(pk=demo_variant.pk).count() == 0
    wait_until(lambda: not any(d.exists() for d in workdirs), 5, what="the work folder to go")
    wait_until(lambda: not job_children(), 5, what="the job's process to exit")


def test_cancel_of_a_queued_job_means_it_never_starts(teams, demo_variant, celery_worker):
    first = job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                       params={"types": MANY_TYPES[:6]}, input_variant=demo_variant)
    wait_until(lambda: Job.objects.get(pk=first.pk).status == Job.Status.RUNNING, 30,
               what="the first job to start")
    second = job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                        params={"types": ["Q2_K"]}, input_variant=demo_variant)
    job_cancel(job=second)  # the worker (concurrency 1) is busy, so this one is still queued
    second.refresh_from_db()
    assert second.status == Job.Status.CANCELLED
    job_cancel(job=first)
    wait_until(lambda: Job.objects.get(pk=first.pk).is_final, 10, what="the first job to stop")
    time.sleep(2)  # the worker now takes the cancelled job's message: it must not run it
    second.refresh_from_db()
    assert second.status == Job.Status.CANCELLED
    assert second.started_at is None and second.attempts == 0
