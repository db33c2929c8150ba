"""GGUF -> HF safetensors from the model page: an hf-from-gguf job (run here as a worker would)
dequantizes the demo GGUF into an `hf` variant whose parent is the GGUF (about 30 s on 2 cores)."""

import pytest
from django.urls import reverse

from catalog.imports import import_gguf_file
from catalog.safety import read_safetensors_header
from catalog.services import demo_model_path
from jobs.methods.base import JobError
from tests.catalog.conftest import run_queued_jobs

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_demo_gguf_becomes_an_f16_hf_child_variant(client, teams, artifacts):
    gguf = import_gguf_file(team_id=teams["red"].pk, user_id=None, path=str(demo_model_path()))
    client.force_login(teams["alice"])
    response = client.post(reverse("jobs:variant-convert", args=[gguf.pk]))
    assert response.status_code == 302 and "/jobs/" in response["Location"]
    [job] = run_queued_jobs()
    assert job.status == "succeeded", job.error
    hf = gguf.children.get()
    assert (hf.format, hf.quant_type, hf.model_id) == ("hf", "F16", gguf.model_id)
    names = {f.path for f in hf.files.all()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    header = read_safetensors_header(hf.directory / "model.safetensors")
    assert header.param_count == gguf.model.param_count == 134_515_008
    assert header.dtype_counts() == {"F16": 134_515_008}
    assert hf.bits_per_weight == 16.0
    config = (hf.directory / "config.json").read_text()
    assert "quantization_config" not in config and "auto_map" not in config


def test_only_gguf_variants_convert(teams, tiny_hf, artifacts):
    from catalog.imports import import_hf_folder

    from jobs.services import job_submit

    hf = import_hf_folder(team_id=teams["red"].pk, user_id=None, folder=str(tiny_hf[0]), name="t")
    with pytest.raises(JobError, match="needs a gguf input"):
        job_submit(team=teams["red"], user=None, method="hf-from-gguf", params={},
                   input_variant=hf)
