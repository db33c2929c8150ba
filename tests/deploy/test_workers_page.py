"""The Workers page: nodes with their declaration and running jobs, Redis queue lengths, the
runtime server's loaded models — and "unavailable" for what can't be reached."""

import asyncio

import pytest
from planner.templatetags.units import binary_size as filesizeformat  # the pages use binary units
from django.utils import timezone

from jobs.models import Job, Worker
from runtime import client as runtime_client
from engines.base import SamplingParams
from runtime.services import runtime_payload
from tests.support.fixtures import PASSWORD, RUNTIME_ENV
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
    assert "alive" in cpu_row and "gguf, evaluate" in cpu_row and "24.0\xa0GiB" in cpu_row
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


@pytest.mark.slow
def test_runtime_models_are_listed(client, cluster, demo_variant, runtime_server, settings):
    """The session's real runtime server, the demo variant loaded into it by a one-token
    generation through the dashboard's own client: the page shows what its /status says."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.RUNTIME_URL, settings.RUNTIME_TOKEN = runtime_server.url, RUNTIME_ENV["RUNTIME_TOKEN"]
    settings.RUNTIME_N_CTX = int(RUNTIME_ENV["RUNTIME_N_CTX"])  # as the session web server sends
    payload = runtime_payload(variant=demo_variant, files=list(demo_variant.files.all()),
                              request_id="workers-page-load", prompt="Hello",
                              params=SamplingParams(max_tokens=1, temperature=0))

    async def generate_one_token() -> list[dict]:
        generation = await runtime_client.open_generation(payload=payload)
        try:
            return [event async for event in generation.events()]
        finally:
            await generation.aclose()

    events = asyncio.run(generate_one_token())
    assert events[-1]["type"] == "done", events
    runtime_html = _page(client).split('id="runtime"')[1]
    status = runtime_server.status()
    models = {m["variant_id"]: m for m in status["models"]}  # the real server's ids are strings
    assert str(demo_variant.pk) in models, status
    loaded = models[str(demo_variant.pk)]
    assert (loaded["engine"], loaded["format"], loaded["n_ctx"]) == ("llama.cpp", "gguf", 512)
    assert loaded["memory_bytes"] > 50 * 2**20  # a 135M-parameter model at about 4.5 bits
    marker = f"<tr><td>#{demo_variant.pk}</td>"
    assert marker in runtime_html, runtime_html
    row = runtime_html.split(marker)[1].split("</tr>")[0]
    assert row.startswith("<td>llama.cpp</td><td>gguf</td><td>512</td>"
                          f"<td>{filesizeformat(loaded['memory_bytes'])}</td><td>"), row
    assert row.endswith(" s</td>"), row
    assert (f"{filesizeformat(status['memory_used_bytes'])} of "
            f"{filesizeformat(status['memory_budget_bytes'])} in use") in runtime_html


def test_the_jobs_page_links_to_it(client, teams):
    client.login(username="alice", password=PASSWORD)
    assert 'href="/jobs/workers/"' in client.get("/jobs/").content.decode()
