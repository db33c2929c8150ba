"""catalog.registration.variant_register: the one way imports and job outputs become variants.

Real files in an emptied ARTIFACT_ROOT (the `artifacts` fixture); every failure must leave no
rows and no folders behind, and several variants register all or nothing."""

import hashlib
from pathlib import Path

import pytest

from catalog.models import File, Model, Variant
from catalog.registration import NewModel, registering, staged_files, variant_register
from catalog.services import CatalogError, bits_per_weight
from jobs.models import Job
from jobs.outputs import register_outputs
from tests.catalog.conftest import leftover_files


def _stage(root: Path, name: str, files: dict[str, bytes]) -> Path:
    folder = root / "tmp" / name
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


@pytest.fixture
def model(teams) -> Model:
    return Model.objects.create(team=teams["red"], name="tiny", param_count=1000)


def test_bits_per_weight_is_bytes_times_8_over_weights():
    assert bits_per_weight(weight_bytes=531, param_count=1000) == 4.248
    assert bits_per_weight(weight_bytes=2000, param_count=1000) == 16.0
    assert bits_per_weight(weight_bytes=2000, param_count=None) is None
    assert bits_per_weight(weight_bytes=2000, param_count=0) is None


def test_a_new_model_and_its_variant_are_registered_with_hashed_files(teams, artifacts):
    staged = _stage(artifacts, "a", {"model.gguf": b"x" * 300, "sub/readme.md": b"hello"})
    seen: list[tuple[float, str]] = []
    variant = variant_register(
        staged=staged, model=NewModel(team=teams["red"], name=" new ", param_count=100),
        format="gguf", quant_type="Q8_0", params={"file": "model.gguf"}, weight_bytes=106,
        created_by=teams["alice"], progress=lambda f, s: seen.append((f, s)))
    assert variant.model.name == "new" and variant.model.created_by == teams["alice"]
    assert variant.bits_per_weight == 8.48  # 106 B × 8 / 100 weights
    assert variant.params == {"file": "model.gguf"} and variant.tool_versions == {}
    rows = {f.path: (f.bytes, f.sha256) for f in variant.files.all()}
    assert rows == {"model.gguf": (300, hashlib.sha256(b"x" * 300).hexdigest()),
                    "sub/readme.md": (5, hashlib.sha256(b"hello").hexdigest())}
    assert not staged.exists()
    assert leftover_files(artifacts) == [f"variants/{variant.pk}/model.gguf",
                                         f"variants/{variant.pk}/sub/readme.md"]
    assert seen and seen[-1] == (0.98, "hashing")


def test_without_weight_bytes_every_files_bytes_count(model, artifacts):
    staged = _stage(artifacts, "b", {"w.bin": b"\0" * 2000})
    variant = variant_register(staged=staged, model=model, format="hf", quant_type="bf16")
    assert variant.bits_per_weight == 16.0


def test_a_measured_figure_is_kept(model, artifacts):
    staged = _stage(artifacts, "c", {"w.bin": b"\0" * 2000})
    variant = variant_register(staged=staged, model=model, format="gptq", quant_type="4bit",
                               measured_bits_per_weight=6.789)
    assert variant.bits_per_weight == 6.789


def test_a_refusal_leaves_no_rows_and_the_staged_folder_unmoved(teams, model, artifacts):
    staged = _stage(artifacts, "d", {"w.bin": b"1"})
    with pytest.raises(CatalogError, match="already has a model named 'tiny'"):
        variant_register(staged=staged, model=NewModel(team=teams["red"], name="tiny"),
                         format="hf")
    with pytest.raises(CatalogError, match="is not a variant of tiny"):
        variant_register(staged=staged, model=model, format="hf", parent_id=10**6)
    assert Model.objects.count() == 1 and not Variant.objects.exists() and not File.objects.exists()
    assert leftover_files(artifacts) == ["tmp/d/w.bin"]


def test_a_failure_after_the_move_removes_the_moved_folder(model, artifacts, monkeypatch):
    staged = _stage(artifacts, "e", {"w.bin": b"1"})

    def refuse(*args, **kwargs):
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        with registering() as moved:
            variant = variant_register(staged=staged, model=model, format="hf", moved=moved)
            assert variant.directory.is_dir()
            monkeypatch.setattr(File.objects, "bulk_create", refuse)
            variant_register(staged=_stage(artifacts, "f", {"x": b"2"}), model=model,
                             format="hf", moved=moved)
    assert not Variant.objects.exists() and not File.objects.exists()
    assert leftover_files(artifacts) == ["tmp/f/x"]  # the second never moved; the first is gone


def test_several_variants_register_together_with_parents(model, artifacts):
    with registering() as moved:
        first = variant_register(staged=_stage(artifacts, "g", {"a": b"1"}), model=model,
                                 format="gguf", quant_type="F16", moved=moved)
        second = variant_register(staged=_stage(artifacts, "h", {"b": b"22"}), model=model,
                                  format="gguf", quant_type="Q8_0", parent_id=first.pk,
                                  moved=moved)
    assert moved == [first.directory, second.directory]
    assert second.parent == first
    assert leftover_files(artifacts) == [f"variants/{first.pk}/a", f"variants/{second.pk}/b"]


def test_staged_files_skips_links(tmp_path):
    (tmp_path / "real").write_bytes(b"abc")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert [f["path"] for f in staged_files(tmp_path)] == ["real"]


@pytest.fixture
def job(teams, model) -> Job:
    source = Variant.objects.create(model=model, format="hf", quant_type="bf16")
    return Job.objects.create(team=teams["red"], kind="quantize", method="gguf",
                              input_variant=source)


def _output(work: Path, key: str, **extra) -> dict:
    directory = work / key
    directory.mkdir(parents=True)
    (directory / f"{key}.gguf").write_bytes(key.encode() * 10)
    return {"key": key, "format": "gguf", "quant_type": key, "directory": str(directory),
            "bits_per_weight": 8.5, "params": {"type": key}, "tool_versions": {"llama": "1"},
            **extra}


def test_job_outputs_register_all_with_parent_by_key(job, artifacts):
    work = artifacts / "jobs" / "w"
    outputs = [_output(work, "F16", metrics={"ppl": 1.0}), _output(work, "Q8_0", parent_key="F16")]
    f16, q8 = register_outputs(job=job, outputs=outputs, workdir=work)
    assert f16.parent == job.input_variant and q8.parent == f16
    assert f16.params == {"type": "F16", "job": job.pk, "method": "gguf", "metrics": {"ppl": 1.0}}
    assert q8.params == {"type": "Q8_0", "job": job.pk, "method": "gguf"}
    assert q8.tool_versions == {"llama": "1"} and q8.bits_per_weight == 8.5
    assert q8.files.get().sha256 == hashlib.sha256(b"Q8_0" * 10).hexdigest()
    assert leftover_files(artifacts) == [f"variants/{f16.pk}/F16.gguf",
                                         f"variants/{q8.pk}/Q8_0.gguf"]


def test_job_outputs_are_all_or_nothing(job, artifacts):
    work = artifacts / "jobs" / "w"
    outputs = [_output(work, "F16"), _output(work, "Q8_0", parent_key="missing")]
    with pytest.raises(KeyError):
        register_outputs(job=job, outputs=outputs, workdir=work)
    assert list(Variant.objects.all()) == [job.input_variant]
    assert not (artifacts / "variants").exists() or not any((artifacts / "variants").iterdir())
    assert leftover_files(artifacts) == ["jobs/w/Q8_0/Q8_0.gguf"]  # the first moved and was removed


def test_job_outputs_outside_the_work_folder_are_refused(job, artifacts):
    with pytest.raises(ValueError, match="outside the job's work folder"):
        register_outputs(job=job, outputs=[_output(artifacts / "elsewhere", "F16")],
                         workdir=artifacts / "jobs" / "w")
    assert list(Variant.objects.all()) == [job.input_variant]
