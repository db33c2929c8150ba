"""Scenario 4: Redis restarted while a job runs and another waits in its queue. The queue
survives (append-only file), the worker reconnects and runs the waiting job, and no job is left
"running"."""

import time

import pytest
import redis

from jobs.models import Job, Worker
from jobs.services import job_submit
from tests.reliability.conftest import WorkerProcess, record
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_4_redis_restart_mid_job_loses_no_queued_job(teams, demo_variant, redis_running,
                                                     django_db_blocker):
    worker = WorkerProcess(django_db_blocker, "redis-restart@%h").start()
    try:
        wait_until(lambda: Worker.objects.filter(hostname__startswith="redis-restart@").exists(), 10)
        submit = lambda types: job_submit(team=teams["red"], user=teams["alice"], method="gguf",  # noqa: E731
                                          params={"types": types}, input_variant=demo_variant)
        running, waiting = submit(["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M"]), submit(["Q2_K"])
        wait_until(lambda: Job.objects.get(pk=running.pk).progress > 5, 90, what="the first job")
        broker = redis.Redis.from_url(redis_running.url)
        assert broker.llen("cpu") == 1, "the second job waits in Redis"

        connected = lambda: worker.log.read_text(errors="replace").count("Connected to redis://")  # noqa: E731
        before = connected()
        redis_running.stop()  # SIGTERM: Redis flushes its append-only file
        time.sleep(2)
        redis_running.start()
        back = time.monotonic()
        # The message is still queued, or the reconnected worker already took it (the job's row
        # leaves "queued"): a first job that ended while Redis was down leaves the worker free to
        # take it the moment Redis is back. Lost, it would be neither, and the row stays queued.
        after = redis.Redis.from_url(redis_running.url)
        wait_until(lambda: after.llen("cpu") == 1
                   or Job.objects.get(pk=waiting.pk).status != Job.Status.QUEUED, 5, interval=0.05,
                   what="the queued job's message after the restart (the queue survived)")
        wait_until(lambda: connected() > before, 60, interval=0.1, what="the worker to reconnect")
        wait_until(lambda: Job.objects.get(pk=waiting.pk).status != Job.Status.QUEUED, 60,
                   interval=0.2, what="the worker to take the queued job")
        taken_s = time.monotonic() - back
        first_done = Job.objects.get(pk=running.pk).finished_at
        wait_until(lambda: not Job.objects.filter(status__in=["queued", "running"]).exists(), 120,
                   interval=0.5, what="both jobs to finish")
        for job in (running, waiting):
            job.refresh_from_db()
            assert job.status == Job.Status.SUCCEEDED and job.attempts == 1, (job.pk, job.error)
        unacked = redis.Redis.from_url(redis_running.url).hlen("unacked")
        record(4, "redis restart", f"queued job survived the restart and started {taken_s:.1f} s after "
               f"Redis came back (when the running job ended: {first_done is not None}); 2/2 jobs succeeded (attempts 1), 0 left running; {unacked} stale "
               "unacked message(s) whose later re-delivery is a no-op claim")
    finally:
        worker.stop()
