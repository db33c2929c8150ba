"""The reaper (jobs.services.jobs_reap) gives up on a job whose heartbeats stopped once it has used
its attempts. A killed worker's job being requeued and run exactly once more is scenario 2,
tests/reliability/test_worker_kill.py."""

import pytest

from jobs.models import Job

pytestmark = pytest.mark.django_db


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
