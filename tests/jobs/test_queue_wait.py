"""A queued job says why it waits: its place in its queue, the jobs ahead of it, what runs on the
queue's workers and where, or that no worker of its queue is up."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, Worker

pytestmark = pytest.mark.django_db


def _job(team, variant, status=Job.Status.QUEUED, **kw) -> Job:
    return Job.objects.create(team=team, kind="quantize", method="gguf", params={"types": ["Q8_0"]},
                              input_variant=variant, queue="cpu", status=status, **kw)


def test_a_queued_job_names_its_place_what_runs_and_where(client, teams, demo_variant):
    Worker.objects.create(hostname="cpu@node1", queues=["cpu", "node.cpu@node1"], methods=["gguf"],
                          last_seen=timezone.now())
    running = _job(teams["red"], demo_variant, Job.Status.RUNNING, worker="cpu@node1", progress=42.4)
    _job(teams["blue"], None)
    ahead = _job(teams["red"], demo_variant)
    mine = _job(teams["red"], demo_variant)
    client.force_login(teams["alice"])
    html = client.get(f"/jobs/{mine.pk}/").content.decode()
    # The running job has left the queue: it is not counted ahead, but named with its node.
    assert (f'id="queue-wait">3rd in queue cpu; waiting behind a job of another team, '
            f'#{ahead.pk} Quantize to GGUF; running now: #{running.pk} Quantize to GGUF on '
            f'cpu@node1 (42 %)</p>') in html
    listing = client.get("/jobs/").content.decode()
    assert (f'<tr data-job="{ahead.pk}">' in listing
            and "2nd in queue cpu; waiting behind a job of another team; running now" in listing)
    assert 'queue-wait">' not in client.get(f"/jobs/{running.pk}/").content.decode()


def test_a_queued_job_with_no_live_worker_says_so(client, teams, demo_variant):
    Worker.objects.create(hostname="cpu@gone", queues=["cpu"], methods=["gguf"],
                          last_seen=timezone.now() - timedelta(hours=1))
    job = _job(teams["red"], demo_variant)
    client.force_login(teams["alice"])
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert ('next in queue cpu; no worker of this queue is up (cpu@gone silent): it starts when '
            'one comes back') in html
