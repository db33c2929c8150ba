"""Models uploaded through the import page: an HF folder (flat and sharded), an archive of one,
and a single GGUF all land in the catalog with exact metadata, files and lineage."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from catalog.models import Model, Variant
from catalog.services import demo_model_path
from formats.digest import file_sha256
from tests.catalog.conftest import leftover_files, run_queued_jobs
from tests.catalog.factories import tar_gz_of, tiny_hf_model, uploads

pytestmark = pytest.mark.django_db

SMOLLM2_135M_PARAMS = 134_515_008
DEMO_BYTES = 98_362_432


def _post(client, teams, files, **extra):
    """Posts the import form; a 302 goes to the queued import job, which runs here as a worker
    would run it."""
    client.force_login(teams["alice"])
    data = {"source": "upload", "team": teams["red"].pk, "files": files, **extra}
    response = client.post(reverse("jobs:import"), data)
    if response.status_code == 302:
        assert "/jobs/" in response["Location"]
        [job] = run_queued_jobs()
        assert job.status == "succeeded", job.error
    return response


def test_uploaded_hf_folder_is_registered_with_exact_param_count(client, teams, tiny_hf, artifacts):
    folder, params = tiny_hf
    response = _post(client, teams, uploads(folder), name="tiny-llama")
    assert response.status_code == 302, response.content.decode()[:2000]
    model = Model.objects.get(name="tiny-llama")
    assert model.team == teams["red"] and model.created_by == teams["alice"]
    assert model.param_count == params
    assert model.architecture == "llama"
    assert model.license == "apache-2.0"
    assert "Tiny llama" in model.model_card
    assert model.config["num_key_value_heads"] == 2
    [variant] = model.variants.all()
    assert (variant.format, variant.quant_type, variant.parent) == ("hf", "F32", None)
    assert variant.bits_per_weight == 32.0
    names = {f.path for f in variant.files.all()}
    assert {"config.json", "model.safetensors", "README.md"} <= names
    for f in variant.files.all():
        assert f.absolute_path.stat().st_size == f.bytes
        assert file_sha256(f.absolute_path) == f.sha256
    assert not list((artifacts / "tmp").iterdir())  # staging cleaned up
    page = client.get(reverse("catalog:model", args=[model.pk]))
    assert b"model.safetensors" in page.content and b"F32" in page.content


def test_sharded_hf_folder_counts_every_shard(client, teams, tmp_path, artifacts):
    params = tiny_hf_model(tmp_path, max_shard_size="100KB")
    shards = sorted(p.name for p in tmp_path.glob("*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "model.safetensors.index.json").exists()
    response = _post(client, teams, uploads(tmp_path), name="sharded")
    assert response.status_code == 302, response.content.decode()[:2000]
    model = Model.objects.get(name="sharded")
    assert model.param_count == params
    assert set(shards) <= {f.path for f in model.variants.get().files.all()}


def test_shard_missing_from_index_is_refused(client, teams, tmp_path, artifacts):
    tiny_hf_model(tmp_path, max_shard_size="100KB")
    files = [f for f in uploads(tmp_path) if not f.name.startswith("model-00001")]
    response = _post(client, teams, files, name="broken")
    assert response.status_code == 400
    assert b"names shards that are missing" in response.content
    assert not Model.objects.exists()
    assert leftover_files(artifacts) == []


def test_uploaded_tar_gz_of_a_model_folder(client, teams, tiny_hf, artifacts):
    folder, params = tiny_hf
    archive = SimpleUploadedFile("tiny-llama.tar.gz", tar_gz_of(folder))
    response = _post(client, teams, [archive], name="from-archive")
    assert response.status_code == 302, response.content.decode()[:2000]
    model = Model.objects.get(name="from-archive")
    assert model.param_count == params
    assert "config.json" in {f.path for f in model.variants.get().files.all()}


def test_uploaded_gguf_reads_everything_from_its_header(client, teams, artifacts):
    demo = demo_model_path()
    with open(demo, "rb") as f:
        response = _post(client, teams, [f])
    assert response.status_code == 302, response.content.decode()[:2000]
    variant = Variant.objects.get()
    model = variant.model
    assert model.name == "Smollm2 135M 8k Lc100K Mix1 Ep2"  # general.name from the header
    assert model.param_count == SMOLLM2_135M_PARAMS
    assert model.architecture == "llama"
    assert model.config["num_hidden_layers"] == 30
    assert (variant.format, variant.quant_type) == ("gguf", "Q4_1")
    [f] = variant.files.all()
    assert (f.path, f.bytes) == (demo.name, DEMO_BYTES)
    assert f.sha256 == file_sha256(demo)
    assert variant.bits_per_weight == round(DEMO_BYTES * 8 / SMOLLM2_135M_PARAMS, 3)


def test_gguf_added_as_a_variant_of_an_existing_model_links_its_parent(teams, tiny_hf, artifacts):
    from catalog.imports import import_gguf_file, import_hf_folder

    folder, _ = tiny_hf
    base = import_hf_folder(team_id=teams["red"].pk, user_id=None, folder=str(folder), name="t")
    child = import_gguf_file(team_id=teams["red"].pk, user_id=None, path=str(demo_model_path()),
                             model_id=base.model_id, parent_id=base.pk)
    assert child.model_id == base.model_id and child.parent_id == base.pk
    assert [c.pk for c in base.children.all()] == [child.pk]
