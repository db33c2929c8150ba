"""The Job state machine: every transition is a conditional update that only one caller wins."""

import pytest

from jobs import lifecycle
from jobs.models import Job

pytestmark = pytest.mark.django_db
S = Job.Status


@pytest.fixture
def job(teams, demo_variant):
    return Job.objects.create(team=teams["red"], kind="quantize", method="gguf",
                              input_variant=demo_variant, params={"types": ["Q8_0"]})


def test_a_job_is_claimed_once(job):
    assert lifecycle.claim(job_id=job.pk, worker="w1") is True
    assert lifecycle.claim(job_id=job.pk, worker="w2") is False  # a duplicate delivery
    job.refresh_from_db()
    assert (job.status, job.worker, job.attempts) == (S.RUNNING, "w1", 1)
    assert job.started_at is not None and job.heartbeat is not None


def test_finish_refuses_a_non_final_state(job):
    lifecycle.claim(job_id=job.pk, worker="w1")
    with pytest.raises(ValueError, match="final"):
        lifecycle.finish(job_id=job.pk, status=S.RUNNING)


def test_finish_happens_once(job):
    lifecycle.claim(job_id=job.pk, worker="w1")
    assert lifecycle.finish(job_id=job.pk, status=S.SUCCEEDED) is True
    assert lifecycle.finish(job_id=job.pk, status=S.FAILED, error="late") is False
    job.refresh_from_db()
    assert (job.status, job.progress, job.error) == (S.SUCCEEDED, 100.0, "")


def test_a_cancelled_queued_job_can_never_be_claimed(job):
    assert lifecycle.cancel_queued(job_id=job.pk) is True
    assert lifecycle.claim(job_id=job.pk, worker="w1") is False
    job.refresh_from_db()
    assert job.status == S.CANCELLED and job.finished_at is not None


def test_report_stops_once_the_job_is_final(job):
    lifecycle.claim(job_id=job.pk, worker="w1")
    assert lifecycle.report(job_id=job.pk, progress=42, stage="quantize Q8_0") is True
    lifecycle.finish(job_id=job.pk, status=S.CANCELLED)
    assert lifecycle.report(job_id=job.pk, progress=50) is False
    job.refresh_from_db()
    assert job.progress == 42 and job.stage == "quantize Q8_0"


def test_progress_is_clamped_and_the_log_tail_bounded(job):
    lifecycle.claim(job_id=job.pk, worker="w1")
    lifecycle.report(job_id=job.pk, progress=140, log_tail="x" * 20000)
    job.refresh_from_db()
    assert job.progress == 100
    assert len(job.log_tail) == lifecycle.LOG_TAIL_CHARS
