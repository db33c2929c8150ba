"""A dataset upload that can't be a dataset is refused once, on the file field, saying what was
wrong with this file (its kind, not text, not UTF-8), not with advice meant for model weights."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from catalog.models import Dataset

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name, data, message", [
    ("garbage.bin", b"\x80\x04\x95garbage", "garbage.bin is a .bin file, not a dataset: upload UTF-8 text (.txt)"),
    ("garbage", b"\x00\x01", "garbage is a file without an extension, not a dataset"),
    ("garbage.txt", b"hello\x00\x01\x02", "garbage.txt is not text: it has a NUL byte at offset 5 (a binary file?)"),
    ("latin.txt", b"caf\xe9 au lait", "latin.txt is not UTF-8 text (invalid continuation byte near offset 3)"),
])
def test_a_bad_dataset_file_is_named_once_on_the_file_field(client, teams, artifacts, name, data, message):
    client.force_login(teams["alice"])
    response = client.post(reverse("catalog:datasets"),
                           {"team": teams["red"].pk, "file": SimpleUploadedFile(name, data)})
    html = response.content.decode()
    assert response.status_code == 400
    assert html.count(message) == 1, html[-3000:]
    assert "pickle" not in html and "safetensors" not in html
    assert not Dataset.objects.exists()
