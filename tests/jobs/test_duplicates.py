"""Work whose outputs already exist (same input sha256, method, parameters, tool versions) is
said so in the preview and refused on submit unless "make another copy" is ticked; the preview
shows every warning submitting records (one function, jobs.services.job_check, gives both), and
variant pickers tell identical-looking variants apart."""

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Variant
from jobs import llama_tools
from jobs.models import Job, Worker
from jobs.services import DuplicateOutputs, job_check, job_submit

pytestmark = pytest.mark.django_db

GGUF = {"types": ["Q4_K_M"]}


@pytest.fixture
def worker(db):
    return Worker.objects.create(hostname="cpu@dup", queues=["cpu"], device="cpu",
                                 memory_bytes=24 * 2**30, methods=["gguf"], last_seen=timezone.now())


def _made_before(teams, demo_variant, *, llama_version: str) -> Variant:
    """A finished GGUF job on the demo input and the variant it registered (as the runner does)."""
    cleaned = job_check(team=teams["red"], method="gguf", params=GGUF, input_variant=demo_variant,
                        route=False).cleaned
    job = Job.objects.create(team=teams["red"], kind="quantize", method="gguf", params=cleaned,
                             input_variant=demo_variant, status=Job.Status.SUCCEEDED)
    variant = Variant.objects.create(model=demo_variant.model, parent=demo_variant, format="gguf",
                                     quant_type="Q4_K_M", params={"type": "Q4_K_M", "job": job.pk},
                                     tool_versions={"llama.cpp": llama_version})
    job.outputs.add(variant)
    return variant


def _preview(client, variant, **extra) -> str:
    return client.get("/jobs/new/placement", {"variant": variant.pk, "method": "gguf",
                                              "types": "Q4_K_M", **extra}).content.decode()


def test_an_identical_job_is_refused_naming_the_variants_it_made(client, teams, demo_variant, worker):
    made = _made_before(teams, demo_variant, llama_version=llama_tools.version())
    client.force_login(teams["alice"])
    html = _preview(client, demo_variant)
    assert "Can't run: an identical job (same input sha256, method, parameters and tool versions)" in html
    assert 'id="existing-outputs"' in html and f"#{made.pk} GGUF Q4_K_M</a> · from #{demo_variant.pk}" in html
    with pytest.raises(DuplicateOutputs) as info:
        job_submit(team=teams["red"], user=teams["alice"], method="gguf", params=GGUF,
                   input_variant=demo_variant)
    assert info.value.existing == [made]
    response = client.post("/jobs/new", {"variant": demo_variant.pk, "method": "gguf", "types": "Q4_K_M"})
    page = response.content.decode()
    assert response.status_code == 200 and Job.objects.count() == 1
    # Once, on the checkbox, naming the variant (the page works without the preview's script).
    assert page.count('<p class="error">an identical job (same input sha256') == 1
    assert f"already made these outputs: #{made.pk} GGUF Q4_K_M (from #{demo_variant.pk}, made" in page

    # Ticked: a warning in the preview, and the job is made.
    html = _preview(client, demo_variant, another_copy="on")
    assert f"makes another copy of #{made.pk} GGUF Q4_K_M" in html and "placement-error" not in html
    response = client.post("/jobs/new", {"variant": demo_variant.pk, "method": "gguf",
                                         "types": "Q4_K_M", "another_copy": "on"})
    assert response.status_code == 302 and Job.objects.count() == 2


def test_outputs_of_other_tool_versions_or_parameters_are_not_duplicates(teams, demo_variant, worker):
    _made_before(teams, demo_variant, llama_version="llama.cpp b1234 (an older build)")
    job_submit(team=teams["red"], user=teams["alice"], method="gguf", params=GGUF,
               input_variant=demo_variant)
    assert job_check(team=teams["red"], method="gguf", params={"types": ["Q8_0"]},
                     input_variant=demo_variant).existing == []


def test_the_preview_shows_the_warning_the_job_records(client, teams, demo_variant, worker):
    client.force_login(teams["alice"])
    html = _preview(client, demo_variant)
    assert 'id="placement-warnings"' in html
    assert "requantizing a Q4_1 GGUF: errors compound" in html
    client.post("/jobs/new", {"variant": demo_variant.pk, "method": "gguf", "types": "Q4_K_M"})
    assert Job.objects.get().params["warning"].startswith("requantizing a Q4_1 GGUF: errors compound")


def test_variant_pickers_show_id_parent_and_when_made(client, teams, demo_variant, worker):
    made = _made_before(teams, demo_variant, llama_version="old")
    client.force_login(teams["alice"])
    for url in ("/jobs/new", "/jobs/new?method=imatrix"):
        html = client.get(url).content.decode()
        when = timezone.localtime(made.created_at).strftime("%Y-%m-%d %H:%M")
        assert (f'<option value="{made.pk}">#{made.pk} SmolLM2-135M-Instruct [GGUF Q4_K_M] · '
                f'from #{demo_variant.pk} · made {when}</option>') in html
        assert f"#{demo_variant.pk} SmolLM2-135M-Instruct [GGUF Q4_1] · imported" in html


def test_the_preview_says_once_that_no_worker_of_the_queue_is_up(client, teams, demo_variant, worker):
    Worker.objects.filter(pk=worker.pk).update(last_seen=timezone.now() - timedelta(hours=1))
    client.force_login(teams["alice"])
    html = _preview(client, demo_variant)
    assert html.count("is up right now") == 1
    assert "no worker of queue cpu is up right now: the job waits" in html
