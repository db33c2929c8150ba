"""The jobs API and CLI offer what the web form offers: "make another copy" of outputs an identical
job already made (refused without it, naming those variants), and the same GPTQ calibration
defaults (16 samples × 256 tokens, one constant in jobs.methods.gptq)."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from catalog.models import Model, Variant
from jobs import llama_tools
from jobs.forms import JobForm
from jobs.methods import gptq
from jobs.models import Job, Worker
from jobs.services import job_check
from tests.jobs.methods.factories import SMOLLM2_CONFIG
from tests.support.processes import WIKITEXT

pytestmark = pytest.mark.django_db

GGUF = {"types": ["Q4_K_M"]}


@pytest.fixture
def alice(client, teams):
    client.force_login(teams["alice"])
    Worker.objects.create(hostname="cpu@parity", queues=["cpu"], device="cpu", memory_bytes=24 * 2**30,
                          methods=["gguf", "gptq"], last_seen=timezone.now())
    return client


@pytest.fixture
def made(teams, demo_variant):
    """A finished GGUF Q4_K_M job on the demo input and the variant it registered."""
    cleaned = job_check(team=teams["red"], method="gguf", params=GGUF, input_variant=demo_variant,
                        route=False).cleaned
    job = Job.objects.create(team=teams["red"], kind="quantize", method="gguf", params=cleaned,
                             input_variant=demo_variant, status=Job.Status.SUCCEEDED)
    variant = Variant.objects.create(model=demo_variant.model, parent=demo_variant, format="gguf",
                                     quant_type="Q4_K_M", params={"type": "Q4_K_M", "job": job.pk},
                                     tool_versions={"llama.cpp": llama_tools.version()})
    job.outputs.add(variant)
    return variant


def _post(client, body):
    return client.post("/api/jobs/", data=json.dumps(body), content_type="application/json")


def test_the_api_refuses_a_duplicate_naming_what_exists_unless_another_copy(alice, demo_variant, made):
    body = {"variant": demo_variant.pk, "method": "gguf", "params": GGUF}
    response = _post(alice, body)
    assert response.status_code == 409, response.content
    error = response.json()["errors"]["another_copy"]
    assert f"#{made.pk} GGUF Q4_K_M (from #{demo_variant.pk}, made" in error
    assert error.startswith("an identical job (same input sha256, method, parameters and tool versions)")
    assert Job.objects.count() == 1

    response = _post(alice, {**body, "another_copy": True})
    assert response.status_code == 201, response.content
    assert Job.objects.count() == 2 and response.json()["status"] == "queued"


def test_the_cli_refuses_a_duplicate_naming_what_exists_unless_another_copy(alice, demo_variant, made, capsys):
    args = ["quantize", str(demo_variant.pk), "--method", "gguf", "--types", "Q4_K_M"]
    with pytest.raises(CommandError) as info:
        call_command(*args)
    assert f"#{made.pk} GGUF Q4_K_M (from #{demo_variant.pk}" in str(info.value)
    assert Job.objects.count() == 1

    call_command(*args, "--another-copy")
    job = Job.objects.latest("pk")
    assert Job.objects.count() == 2 and job.status == Job.Status.QUEUED
    assert capsys.readouterr().out.startswith(f"job {job.pk}: queued")


def test_gptq_calibration_defaults_are_the_same_for_form_api_and_cli(alice, teams):
    assert (gptq.DEFAULT_SAMPLES, gptq.DEFAULT_SEQ_LEN) == (16, 256)
    fields = JobForm.base_fields
    assert (fields["samples"].initial, fields["seq_len"].initial) == (16, 256)

    model = Model.objects.create(team=teams["red"], name="SmolLM2-135M", config=SMOLLM2_CONFIG)
    variant = Variant.objects.create(model=model, format="hf", quant_type="f32")
    params = {"group_size": 64, "dataset_path": str(WIKITEXT / "valid.txt")}
    response = _post(alice, {"variant": variant.pk, "method": "gptq", "params": params})
    assert response.status_code == 201, response.content
    assert (response.json()["params"]["samples"], response.json()["params"]["seq_len"]) == (16, 256)

    call_command("quantize", str(variant.pk), "--method", "gptq", "--group-size", "64",
                 "--dataset", params["dataset_path"], "--another-copy")
    cli = Job.objects.latest("pk")
    assert (cli.params["samples"], cli.params["seq_len"]) == (16, 256)
