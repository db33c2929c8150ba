"""File downloads stream with HTTP Range support, so an interrupted download resumes."""

import pytest
from django.urls import reverse

from catalog.imports import import_hf_folder

pytestmark = pytest.mark.django_db


@pytest.fixture
def weights(teams, tiny_hf, artifacts):
    folder, _ = tiny_hf
    variant = import_hf_folder(team_id=teams["red"].pk, user_id=None, folder=str(folder), name="t")
    f = variant.files.get(path="model.safetensors")
    return f, f.absolute_path.read_bytes()


def _get(client, f, **headers):
    return client.get(reverse("catalog:download", args=[f.pk]), headers=headers)


def test_full_download_is_200_with_length_and_accept_ranges(client, teams, weights):
    f, data = weights
    client.force_login(teams["alice"])
    response = _get(client, f)
    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes"
    assert int(response["Content-Length"]) == len(data)
    assert "attachment" in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == data


def test_range_is_206_with_exact_bytes_and_resume_completes_the_file(client, teams, weights):
    f, data = weights
    client.force_login(teams["carol"])
    first = _get(client, f, Range="bytes=0-999")
    assert first.status_code == 206
    assert first["Content-Range"] == f"bytes 0-999/{len(data)}"
    head = b"".join(first.streaming_content)
    assert head == data[:1000]
    rest = _get(client, f, Range=f"bytes={len(head)}-", **{"If-Range": f'"{f.sha256}"'})
    assert rest.status_code == 206
    assert int(rest["Content-Length"]) == len(data) - 1000
    assert head + b"".join(rest.streaming_content) == data


def test_suffix_range_and_range_past_the_end(client, teams, weights):
    f, data = weights
    client.force_login(teams["alice"])
    tail = _get(client, f, Range="bytes=-10")
    assert tail.status_code == 206 and b"".join(tail.streaming_content) == data[-10:]
    clipped = _get(client, f, Range=f"bytes={len(data) - 5}-{len(data) + 100}")
    assert b"".join(clipped.streaming_content) == data[-5:]
    bad = _get(client, f, Range=f"bytes={len(data)}-")
    assert bad.status_code == 416
    assert bad["Content-Range"] == f"bytes */{len(data)}"


def test_stale_if_range_gets_the_whole_file(client, teams, weights):
    f, data = weights
    client.force_login(teams["alice"])
    response = _get(client, f, Range="bytes=0-9", **{"If-Range": '"someotheretag"'})
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
