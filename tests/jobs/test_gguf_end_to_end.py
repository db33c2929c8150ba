"""GGUF quantization through a real Redis and a real Celery worker, results loaded by llama.cpp."""

import pytest

from formats.digest import file_sha256
from jobs.models import Job
from jobs.services import job_submit
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_final(job: Job, timeout: float) -> Job:
    wait_until(lambda: Job.objects.get(pk=job.pk).is_final, timeout, interval=0.5,
               what=f"job {job.pk} to finish")
    job.refresh_from_db()
    return job


def generate(path: str) -> str:
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=256, n_threads=2, seed=1, verbose=False)
    out = llm("The capital of France is", max_tokens=8, temperature=0)
    return out["choices"][0]["text"]


def test_gguf_matrix_job_registers_variants_that_load_and_generate(teams, demo_variant, celery_worker):
    job = job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                     params={"types": ["Q8_0", "Q4_K_M"]}, input_variant=demo_variant)
    job = wait_final(job, 180)
    assert job.status == Job.Status.SUCCEEDED, job.error + job.log_tail[-2000:]
    assert job.worker.startswith("test-worker@")
    assert job.progress == 100

    outputs = {v.quant_type: v for v in job.outputs.all()}
    assert set(outputs) == {"Q8_0", "Q4_K_M"}
    for qtype, variant in outputs.items():
        assert variant.parent_id == demo_variant.pk  # requantized from the Q4_1 input
        assert variant.format == "gguf"
        [f] = variant.files.all()
        assert f.sha256 == file_sha256(f.absolute_path)
        # The file is the estimator's tensor bytes plus the demo's 1,785,664-byte header.
        assert f.bytes == job.estimate["output_bytes_by_type"][qtype] + 1_785_664
        assert variant.tool_versions["llama-cpp-python"] == "0.3.36"
        assert "compound" in variant.params["warning"]
        text = generate(str(f.absolute_path))
        assert text.strip(), f"{qtype} generated nothing"
    assert outputs["Q8_0"].bits_per_weight == pytest.approx(8.506, abs=0.001)
    assert outputs["Q4_K_M"].bits_per_weight == pytest.approx(6.165, abs=0.001)
    assert "llama_model_quantize_impl: quant size" in job.log_tail
