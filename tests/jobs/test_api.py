import json

import pytest
from django.test import Client
from django.utils import timezone

from jobs.models import Job, Worker

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client, teams):
    client.force_login(teams["alice"])
    Worker.objects.create(hostname="cpu@n1", queues=["cpu"], methods=["gguf"],
                          memory_bytes=24 * 2**30, last_seen=timezone.now())
    return client


def _post(client, url, body):
    return client.post(url, data=json.dumps(body) if not isinstance(body, str) else body,
                       content_type="application/json")


def test_submit_read_and_cancel_a_job(alice, demo_variant):
    response = _post(alice, "/api/jobs/", {"variant": demo_variant.pk, "method": "gguf",
                                           "params": {"types": ["Q8_0"]}})
    assert response.status_code == 201, response.content
    job = response.json()
    assert (job["status"], job["queue"], job["params"]["types"]) == ("queued", "cpu", ["Q8_0"])
    assert alice.get(f"/api/jobs/{job['job']}").json()["job"] == job["job"]
    assert [j["job"] for j in alice.get("/api/jobs/").json()["jobs"]] == [job["job"]]
    cancelled = alice.post(f"/api/jobs/{job['job']}/cancel").json()
    assert cancelled["status"] == "cancelled"


@pytest.mark.parametrize("body, field", [
    ("{not json", None),
    ([1, 2], None),
    ({"method": "gguf"}, "variant"),
    ({"variant": "one", "method": "gguf"}, "variant"),
    ({"variant": 1, "method": "gguf", "params": []}, "params"),
])
def test_malformed_requests_get_400_naming_the_problem(alice, demo_variant, body, field):
    response = _post(alice, "/api/jobs/", body)
    assert response.status_code == 400
    if field:
        assert field in response.json()["errors"]


def test_bad_method_parameters_get_400_with_field_errors(alice, demo_variant):
    response = _post(alice, "/api/jobs/", {"variant": demo_variant.pk, "method": "gguf",
                                           "params": {"types": ["Q9_9"]}})
    assert response.status_code == 400
    assert "Q9_9" in response.json()["errors"]["types"]


def test_other_teams_variants_and_jobs_are_404(client, teams, demo_variant):
    job = Job.objects.create(team=teams["red"], kind="quantize", method="gguf",
                             input_variant=demo_variant)
    client.force_login(teams["bob"])
    assert _post(client, "/api/jobs/", {"variant": demo_variant.pk, "method": "gguf"}).status_code == 404
    assert client.get(f"/api/jobs/{job.pk}").status_code == 404
    assert client.post(f"/api/jobs/{job.pk}/cancel").status_code == 404
    assert client.get("/api/jobs/").json() == {"jobs": []}
    assert client.get(f"/jobs/{job.pk}/").status_code == 404


def test_anonymous_gets_401_and_writes_need_csrf(teams, demo_variant):
    anonymous = Client()
    assert anonymous.get("/api/jobs/").status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(teams["alice"])
    response = strict.post("/api/jobs/", data="{}", content_type="application/json")
    assert response.status_code == 403


def test_the_job_list_takes_the_same_queries_for_3_jobs_as_for_30(alice, teams, demo_variant):
    """The list prefetches outputs and their files; serializing a job must not query again."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from catalog.models import File, Variant

    def add_jobs(n: int) -> None:
        for _ in range(n):
            job = Job.objects.create(team=teams["red"], kind="quantize", method="gguf",
                                     input_variant=demo_variant, status=Job.Status.SUCCEEDED)
            for qtype in ("Q8_0", "Q4_K_M"):
                v = Variant.objects.create(model=demo_variant.model, parent=demo_variant,
                                           format="gguf", quant_type=qtype)
                File.objects.create(variant=v, path=f"{qtype}.gguf", bytes=1, sha256="0" * 64)
                job.outputs.add(v)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert alice.get("/api/jobs/").status_code == 200
        return len(captured)

    add_jobs(3)
    few = queries()
    add_jobs(27)
    assert len(alice.get("/api/jobs/").json()["jobs"]) == 30
    assert queries() == few


def test_a_gguf_job_is_refused_at_submit_where_the_converter_cant_make_a_loadable_file(alice, teams):
    """transformers' BitNet: llama.cpp's converter maps its sub-norms by the 1bitLLM names and stops
    with "Can not map tensor …ffn_sub_norm.weight" (measured by bench/llama_cpp_ground_truth.py); the
    planner knows it, so a GGUF job from such an HF folder is a 400 naming the input, and so is the
    estimate an imatrix job (which converts first) is submitted with."""
    from catalog.models import Model, Variant
    from jobs.methods.base import JobError
    from jobs.estimates import imatrix_job_estimate

    model = Model.objects.create(team=teams["red"], name="bitnet", config={"model_type": "bitnet"})
    hf = Variant.objects.create(model=model, format="hf", quant_type="BF16")
    response = _post(alice, "/api/jobs/", {"variant": hf.pk, "method": "gguf", "params": {"types": ["Q4_K_M"]}})
    assert response.status_code == 400, response.content
    assert response.json()["errors"]["input"].startswith("no GGUF can be made of this model here: ")
    assert "ffn_sub_norm" in response.json()["errors"]["input"]
    assert not Job.objects.exists()
    with pytest.raises(JobError, match="no GGUF can be made of this model here"):
        imatrix_job_estimate(params={"context": 512}, variant=hf)


def test_a_gguf_job_from_a_dense_nemotron_h_folder_is_refused_at_submit(alice, teams):
    """bench/hybrid_ground_truth.py measured it: converted through transformers 5.23's config, a
    dense Nemotron-H goes down the converter's MoE path and the file fails to load."""
    from catalog.models import Model, Variant
    from planner.presets import PRESETS

    model = Model.objects.create(team=teams["red"], name="nemotron-h",
                                 config=PRESETS["nemotron-h-8b"]["config"])
    hf = Variant.objects.create(model=model, format="hf", quant_type="BF16")
    response = _post(alice, "/api/jobs/", {"variant": hf.pk, "method": "gguf", "params": {"types": ["Q4_K_M"]}})
    assert response.status_code == 400, response.content
    assert "a dense Nemotron-H is written as nemotron_h_moe" in response.json()["errors"]["input"]
