"""The evaluation forms' one-click WikiText-2 import: offline it fails within seconds and says which
file to upload, with the upload form's link (this machine has no Hub access: the failure is real);
the Hub's Parquet file becomes the original plain text, registered like an uploaded .txt; and the
file the message names is accepted by the upload form as it comes."""

import socket
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from catalog.datasets import dataset_upload
from catalog.imports.hub import PROBE_TIMEOUT
from catalog.models import Dataset
from catalog.services import CatalogError
from catalog.reference_text import wikitext_import, wikitext_parquet_to_text
from tests.catalog.conftest import leftover_files
from tests.support.processes import WIKITEXT

pytestmark = pytest.mark.django_db


def hub_style_parquet(text: str, path) -> None:
    """A Parquet file laid out as the Hub's wikitext-2-raw-v1 ones are: a "text" column, one row
    per line with its newline, and "" for each blank (" \\n") line."""
    rows = ["" if line == " \n" else line for line in text.splitlines(keepends=True)]
    pq.write_table(pa.table({"text": rows}), path, row_group_size=1000)


def test_the_hubs_parquet_becomes_the_original_text_and_a_txt_dataset(tmp_path, teams, artifacts):
    original = (WIKITEXT / "test.txt").read_text(encoding="utf-8")
    hub_style_parquet(original, tmp_path / "test-00000-of-00001.parquet")
    wikitext_parquet_to_text(tmp_path / "test-00000-of-00001.parquet", tmp_path / "wiki.test.raw")
    assert (tmp_path / "wiki.test.raw").read_bytes() == (WIKITEXT / "test.txt").read_bytes()

    dataset = dataset_upload(team_id=teams["red"].pk, user_id=teams["alice"].pk,
                             path=str(tmp_path / "wiki.test.raw"), name="WikiText-2 raw test")
    assert (dataset.kind, dataset.path, dataset.bytes) == ("txt", "wiki.test.raw", len(original.encode()))
    assert (dataset.records, dataset.token_count) == (original.count("\n"), len(original.split()))


def test_a_parquet_without_a_text_column_is_refused(tmp_path):
    pq.write_table(pa.table({"tokens": [1, 2, 3]}), tmp_path / "other.parquet")
    with pytest.raises(CatalogError, match="has no text column"):
        wikitext_parquet_to_text(tmp_path / "other.parquet", tmp_path / "out.txt")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(CatalogError, match="not a readable Parquet file"):
        wikitext_parquet_to_text(tmp_path / "broken.parquet", tmp_path / "out.txt")


def test_the_named_file_uploads_as_it_comes(client, teams, artifacts):
    """The message says to upload wiki.test.raw: the form takes it without a rename, as text."""
    client.force_login(teams["alice"])
    upload = SimpleUploadedFile("wiki.test.raw", (WIKITEXT / "test.txt").read_bytes())
    response = client.post(reverse("catalog:datasets"), {"team": teams["red"].pk, "file": upload})
    assert response.status_code == 302, response.content[-2000:]
    assert Dataset.objects.get().kind == "txt"


def post_import(client, teams, split="test"):
    client.force_login(teams["alice"])
    started = time.monotonic()
    response = client.post(reverse("catalog:dataset-wikitext"), {"split": split, "team": teams["red"].pk},
                           HTTP_HX_REQUEST="true")
    return response, time.monotonic() - started


def assert_says_what_to_upload(response, filename: str) -> None:
    page = response.content.decode()
    assert response.status_code == 200  # htmx shows it where the user clicked
    assert "The Hugging Face Hub is not reachable from this server" in page
    assert f"upload {filename} from WikiText-2 (raw, wikitext-2-raw-v1) as plain UTF-8 text" in page
    assert f'href="{reverse("catalog:datasets")}#add-dataset"' in page


def test_offline_it_fails_fast_and_says_what_to_upload(client, teams, artifacts, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    response, took = post_import(client, teams, "valid")
    assert took < PROBE_TIMEOUT
    assert_says_what_to_upload(response, "wiki.valid.raw")
    assert not Dataset.objects.exists() and leftover_files(artifacts) == []


def test_on_this_machine_without_the_hub(client, teams, artifacts):
    """The Hub's real address, as a server without internet access sees it."""
    try:
        socket.getaddrinfo("huggingface.co", 443)
    except OSError:
        pass
    else:
        pytest.skip("huggingface.co resolves here: this machine may reach the Hub")
    response, took = post_import(client, teams)
    assert took < PROBE_TIMEOUT + 2
    assert_says_what_to_upload(response, "wiki.test.raw")
    assert not Dataset.objects.exists()


def test_a_team_that_has_it_or_an_unknown_split_is_told_without_asking_the_hub(teams, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    Dataset.objects.create(team=teams["red"], name="WikiText-2 raw test", kind="txt", path="wiki.test.raw")
    with pytest.raises(CatalogError, match="already has WikiText-2 raw test"):
        wikitext_import(team_id=teams["red"].pk, user_id=None, split="test")
    with pytest.raises(CatalogError, match="no split 'train'"):
        wikitext_import(team_id=teams["red"].pk, user_id=None, split="train")
