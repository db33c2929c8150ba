"""A running job stops within about a second of its cancel even when heartbeats are far apart:
the runner reads the cancel flag on every poll of the child (jobs/runner.py, _watch), not only
with the heartbeat. (Cancel's other guarantees are scenario 6, tests/reliability/test_job_faults.py.)"""

import os
import time

import pytest

from jobs.models import Job
from jobs.services import job_cancel, job_submit
from quantdash import node
from tests.support.fixtures import start_worker_and_wait, stop_worker_and_forget
from tests.support.processes import job_children, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
HEARTBEAT = 30  # seconds: far longer than the stop the test allows


@pytest.fixture
def slow_heartbeat_worker(redis_server, django_db_blocker, session_dir):
    process = start_worker_and_wait(django_db_blocker, session_dir, "slowbeat@%h",
                                    JOB_HEARTBEAT_SECONDS=str(HEARTBEAT),
                                    JOB_LOST_SECONDS=str(4 * HEARTBEAT))
    yield process
    stop_worker_and_forget(django_db_blocker, process, "slowbeat@%h")


def test_a_cancel_stops_a_running_job_within_a_second_between_heartbeats(
        teams, demo_variant, slow_heartbeat_worker):
    job = job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                     params={"types": ["Q8_0", "Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M", "Q3_K_M"]},
                     input_variant=demo_variant)
    wait_until(lambda: job_children(job.pk), 60, what="the job's child process")
    # The child runs at the worker's low priority, marked as running on this node for the runtime.
    [child] = job_children(job.pk)
    assert os.getpriority(os.PRIO_PROCESS, child) == 19
    wait_until(lambda: job.pk in node.running_jobs(), 5, what="the job's node marker")
    # The runner's first heartbeat (its first poll) is in, so the next one is HEARTBEAT s away.
    wait_until(lambda: (j := Job.objects.get(pk=job.pk)).heartbeat > j.started_at, 10,
               interval=0.05, what="the runner's first heartbeat")
    asked = time.monotonic()
    job_cancel(job=job)
    wait_until(lambda: Job.objects.get(pk=job.pk).is_final, HEARTBEAT / 2, interval=0.05,
               what="the cancel to take effect")
    took = time.monotonic() - asked
    assert Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED
    assert took < 1.5, f"cancel took {took:.2f} s with heartbeats every {HEARTBEAT} s"
    wait_until(lambda: not job_children(job.pk), 5, what="the job's process to exit")
    assert job.pk not in node.running_jobs()
