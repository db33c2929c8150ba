"""A config.json that can't be read is refused naming what is wrong with this one: not text,
not UTF-8, not JSON, over 1 MiB (the limit named), or not a config (no `model_type`)."""

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client, teams):
    client.force_login(teams["alice"])
    return client


@pytest.mark.parametrize("data, words", [
    (b"\x7fELF\x02\x01\x01\x00\x00", "config_file: is not text: it has a NUL byte at offset 7"),
    (b'{"a": "caf\xe9"}', "config_file: is not UTF-8 text (invalid continuation byte at offset 10)"),
    (b"model_type = llama", "config_file: is not valid JSON (Expecting value: line 1 column 1"),
    (b'{"x": "' + b"y" * (2 * 1024 * 1024 - 9) + b'"}',
     "config_file: 2,097,152 bytes is over the 1 MiB limit (1,048,576 bytes)"),
    (json.dumps({"hidden_size": 576}).encode(), "config_file: model_type: is required"),
])
def test_an_uploaded_config_names_what_is_wrong_with_it(alice, data, words):
    upload = SimpleUploadedFile("config.json", data, "application/json")
    html = alice.post("/planner/", {"source": "config", "config_file": upload}).content.decode()
    assert html.count(words) == 1, re.findall(r"data-field=[^<]*", html)


def test_binary_text_pasted_in_the_box_is_called_not_text(alice):
    html = alice.post("/planner/", {"source": "config", "config": "\x7fELF\x00\x00"}).content.decode()
    assert "config: is not text: it has NUL bytes (a binary file?)" in html
    assert "Null characters are not allowed" not in html
