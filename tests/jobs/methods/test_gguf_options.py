"""The GGUF job's importance-matrix and per-tensor options: what submit refuses (naming the
field), and on a real worker an on-the-fly matrix and the type overrides as llama-quantize
applied them (read back from the output's GGUF header)."""

from collections import Counter

import pytest

from catalog.models import File, Model, Variant
from jobs.methods import get_method
from jobs.methods.base import JobError
from jobs.methods.gguf import GGML_TENSOR_TYPES, IMATRIX_TYPES, TYPES
from jobs.models import Job, Worker
from jobs.services import job_submit
from tests.support.processes import WIKITEXT, wait_until


def submit(teams, variant, params, team="red"):
    return job_submit(team=teams[team], user=teams["alice"], method="gguf", params=params,
                      input_variant=variant, enqueue=False)


def refused(teams, variant, params, method="gguf") -> JobError:
    with pytest.raises(JobError) as info:
        job_submit(team=teams["red"], user=teams["alice"], method=method, params=params,
                   input_variant=variant, enqueue=False)
    return info.value


def imatrix_of(model) -> Variant:
    v = Variant.objects.create(model=model, format="imatrix", quant_type="imatrix")
    File.objects.create(variant=v, path="imatrix.gguf", bytes=1, sha256="0" * 64)
    return v


def test_every_llama_quantize_file_type_is_offered():
    # quantize.cpp QUANT_OPTIONS less COPY, the Q3_K/Q4_K/Q5_K aliases and Q2_0 (see gguf.py).
    assert len(TYPES) == 34 and len(set(TYPES)) == 34
    assert not {"COPY", "Q3_K", "Q4_K", "Q5_K", "Q2_0"} & set(TYPES)
    assert {"IQ1_M", "TQ1_0", "MXFP4_MOE", "Q1_0", "F32", "F16", "BF16"} <= set(TYPES)
    assert set(IMATRIX_TYPES) <= set(TYPES)
    assert {"q4_K", "iq2_xxs", "bf16", "tq2_0"} <= set(GGML_TENSOR_TYPES)


@pytest.mark.django_db
@pytest.mark.parametrize("qtype", ["IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ3_XS", "IQ1_S", "Q2_K_S"])
def test_a_type_that_needs_an_imatrix_is_refused_without_one(teams, demo_variant, qtype):
    error = refused(teams, demo_variant, {"types": [qtype]})
    assert set(error.errors) == {"types"}
    assert qtype in error.errors["types"] and "imatrix" in error.errors["types"]


@pytest.mark.django_db
def test_an_iq_tensor_override_needs_an_imatrix_too(teams, demo_variant):
    error = refused(teams, demo_variant, {"types": ["Q4_0"], "tensor_types": "ffn_down=iq2_xxs"})
    assert "types" in error.errors and "imatrix" in error.errors["types"]


@pytest.mark.django_db
def test_an_imatrix_of_another_model_or_team_is_refused(teams, demo_variant):
    other_model = Model.objects.create(team=teams["red"], name="other", config=demo_variant.model.config)
    blue_model = Model.objects.create(team=teams["blue"], name=demo_variant.model.name,
                                      config=demo_variant.model.config)
    for foreign in (imatrix_of(other_model), imatrix_of(blue_model)):
        error = refused(teams, demo_variant, {"types": ["IQ2_XXS"], "imatrix": foreign.pk})
        assert set(error.errors) == {"imatrix"}
        assert "no importance matrix" in error.errors["imatrix"]
    # An ordinary GGUF variant of the same model is not a matrix either.
    assert "imatrix" in refused(teams, demo_variant, {"types": ["IQ2_XXS"],
                                                      "imatrix": demo_variant.pk}).errors
    own = imatrix_of(demo_variant.model)
    job = submit(teams, demo_variant, {"types": ["IQ2_XXS"], "imatrix": own.pk})
    assert job.params["imatrix"] == own.pk
    assert job.params["imatrix_path"].endswith(f"variants/{own.pk}/imatrix.gguf")


@pytest.mark.django_db
def test_a_matrix_and_a_dataset_together_are_refused(teams, demo_variant):
    own = imatrix_of(demo_variant.model)
    error = refused(teams, demo_variant, {"types": ["IQ1_S"], "imatrix": own.pk,
                                          "imatrix_dataset": str(WIKITEXT / "valid.txt")})
    assert set(error.errors) == {"imatrix"}


@pytest.mark.django_db
def test_imatrix_dataset_is_team_scoped_text(teams, demo_variant):
    from catalog.datasets import dataset_upload

    blue_text = dataset_upload(team_id=teams["blue"].pk, user_id=None,
                               path=str(WIKITEXT / "valid.txt"), name="blue valid")
    error = refused(teams, demo_variant, {"types": ["IQ1_S"], "imatrix_dataset": blue_text.pk})
    assert set(error.errors) == {"imatrix_dataset"} and "no dataset" in error.errors["imatrix_dataset"]
    red_text = dataset_upload(team_id=teams["red"].pk, user_id=None,
                              path=str(WIKITEXT / "valid.txt"), name="red valid")
    for name, value in (("imatrix_chunks", 0), ("imatrix_context", 16), ("imatrix_chunks", "x")):
        error = refused(teams, demo_variant, {"types": ["IQ1_S"], "imatrix_dataset": red_text.pk,
                                              name: value})
        assert set(error.errors) == {name}
    job = submit(teams, demo_variant, {"types": ["IQ1_S"], "imatrix_dataset": red_text.pk})
    assert job.params["imatrix_dataset"] == red_text.pk
    assert job.params["imatrix_dataset_path"] == str(red_text.absolute_path)
    assert (job.params["imatrix_chunks"], job.params["imatrix_context"]) == (100, 512)
    assert job.params["imatrix_dataset_name"] == "red valid"


@pytest.mark.django_db
@pytest.mark.parametrize("entry", ["attn_v", "attn_v=", "=q8_0", "attn_v=q9_0", "attn_v=q4_2",
                                   "attn v=q8_0", "(?i)attn_v=q8_0", "attn_[v=q8_0",
                                   "a" * 121 + "=q8_0", "blk.0;rm=q8_0"])
def test_a_bad_tensor_types_entry_is_refused(teams, demo_variant, entry):
    error = refused(teams, demo_variant, {"types": ["Q4_0"], "tensor_types": [entry]})
    assert set(error.errors) == {"tensor_types"}, error.errors


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["output_tensor_type", "token_embedding_type"])
def test_a_bad_output_or_embedding_type_is_refused(teams, demo_variant, name):
    error = refused(teams, demo_variant, {"types": ["Q4_0"], name: "q3_0"})
    assert set(error.errors) == {name}


@pytest.mark.django_db
def test_tensor_types_are_cleaned_to_llama_quantize_spelling(teams, demo_variant):
    text = "ATTN_V=Q8_0\nffn_down\\.weight=Q4_k, blk\\.[0-3]\\.ffn_up=iq4_nl"
    job = submit(teams, demo_variant, {"types": ["q4_0"], "tensor_types": text,
                                       "output_tensor_type": "Q8_0", "token_embedding_type": "Q4_0"})
    assert job.params["tensor_types"] == ["attn_v=q8_0", "ffn_down\\.weight=q4_K",
                                          "blk\\.[0-3]\\.ffn_up=iq4_nl"]
    assert (job.params["output_tensor_type"], job.params["token_embedding_type"]) == ("q8_0", "q4_0")


@pytest.mark.django_db
def test_imatrix_job_refusals_name_the_field(teams, demo_variant):
    for params, field in (({}, "dataset"), ({"dataset": 99999}, "dataset"),
                          ({"dataset": str(WIKITEXT / "valid.txt"), "chunks": 0}, "chunks"),
                          ({"dataset": str(WIKITEXT / "valid.txt"), "context": 40000}, "context"),
                          ({"dataset": str(WIKITEXT / "valid.txt"), "threads": 0}, "threads"),
                          ({"dataset": str(WIKITEXT / "valid.txt"), "colour": 1}, "colour")):
        assert field in refused(teams, demo_variant, params, method="imatrix").errors, params


@pytest.mark.django_db
def test_imatrix_variants_are_not_inputs_of_model_methods(teams, demo_variant):
    for name in ("gguf", "evaluate", "bnb-nf4", "bnb-int8", "gptq", "hf-from-gguf"):
        assert "imatrix" not in get_method(name).input_formats, name
    matrix = imatrix_of(demo_variant.model)
    assert "input" in refused(teams, matrix, {"types": ["Q4_0"]}).errors


# ---- on a real worker ----

def worker_ready() -> None:
    """The worker's heartbeat row again (a transactional test's flush removed it)."""
    wait_until(lambda: Worker.objects.filter(hostname__startswith="test-worker@").exists(), 30,
               what="the worker's heartbeat row")


def wait_final(job: Job, timeout: float) -> Job:
    wait_until(lambda: Job.objects.get(pk=job.pk).is_final, timeout, interval=0.5,
               what=f"job {job.pk} to finish")
    job.refresh_from_db()
    return job


def header_types(path) -> dict[str, str]:
    import gguf

    return {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors}


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_on_the_fly_imatrix_is_registered_with_the_quantized_output(teams, demo_variant,
                                                                       celery_worker):
    from catalog.datasets import dataset_upload

    text = dataset_upload(team_id=teams["red"].pk, user_id=None, path=str(WIKITEXT / "valid.txt"),
                          name="wikitext-2 valid")
    worker_ready()
    job = job_submit(team=teams["red"], user=teams["alice"], method="gguf", input_variant=demo_variant,
                     params={"types": ["Q2_K_S"], "imatrix_dataset": text.pk, "imatrix_chunks": 2,
                             "imatrix_context": 128, "output_tensor_type": "q5_1"})
    job = wait_final(job, 300)
    assert job.status == Job.Status.SUCCEEDED, job.error + job.log_tail[-3000:]
    outputs = {v.format: v for v in job.outputs.all()}
    assert set(outputs) == {"imatrix", "gguf"}
    matrix, quantized = outputs["imatrix"], outputs["gguf"]
    assert matrix.parent_id == demo_variant.pk and quantized.parent_id == demo_variant.pk
    assert (matrix.params["chunks_used"], matrix.params["chunk_size"]) == (2, 128)
    assert matrix.params["dataset"]["id"] == text.pk
    record = quantized.params["imatrix"]
    assert record["made_in_job"] and record["chunks_used"] == 2
    assert record["dataset"]["sha256"] == text.sha256
    [f] = quantized.files.all()
    types = header_types(f.absolute_path)
    assert Counter(types.values())["Q2_K"] == 27  # the Q2_K_S ffn_down tensors, as by hand
    # The demo ties its output to token_embd; --output-tensor-type applies to it (q8_0 without).
    assert types["token_embd.weight"] == "Q5_1"


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_type_overrides_show_in_the_output_header(teams, demo_variant, celery_worker):
    worker_ready()
    job = job_submit(team=teams["red"], user=teams["alice"], method="gguf", input_variant=demo_variant,
                     params={"types": ["Q4_0"], "tensor_types": ["attn_v=q8_0"],
                             "output_tensor_type": "q8_0", "token_embedding_type": "q4_0"})
    job = wait_final(job, 300)
    assert job.status == Job.Status.SUCCEEDED, job.error + job.log_tail[-3000:]
    [variant] = job.outputs.all()
    [f] = variant.files.all()
    types = header_types(f.absolute_path)
    # Q4_0 by hand without overrides: attn_v q4_0 (30), token_embd q8_0.
    assert {t for n, t in types.items() if "attn_v" in n} == {"Q8_0"}
    assert sum("attn_v" in n for n in types) == 30
    assert types["token_embd.weight"] == "Q4_0"
    assert "output.weight" not in types  # tied: no separate output tensor to override
    assert variant.params["tensor_types"] == ["attn_v=q8_0"]
