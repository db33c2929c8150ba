"""The Workers page: nodes with their declaration and running jobs, Redis queue lengths, the
runtime server's loaded models — and "unavailable" for what can't be reached."""

import pytest
from django.utils import timezone

from jobs.models import Job, Worker
from tests.support.fixtures import PASSWORD
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster(teams, demo_variant):
    Worker.objects.create(hostname="cpu@n1", queues=["cpu", "node.cpu@n1"], device="cpu",
                          memory_bytes=24 * 2**30, methods=["gguf", "evaluate"],
                          last_seen=timezone.now())
    Worker.objects.create(hostname="gpu@n2", queues=["gpu", "node.gpu@n2"], device="cuda",
                          device_name="NVIDIA H100", memory_bytes=80 * 2**30, methods=["gptq"],
                          last_seen=timezone.now() - timezone.timedelta(hours=1))
    red = Job.objects.create(team=teams["red"], kind="quantize", method="gguf", worker="cpu@n1",
                             status=Job.Status.RUNNING, input_variant=demo_variant)
    blue = Job.objects.create(team=teams["blue"], kind="import", method="import-hub",
                              worker="cpu@n1", status=Job.Status.RUNNING)
    return red, blue


def _page(client, user="alice"):
    client.login(username=user, password=PASSWORD)
    response = client.get("/jobs/workers/")
    assert response.status_code == 200
    return response.content.decode()


def test_workers_show_their_declaration_state_and_running_jobs(client, cluster, settings):
    settings.RUNTIME_URL = f"http://127.0.0.1:{free_port()}"
    red, blue = cluster
    html = _page(client)
    cpu_row = html.split('data-worker="cpu@n1"')[1].split("</tr>")[0]
    assert "alive" in cpu_row and "gguf, evaluate" in cpu_row and "24.0\xa0GB" in cpu_row
    # Both jobs count; only the one alice's team may see is linked.
    assert f'href="/jobs/{red.pk}/"' in cpu_row and f"/jobs/{blue.pk}/" not in cpu_row
    assert '<td class="running">2' in cpu_row
    gpu_row = html.split('data-worker="gpu@n2"')[1].split("</tr>")[0]
    assert "silent since" in gpu_row and "cuda (NVIDIA H100)" in gpu_row


def test_queue_lengths_come_from_redis(client, cluster, redis_running, settings):
    import redis

    settings.RUNTIME_URL = f"http://127.0.0.1:{free_port()}"
    r = redis.Redis.from_url(settings.REDIS_URL)
    r.delete("cpu", "gpu", "node.cpu@n1", "cpu\x06\x163")
    r.rpush("cpu", "a", "b")
    r.rpush("cpu\x06\x163", "c")  # a message with a priority lives in its own list
    r.rpush("node.cpu@n1", "d")
    try:
        html = _page(client)
    finally:
        r.delete("cpu", "node.cpu@n1", "cpu\x06\x163")
    row = lambda name: html.split(f'data-queue="{name}"')[1].split("</tr>")[0]  # noqa: E731
    assert '<td class="length">3</td>' in row("cpu")
    assert '<td class="length">1</td>' in row("node.cpu@n1")
    assert '<td class="length">0</td>' in row("gpu") and "gpu@n2" in row("gpu")


def test_redis_and_runtime_down_show_unavailable(client, cluster, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.RUNTIME_URL = f"http://127.0.0.1:{free_port()}"
    html = _page(client)
    assert "Redis unavailable" in html
    assert '<td class="length">unavailable</td>' in html.split('data-queue="cpu"')[1].split("</tr>")[0]
    assert "<strong>unavailable</strong>" in html.split('id="runtime"')[1]


def test_runtime_models_are_listed(client, cluster, monkeypatch, settings):
    import runtime.client

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setattr(runtime.client, "status_sync", lambda timeout=1.0: {
        "models": [{"variant_id": 7, "format": "gguf", "engine": "llamacpp", "n_ctx": 2048,
                    "estimated_bytes": 2**27, "memory_bytes": 2**27, "idle_seconds": 3.5}],
        "loading": [], "queues": {}, "memory_budget_bytes": 4 * 2**30,
        "memory_used_bytes": 2**27, "max_concurrent": 1, "queue": 2})
    runtime_html = _page(client).split('id="runtime"')[1]
    assert "#7" in runtime_html and "llamacpp" in runtime_html and "3.5 s" in runtime_html


def test_the_jobs_page_links_to_it(client, teams):
    client.login(username="alice", password=PASSWORD)
    assert 'href="/jobs/workers/"' in client.get("/jobs/").content.decode()
