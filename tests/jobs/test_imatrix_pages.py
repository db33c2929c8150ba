"""The pages for importance matrices: the GGUF form's grouped types (those needing an imatrix
marked and refused without one), its imatrix select (this model's only), per-tensor overrides
and output / token-embedding types; the "Make importance matrix" form; imatrix artifacts in the
lineage and absent from the playground, /v1 and the job forms' inputs. Django's test client: no
worker runs, jobs are only submitted."""

import json
import re

import pytest
from django.test import Client

from catalog.models import Dataset, Model, Variant
from jobs.models import Job, Worker
from tests.support.artifacts import register_copy

pytestmark = pytest.mark.django_db

WIKITEXT_TEST_BYTES = 1_256_449  # /work/shared/data/wikitext-2/test.txt


def _imatrix(model, folder, dataset, *, parent=None, chunks=100, context=512) -> Variant:
    """An imatrix variant over a small file, with the params an imatrix job records
    (jobs/methods/imatrix.py imatrix_params)."""
    variant = register_copy(model=model, folder=folder, format="imatrix", quant_type="imatrix",
                            parent=parent)
    variant.params = {"dataset": {"id": dataset.pk, "name": dataset.name, "sha256": "0" * 64},
                      "chunks_requested": chunks, "chunks_used": chunks, "chunk_size": context,
                      "context": context, "calibration_perplexity": 17.5}
    variant.save(update_fields=["params"])
    return variant


@pytest.fixture
def world(teams, demo_variant, tmp_path):
    """Team red: the demo GGUF with one imatrix, another model with its own; team blue: a model
    with an imatrix. Datasets: red's WikiText-2 test, blue's text."""
    Worker.objects.create(hostname="cpu@imatrix", queues=["cpu"], device="cpu",
                          memory_bytes=24 * 1024**3, methods=["gguf", "imatrix", "evaluate"])
    folder = tmp_path / "matrix"
    folder.mkdir()
    (folder / "imatrix.gguf").write_bytes(b"GGUF" + bytes(60))
    red_text = Dataset.objects.create(team=teams["red"], name="wikitext-2 test", kind="txt",
                                      path="test.txt", bytes=WIKITEXT_TEST_BYTES)
    blue_text = Dataset.objects.create(team=teams["blue"], name="blue text", kind="txt",
                                       path="b.txt", bytes=2048)
    other = Model.objects.create(team=teams["red"], name="other-model")
    blue_model = Model.objects.create(team=teams["blue"], name=demo_variant.model.name)
    return {
        "demo": demo_variant, "red_text": red_text, "blue_text": blue_text, "folder": folder,
        "imatrix": _imatrix(demo_variant.model, folder, red_text, parent=demo_variant),
        "other_imatrix": _imatrix(other, folder, red_text, chunks=7, context=64),
        "blue_imatrix": _imatrix(blue_model, folder, blue_text),
    }


def _select(html: str, name: str) -> str:
    match = re.search(rf'<select name="{name}".*?</select>', html, re.S)
    assert match, f"no <select name={name}>"
    return match.group(0)


def _gguf(variant, **params) -> dict:
    return {"variant": variant.pk, "method": "gguf", "intermediate": "F16", **params}


def test_the_gguf_form_groups_every_type_and_lists_only_this_models_imatrices(client, teams, world):
    client.force_login(teams["carol"])  # in both teams: still only this model's matrices
    html = client.get(f"/jobs/new?variant={world['demo'].pk}").content.decode()
    for group in ("Float", "K-quants", "Legacy", "IQ (i-quants)", "Ternary"):
        assert f"<label>{group}</label>" in html
    assert re.search(r'<input[^>]*value="IQ2_XS"[^>]*data-needs-imatrix="true"', html)
    assert "IQ2_XS (needs an importance matrix)" in html and "IQ1_S (needs an importance matrix)" in html
    assert not re.search(r'<input[^>]*value="Q4_K_M"[^>]*data-needs-imatrix', html)
    assert 'value="IQ4_NL"' in html and "IQ4_NL (needs" not in html  # IQ, but no matrix needed
    assert 'value="TQ1_0"' in html and 'value="F32"' in html

    imatrices = _select(html, "imatrix")
    made = world["imatrix"].created_at.strftime("%Y-%m-%d %H:%M")
    assert (f'<option value="{world["imatrix"].pk}">wikitext-2 test, 100 × 512, {made} '
            f'(#{world["imatrix"].pk})</option>') in imatrices
    assert f'value="{world["other_imatrix"].pk}"' not in imatrices  # another model's
    assert f'value="{world["blue_imatrix"].pk}"' not in imatrices  # another team's model
    assert f'href="/jobs/new?variant={world["demo"].pk}&amp;method=imatrix"' in html
    # Matrices are never an input variant, nor a chat target.
    inputs = _select(html, "variant")
    assert f'value="{world["demo"].pk}"' in inputs
    assert all(f'value="{world[k].pk}"' not in inputs for k in ("imatrix", "other_imatrix", "blue_imatrix"))
    for name in ("output_tensor_type", "token_embedding_type"):
        options = _select(html, name)
        assert '<option value="" selected>llama.cpp&#x27;s default</option>' in options
        assert '<option value="q8_0">q8_0</option>' in options and '<option value="iq2_xs">' in options


def test_an_iq_type_without_an_imatrix_is_refused_naming_the_field(client, teams, world):
    client.force_login(teams["alice"])
    refused = client.post("/jobs/new", _gguf(world["demo"], types=["IQ2_XS", "Q4_K_M"]))
    assert refused.status_code == 200 and Job.objects.count() == 0
    assert refused.context["form"].errors["types"] == [
        "IQ2_XS needs an importance matrix: choose one, or a dataset to make one from"]
    preview = client.get("/jobs/new/placement", _gguf(world["demo"], types=["IQ2_XS", "IQ1_S"])).content.decode()
    assert "Can't run: types: IQ2_XS, IQ1_S need an importance matrix" in preview


def test_with_an_imatrix_the_job_gets_the_exact_parameters(client, teams, world):
    client.force_login(teams["alice"])
    form = _gguf(world["demo"], types=["IQ2_XS", "Q4_K_M"], imatrix=world["imatrix"].pk,
                 tensor_types="attn_v=Q8_0\n\nFFN_DOWN=q6_k\n", output_tensor_type="q8_0",
                 token_embedding_type="q4_K")
    preview = client.get("/jobs/new/placement", form).content.decode()
    assert 'id="placement-ok"' in preview
    assert (f'<li id="plan-imatrix">Quantizes with importance matrix #{world["imatrix"].pk} '
            "(wikitext-2 test, 100 chunks × 512).</li>") in preview
    assert '<li id="plan-types">Types: IQ2_XS, Q4_K_M.</li>' in preview
    assert '<li id="plan-tensor-types">Per-tensor types: attn_v=q8_0; ffn_down=q6_K.</li>' in preview
    assert "output.weight as q8_0" in preview and "Token embedding as q4_K" in preview

    done = client.post("/jobs/new", form)
    job = Job.objects.get()
    assert done.url == f"/jobs/{job.pk}/" and job.method == "gguf"
    matrix = world["imatrix"]
    assert job.params == {
        "types": ["IQ2_XS", "Q4_K_M"], "intermediate": "F16",
        "tensor_types": ["attn_v=q8_0", "ffn_down=q6_K"],
        "output_tensor_type": "q8_0", "token_embedding_type": "q4_K",
        "imatrix": matrix.pk, "imatrix_path": str(matrix.directory / "imatrix.gguf"),
        "imatrix_record": {"variant": matrix.pk, "dataset": matrix.params["dataset"],
                           "chunks_used": 100, "context": 512},
        "warning": job.params["warning"],  # requantizing the Q4_1 demo
    }


def test_making_the_imatrix_from_a_dataset_in_the_same_job(client, teams, world):
    client.force_login(teams["alice"])
    form = _gguf(world["demo"], types=["IQ2_XS"], imatrix_dataset=world["red_text"].pk,
                 imatrix_chunks=8, imatrix_context=256)
    preview = client.get("/jobs/new/placement", form).content.decode()
    assert ('<li id="plan-imatrix">First makes an importance matrix from wikitext-2 test '
            "(8 chunks × 256 tokens), then quantizes with it.</li>") in preview
    client.post("/jobs/new", form)
    params = Job.objects.get().params
    assert {k: params[k] for k in ("types", "imatrix_dataset", "imatrix_dataset_path", "imatrix_chunks",
                                   "imatrix_context", "imatrix_dataset_name")} == {
        "types": ["IQ2_XS"], "imatrix_dataset": world["red_text"].pk,
        "imatrix_dataset_path": str(world["red_text"].directory / "test.txt"),
        "imatrix_chunks": 8, "imatrix_context": 256, "imatrix_dataset_name": "wikitext-2 test"}
    assert "imatrix" not in params

    both = client.post("/jobs/new", {**form, "imatrix": world["imatrix"].pk})
    assert both.context["form"].errors["imatrix_dataset"] == [
        "choose an importance matrix or a dataset to make one from, not both"]
    foreign = client.post("/jobs/new", {**form, "imatrix_dataset": world["blue_text"].pk})
    assert foreign.context["form"].errors["imatrix_dataset"] == [
        f"no text dataset {world['blue_text'].pk} in your teams"]
    assert Job.objects.count() == 1


def test_another_models_or_teams_imatrix_is_a_form_error(client, teams, world):
    client.force_login(teams["carol"])  # sees both teams
    for key in ("other_imatrix", "blue_imatrix"):
        pk = world[key].pk
        response = client.post("/jobs/new", _gguf(world["demo"], types=["IQ2_XS"], imatrix=pk))
        assert response.status_code == 200
        assert response.context["form"].errors["imatrix"] == [
            f"no importance matrix {pk} of this model in your teams"]
    assert Job.objects.count() == 0
    client.force_login(teams["bob"])  # blue only: red's variant isn't his to quantize
    response = client.post("/jobs/new", _gguf(world["demo"], types=["IQ2_XS"], imatrix=world["imatrix"].pk))
    assert "variant" in response.context["form"].errors and Job.objects.count() == 0


def test_a_bad_override_line_is_a_form_error_naming_the_line(client, teams, world):
    client.force_login(teams["alice"])
    response = client.post("/jobs/new", _gguf(world["demo"], types=["Q4_K_M"],
                                              tensor_types="attn_v=q8_0\nffn_down\n"))
    assert response.context["form"].errors["tensor_types"] == [
        "line 2 “ffn_down”: 'ffn_down' is not pattern=type (e.g. attn_v=q8_0)"]
    preview = client.get("/jobs/new/placement", _gguf(world["demo"], types=["Q4_K_M"],
                                                      tensor_types="attn_v=q9_9")).content.decode()
    assert "Can't run: tensor_types: line 1 “attn_v=q9_9”: unknown ggml type &#x27;q9_9&#x27;" in preview
    assert Job.objects.count() == 0


def test_make_importance_matrix_creates_an_imatrix_job(client, teams, world):
    client.force_login(teams["alice"])
    page = client.get(f"/jobs/new?variant={world['demo'].pk}&method=imatrix").content.decode()
    assert "<h1>Make importance matrix</h1>" in page
    assert f'<option value="{world["red_text"].pk}">wikitext-2 test (1.2\xa0MiB)</option>' in page
    assert '<a class="upload-dataset" href="/catalog/datasets/">or upload one</a>' in page
    assert 'name="chunks" value="100"' in page and 'name="context" value="512"' in page
    assert f'value="{world["imatrix"].pk}"' not in _select(page, "variant")

    form = {"variant": world["demo"].pk, "method": "imatrix", "dataset": world["red_text"].pk,
            "chunks": 8, "context": 256, "threads": 2}
    preview = client.get("/jobs/new/placement", form).content.decode()
    assert 'id="placement-ok"' in preview
    assert ('<li id="plan-imatrix">Runs llama-imatrix over 8 chunks × 256 tokens of wikitext-2 test '
            "(fewer if the text is shorter)") in preview
    done = client.post("/jobs/new", form)
    job = Job.objects.get()
    assert done.url == f"/jobs/{job.pk}/" and job.method == "imatrix"
    assert job.input_variant_id == world["demo"].pk
    assert {k: v for k, v in job.params.items() if k != "warning"} == {
        "dataset": world["red_text"].pk, "dataset_path": str(world["red_text"].directory / "test.txt"),
        "dataset_name": "wikitext-2 test", "chunks": 8, "context": 256, "threads": 2}

    missing = client.post("/jobs/new", {**form, "dataset": ""})
    assert missing.context["form"].errors["dataset"] == ["choose a text dataset"]
    foreign = client.post("/jobs/new", {**form, "dataset": world["blue_text"].pk})
    assert foreign.context["form"].errors["dataset"] == [f"no text dataset {world['blue_text'].pk} in your teams"]
    of_a_matrix = client.post("/jobs/new", {**form, "variant": world["imatrix"].pk})
    assert "variant" in of_a_matrix.context["form"].errors
    assert Job.objects.count() == 1


def test_an_imatrix_is_not_a_chat_target_and_reads_as_one_in_the_lineage(client, teams, world, settings):
    settings.RUNTIME_URL = "http://127.0.0.1:9"  # no runtime: the playground page still lists models
    matrix, demo = world["imatrix"], world["demo"]
    quantized = register_copy(model=demo.model, folder=world["folder"], format="gguf",
                              quant_type="IQ2_XS", parent=demo)
    quantized.params = {"type": "IQ2_XS", "imatrix": {"variant": matrix.pk, "dataset": matrix.params["dataset"],
                                                      "chunks_used": 100, "context": 512}}
    quantized.save(update_fields=["params"])
    client.force_login(teams["alice"])
    playground = client.get("/playground/").content.decode()
    assert f'value="{demo.pk}"' in playground and f'value="{matrix.pk}"' not in playground

    from runtime.services import api_token_create

    api = Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=teams['alice'], name='t')[1]}")
    ids = [m["id"] for m in api.get("/v1/models").json()["data"]]
    assert str(demo.pk) in ids and str(matrix.pk) not in ids
    assert api.get(f"/v1/models/{matrix.pk}").status_code == 404
    chat = api.post("/v1/chat/completions", json.dumps({"model": str(matrix.pk), "messages": [
        {"role": "user", "content": "hi"}]}), content_type="application/json")
    assert chat.status_code == 404

    lineage = client.get(f"/catalog/models/{demo.model_id}/lineage/").content.decode()
    row = re.search(rf'<li data-variant="{matrix.pk}".*?</li>', lineage, re.S).group(0)
    assert "Importance matrix · wikitext-2 test · 100 chunks × 512" in row
    assert not any(word in row for word in ("Chat", "Evaluate", "Quantize", "/playground/"))
    parent_row = lineage.split(f'<li data-variant="{demo.pk}"')[1].split("<ul>")[0]
    assert f'<a href="/playground/?variant={demo.pk}">Chat</a>' in parent_row
    assert "Make importance matrix" in parent_row
    assert (f"quantized with importance matrix #{matrix.pk} (wikitext-2 test, 100 chunks × 512)"
            in lineage.split(f'<li data-variant="{quantized.pk}"')[1])
    client.force_login(teams["bob"])
    assert client.get(f"/catalog/models/{demo.model_id}/lineage/").status_code == 404


def test_the_imatrix_jobs_page_names_its_output_by_what_it_was_made_from(client, teams, world):
    job = Job.objects.create(team=teams["red"], kind="quantize", method="imatrix", input_variant=world["demo"],
                             params={"chunks": 100, "context": 512}, status=Job.Status.SUCCEEDED, progress=100)
    job.outputs.add(world["imatrix"])
    client.force_login(teams["alice"])
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert (f'>Importance matrix · wikitext-2 test · 100 chunks × 512</a> (#{world["imatrix"].pk}) · '
            "64\xa0bytes</li>") in html
