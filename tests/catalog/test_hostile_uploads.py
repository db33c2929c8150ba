"""Hostile input is refused with a clear message (form error or 4xx), never a 500, and leaves
no rows and no files behind."""

import json
import struct
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from catalog.safety import extract_archive
from catalog.models import Model, Variant
from catalog.safety import read_safetensors_header
from catalog.services import CatalogError
from catalog.uploads import CappedUploadHandler, UploadTooLarge
from tests.catalog.conftest import leftover_files, run_queued_jobs
from tests.catalog.factories import safetensors_bytes, tar_with_device, uploads, zip_bytes

pytestmark = pytest.mark.django_db


def _post(client, teams, files):
    client.force_login(teams["alice"])
    return client.post(reverse("jobs:import"),
                       {"source": "upload", "team": teams["red"].pk, "files": files})


def _refused(response, message: bytes, artifacts: Path) -> None:
    """Refused by the form (400), or — for checks that need the archive unpacked — by the import
    job, which then fails naming the problem. Either way nothing is registered or left behind."""
    if response.status_code == 302:
        [job] = run_queued_jobs()
        assert job.status == "failed", job.status
        assert message.decode() in job.error, job.error
    else:
        assert response.status_code == 400, response.status_code
        assert message in response.content, response.content.decode()[-3000:]
    assert not Model.objects.exists() and not Variant.objects.exists()
    assert leftover_files(artifacts) == []


def test_pickle_weights_are_refused(client, teams, tiny_hf, artifacts):
    folder, _ = tiny_hf
    files = uploads(folder) + [SimpleUploadedFile("pytorch_model.bin", b"\x80\x04K\x01.")]
    _refused(_post(client, teams, files), b"pickle-based weights (.bin) are refused", artifacts)


def test_config_with_auto_map_is_refused(client, teams, tiny_hf, artifacts):
    folder, _ = tiny_hf
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    files = [f for f in uploads(folder) if f.name != "config.json"]
    files.append(SimpleUploadedFile("config.json", json.dumps(config).encode()))
    _refused(_post(client, teams, files), b"auto_map", artifacts)


@pytest.mark.parametrize("member, message", [
    ("../evil.json", b"points outside the archive"),
    ("/etc/evil.json", b"absolute path"),
])
def test_zip_with_escaping_paths_is_refused(client, teams, artifacts, member, message):
    archive = zip_bytes({"model/config.json": b"{}", member: b"{}"})
    _refused(_post(client, teams, [SimpleUploadedFile("m.zip", archive)]), message, artifacts)


def test_zip_with_a_symlink_is_refused(client, teams, artifacts):
    archive = zip_bytes({"model/config.json": b"{}"}, symlinks={"model/link": "/etc/passwd"})
    _refused(_post(client, teams, [SimpleUploadedFile("m.zip", archive)]), b"is a link", artifacts)


def test_tar_with_a_device_file_is_refused(tmp_path):
    archive = tmp_path / "m.tar"
    archive.write_bytes(tar_with_device())
    with pytest.raises(CatalogError, match="device"):
        extract_archive(archive, tmp_path / "out")


def test_zip_bomb_stops_at_the_cap(tmp_path):
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(zip_bytes({"model/zeros.txt": b"\0" * (50 * 1024**2)}))
    assert archive.stat().st_size < 100_000  # compresses about 1000:1
    with pytest.raises(CatalogError, match="decompression bomb"):
        extract_archive(archive, tmp_path / "out")
    written = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written <= archive.stat().st_size * 100  # stopped at the ratio cap, not at 50 MiB


def test_zip_bomb_upload_is_a_form_error(client, teams, artifacts):
    archive = zip_bytes({"model/zeros.txt": b"\0" * (20 * 1024**2)})
    _refused(_post(client, teams, [SimpleUploadedFile("bomb.zip", archive)]),
             b"decompression bomb", artifacts)


def _safetensors(tmp_path, data: bytes) -> Path:
    path = tmp_path / "model.safetensors"
    path.write_bytes(data)
    return path


def test_safetensors_header_length_past_the_end(tmp_path):
    path = _safetensors(tmp_path, struct.pack("<Q", 10**9) + b"{}")
    with pytest.raises(CatalogError, match="runs past the end"):
        read_safetensors_header(path)


def test_safetensors_oversized_header(tmp_path):
    path = tmp_path / "model.safetensors"
    with open(path, "wb") as f:  # sparse: a 101 MiB header that does fit in the file
        f.write(struct.pack("<Q", 101 * 1024**2))
        f.truncate(102 * 1024**2)
    with pytest.raises(CatalogError, match="over the .*limit"):
        read_safetensors_header(path)


def test_safetensors_overlapping_offsets(tmp_path):
    data = safetensors_bytes({"a": ("F32", [4], (0, 16)), "b": ("F32", [4], (8, 24))}, data_len=24)
    with pytest.raises(CatalogError, match="overlap"):
        read_safetensors_header(_safetensors(tmp_path, data))


@pytest.mark.parametrize("tensors, data_len, message", [
    ({"a": ("F32", [4], (0, 32))}, 16, "outside the data section"),
    ({"a": ("F32", [5], (0, 16))}, 16, "does not match"),
    ({"a": ("Q4_EVIL", [4], (0, 16))}, 16, "unknown dtype"),
])
def test_safetensors_bad_tensor_entries(tmp_path, tensors, data_len, message):
    with pytest.raises(CatalogError, match=message):
        read_safetensors_header(_safetensors(tmp_path, safetensors_bytes(tensors, data_len=data_len)))


def test_safetensors_not_json_is_refused(tmp_path):
    with pytest.raises(CatalogError, match="not valid JSON"):
        read_safetensors_header(_safetensors(tmp_path, struct.pack("<Q", 4) + b"{{{{"))


def test_hostile_safetensors_upload_is_a_form_error(client, teams, tiny_hf, artifacts):
    folder, _ = tiny_hf
    bad = safetensors_bytes({"a": ("F32", [4], (0, 16)), "b": ("F32", [4], (8, 24))}, data_len=24)
    files = [f for f in uploads(folder) if f.name != "model.safetensors"]
    files.append(SimpleUploadedFile("model.safetensors", bad))
    _refused(_post(client, teams, files), b"overlap", artifacts)


def test_malformed_gguf_is_a_form_error(client, teams, artifacts):
    bad = b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + struct.pack("<Q", 2**40)  # key length 1 TiB
    _refused(_post(client, teams, [SimpleUploadedFile("evil.gguf", bad)]),
             b"is not a valid GGUF file", artifacts)


def test_not_a_gguf_at_all(client, teams, artifacts):
    _refused(_post(client, teams, [SimpleUploadedFile("x.gguf", b"PK\x03\x04 nope")]),
             b"bad magic", artifacts)


@override_settings(UPLOAD_MAX_BYTES=1024)
def test_upload_over_the_cap_is_413_before_the_body_is_read(client, teams, artifacts):
    client.force_login(teams["alice"])
    response = client.post(reverse("jobs:import"), {
        "source": "upload", "team": teams["red"].pk,
        "files": [SimpleUploadedFile("big.gguf", b"G" * 4096)]})
    assert response.status_code == 413
    assert b"UPLOAD_MAX_BYTES" in response.content
    assert leftover_files(artifacts) == []


@override_settings(UPLOAD_MAX_BYTES=1024)
def test_streamed_bytes_are_counted_even_when_content_length_lies():
    handler = CappedUploadHandler()
    handler.handle_raw_input(None, {}, 10, b"x")  # claims 10 bytes
    handler.new_file("file", "big.gguf", "application/octet-stream", 10)
    handler.receive_data_chunk(b"x" * 1000, 0)
    with pytest.raises(UploadTooLarge):
        handler.receive_data_chunk(b"x" * 1000, 1000)
    handler.file.close()
