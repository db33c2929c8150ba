"""The demo GGUF → HF safetensors → bitsandbytes NF4 and GPTQ 4-bit g64, each a job on a real
worker, each result loaded back and generating text."""

from pathlib import Path

import pytest

from jobs.models import Job
from jobs.services import job_submit
from tests.support.processes import WIKITEXT, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def run(teams, method: str, variant, params: dict, timeout: float) -> Job:
    job = job_submit(team=teams["red"], user=teams["alice"], method=method, params=params,
                     input_variant=variant)
    wait_until(lambda: Job.objects.get(pk=job.pk).is_final, timeout, interval=1,
               what=f"{method} job")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{job.log_tail[-3000:]}"
    [output] = job.outputs.all()
    return output


def generate_hf(folder: Path) -> str:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, device_map="cpu")
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def test_gguf_to_hf_to_nf4_and_gptq(teams, demo_variant, celery_worker):
    from catalog.datasets import dataset_upload

    hf = run(teams, "hf-from-gguf", demo_variant, {"dtype": "float32"}, 300)
    assert (hf.format, hf.quant_type, hf.parent_id) == ("hf", "F32", demo_variant.pk)
    names = {f.path for f in hf.files.all()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names

    nf4 = run(teams, "bnb-nf4", hf, {"double_quant": True}, 300)
    assert (nf4.format, nf4.parent_id) == ("bnb-nf4", hf.pk)
    assert generate_hf(nf4.directory).strip()

    dataset = dataset_upload(team_id=teams["red"].pk, user_id=teams["alice"].pk,
                             path=str(WIKITEXT / "valid.txt"), name="wikitext-2 valid")
    gptq = run(teams, "gptq", hf, {"bits": 4, "group_size": 64, "dataset": dataset.pk,
                                   "samples": 4, "seq_len": 32}, 900)
    assert (gptq.format, gptq.parent_id) == ("gptq", hf.pk)
    assert gptq.params["dataset"] == dataset.pk
    job = gptq.made_by_jobs.get()
    assert job.progress == 100 and job.stage == "done"

    from gptqmodel import GPTQModel
    from transformers import AutoTokenizer

    model = GPTQModel.load(str(gptq.directory), device="cpu")
    tokenizer = AutoTokenizer.from_pretrained(gptq.directory)
    ids = tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    out = model.generate(input_ids=ids, max_new_tokens=6, do_sample=False)
    assert tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
