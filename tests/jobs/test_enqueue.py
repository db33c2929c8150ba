"""A job submitted while Redis is down is saved and sent once the broker is back."""

import pytest
import redis
from django.utils import timezone

from jobs.models import Job, Worker
from jobs.services import job_submit, jobs_reap

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_job_submitted_with_redis_down_is_sent_by_the_reaper(teams, demo_variant, redis_running):
    Worker.objects.create(hostname="cpu@n1", queues=["cpu"], methods=["gguf"],
                          memory_bytes=24 * 2**30, last_seen=timezone.now())
    client = redis.Redis.from_url(redis_running.url)
    client.delete("cpu")
    redis_running.stop()
    try:
        job = job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                         params={"types": ["Q8_0"]}, input_variant=demo_variant)
        job.refresh_from_db()
        assert job.status == Job.Status.QUEUED and job.needs_enqueue is True
        assert jobs_reap() == []  # still down: nothing sent, the flag stays
        assert Job.objects.get(pk=job.pk).needs_enqueue is True
    finally:
        redis_running.start()
    assert jobs_reap() == [job.pk]
    assert Job.objects.get(pk=job.pk).needs_enqueue is False
    assert client.llen("cpu") == 1  # the message is on the queue now
    client.delete("cpu")
