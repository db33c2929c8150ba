"""Datasets: .txt/.jsonl/.parquet uploads are validated and counted (whitespace tokens), Hub
dataset ids fail fast offline, another team's dataset is a 404."""

import json
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from catalog.models import Dataset
from formats.digest import file_sha256
from tests.catalog.conftest import leftover_files

pytestmark = pytest.mark.django_db


def _upload(client, teams, filename, data, **extra):
    client.force_login(teams["alice"])
    return client.post(reverse("catalog:datasets"), {
        "team": teams["red"].pk, "file": SimpleUploadedFile(filename, data), **extra})


def test_txt_upload_counts_lines_and_whitespace_tokens(client, teams, artifacts):
    text = "The quick brown fox\njumps over  the\tlazy dog.\n" * 100_000  # > one 4 MiB chunk
    response = _upload(client, teams, "wiki.txt", text.encode(), name="wiki")
    assert response.status_code == 302
    d = Dataset.objects.get(name="wiki")
    assert (d.kind, d.records, d.token_count) == ("txt", 200_000, 900_000)
    assert d.absolute_path == artifacts / "datasets" / str(d.pk) / "wiki.txt"
    assert d.sha256 == file_sha256(d.absolute_path) and d.bytes == len(text.encode())
    download = client.get(reverse("catalog:dataset-download", args=[d.pk]))
    assert b"".join(download.streaming_content) == text.encode()


def test_jsonl_counts_string_values(client, teams, artifacts):
    lines = [json.dumps({"text": "a b c", "id": 1}), "", json.dumps({"prompt": "x y", "answer": "z"})]
    assert _upload(client, teams, "qa.jsonl", "\n".join(lines).encode()).status_code == 302
    d = Dataset.objects.get()
    assert (d.kind, d.records, d.token_count) == ("jsonl", 2, 6)


def test_parquet_counts_string_columns(client, teams, artifacts, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["one two", "three four five", None], "n": [1, 2, 3]}), path)
    assert _upload(client, teams, "t.parquet", path.read_bytes()).status_code == 302
    d = Dataset.objects.get()
    assert (d.kind, d.records, d.token_count) == ("parquet", 3, 5)


@pytest.mark.parametrize("name, data, message", [
    ("bad.jsonl", b'{"text": "ok"}\nnot json\n', b"line 2 is not valid JSON"),
    ("bad.jsonl", b"[1, 2]\n", b"not a JSON object"),
    ("bad.txt", b"caf\xe9 latin-1", b"not UTF-8"),
    ("bad.parquet", b"PAR1 not really PAR1", b"not a readable Parquet file"),
    ("fake.parquet", b"hello", b"no PAR1 magic"),
    ("model.bin", b"\x80\x04", b"model.bin is a .bin file, not a dataset"),
    ("data.csv", b"a,b", b"data.csv is a .csv file, not a dataset"),
])
def test_bad_files_are_form_errors_and_leave_nothing(client, teams, artifacts, name, data, message):
    response = _upload(client, teams, name, data)
    assert response.status_code == 400 and message in response.content, response.content[-2000:]
    assert not Dataset.objects.exists()
    assert leftover_files(artifacts) == []


def test_hub_dataset_fails_fast_when_offline(client, teams, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    client.force_login(teams["alice"])
    started = time.monotonic()
    response = client.post(reverse("catalog:datasets"),
                           {"team": teams["red"].pk, "hub_id": "wikitext/wikitext-2"})
    assert time.monotonic() - started < 5
    assert response.status_code == 400
    assert b"the Hugging Face Hub is not reachable from this server" in response.content
    assert not Dataset.objects.exists()


def test_another_teams_dataset_is_404(client, teams, artifacts):
    _upload(client, teams, "secret.txt", b"red only")
    d = Dataset.objects.get()
    client.force_login(teams["bob"])
    assert client.get(reverse("catalog:dataset-download", args=[d.pk])).status_code == 404
    assert client.post(reverse("catalog:dataset-delete", args=[d.pk])).status_code == 404


def test_the_list_groups_the_counts_thousands(client, teams, artifacts):
    text = "one two three four five six seven eight nine ten eleven\n" * 21_929  # 241,219 words
    _upload(client, teams, "wiki.txt", text.encode(), name="wiki")
    html = client.get(reverse("catalog:datasets")).content.decode()
    assert '<td class="num">21,929</td><td class="num">241,219</td>' in html
