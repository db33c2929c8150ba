"""Scenario 5: a job past its soft time limit (SIGTERM, then SIGKILL at the hard limit) or its
hard time limit (SIGKILL) fails as timed out, and its processes, work folder and outputs are gone.
The limits are the methods' real ones, shrunk through JOB_TIME_LIMIT_OVERRIDES."""

import json

import pytest

from catalog.models import Variant
from jobs.models import Job, Worker
from jobs.services import job_submit
from tests.support.processes import job_children
from tests.reliability.conftest import WorkerProcess, record, temp_entries
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
LIMITS = {"gguf": [3, 600], "hf-from-gguf": [3, 3]}


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, redis_server):
    worker = WorkerProcess(django_db_blocker, "limits@%h",
                           JOB_TIME_LIMIT_OVERRIDES=json.dumps(LIMITS)).start()
    yield worker
    worker.stop()


@pytest.mark.parametrize("method, params, which", [
    ("gguf", {"types": ["Q8_0", "Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M", "Q3_K_M"]}, "soft"),
    ("hf-from-gguf", {"dtype": "float16"}, "hard"),
])
def test_5_a_job_past_its_time_limit_fails_as_timed_out_and_is_cleaned_up(
        teams, demo_variant, worker, method, params, which):
    wait_until(lambda: Worker.objects.filter(hostname__startswith="limits@").exists(), 10)
    job = job_submit(team=teams["red"], user=teams["alice"], method=method, params=params,
                     input_variant=demo_variant)
    wait_until(lambda: Job.objects.get(pk=job.pk).is_final, 60, interval=0.1,
               what="the time limit to end the job")
    job.refresh_from_db()
    limit = LIMITS[method][0 if which == "soft" else 1]
    assert job.status == Job.Status.FAILED
    assert job.error == f"timed out: {which} time limit of {limit} s", job.error
    took = (job.finished_at - job.started_at).total_seconds()
    assert took < limit + 6  # the soft limit's grace is 5 s at most
    assert not job_children(job.pk)
    assert Variant.objects.exclude(pk=demo_variant.pk).count() == 0
    wait_until(lambda: not temp_entries(), 5, what="the work folder to be removed")
    record(5, f"{which} time limit", f"{method} job failed \"timed out\" {took:.1f} s after it "
           f"started ({which} limit {limit} s); 0 processes, 0 variants, 0 temp files left")
