"""bitsandbytes NF4 and GPTQ as jobs on a real worker: submitted for an HF variant, run in the
job's child process, registered as child variants with their parameters, and loadable from the
catalog's folder. A tiny random Llama with the demo's tokenizer keeps each job to seconds; what the
methods make of the real demo model is tests/jobs/methods/test_bnb.py and test_gptq.py."""

import pytest

from jobs.models import Job, Worker
from jobs.services import job_submit
from tests.support.processes import WIKITEXT, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tiny_variant(teams, tiny_chat_hf):
    from catalog.imports import import_hf_folder

    return import_hf_folder(team_id=teams["red"].pk, user_id=teams["alice"].pk,
                            folder=str(tiny_chat_hf), name="tiny-chat")


def run(teams, method: str, variant, params: dict, timeout: float = 180) -> Job:
    # A transactional test flushed the table; the worker's next heartbeat (1 s) declares it again.
    wait_until(lambda: Worker.objects.filter(hostname__startswith="test-worker@").exists(), 10,
               what="the worker's heartbeat row")
    job = job_submit(team=teams["red"], user=teams["alice"], method=method, params=params,
                     input_variant=variant)
    wait_until(lambda: Job.objects.get(pk=job.pk).is_final, timeout, interval=0.5,
               what=f"{method} job")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{job.log_tail[-3000:]}"
    assert (job.progress, job.stage) == (100, "done")
    return job


def test_an_nf4_job_registers_a_loadable_child_variant(teams, tiny_variant, celery_worker):
    from transformers import AutoModelForCausalLM

    job = run(teams, "bnb-nf4", tiny_variant, {"double_quant": True})
    [nf4] = job.outputs.all()
    assert (nf4.format, nf4.quant_type, nf4.parent_id) == ("bnb-nf4", "nf4-dq", tiny_variant.pk)
    assert nf4.params["job"] == job.pk and nf4.tool_versions["bitsandbytes"]
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {f.path for f in nf4.files.all()}
    model = AutoModelForCausalLM.from_pretrained(str(nf4.directory), device_map="cpu")
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"


def test_a_gptq_job_calibrates_on_a_catalog_dataset(teams, tiny_variant, celery_worker):
    from catalog.datasets import dataset_upload
    from gptqmodel import GPTQModel

    dataset = dataset_upload(team_id=teams["red"].pk, user_id=teams["alice"].pk,
                             path=str(WIKITEXT / "valid.txt"), name="wikitext-2 valid")
    job = run(teams, "gptq", tiny_variant, {"bits": 4, "group_size": 64, "dataset": dataset.pk,
                                            "samples": 4, "seq_len": 32})
    [gptq] = job.outputs.all()
    assert (gptq.format, gptq.quant_type, gptq.parent_id) == ("gptq", "4bit-g64", tiny_variant.pk)
    assert gptq.params["dataset"] == dataset.pk
    assert gptq.params["metrics"]["calibration_tokens"] == 4 * 32
    model = GPTQModel.load(str(gptq.directory), device="cpu")
    assert type(model.model.model.layers[0].self_attn.q_proj).__name__ != "Linear"
