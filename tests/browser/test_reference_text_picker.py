"""An evaluation form's dataset picker offers WikiText-2 in one click; on this machine (no Hugging
Face Hub access) the click fails within seconds, beside the picker, saying which file to upload and
linking the upload form."""

import socket
import time

import pytest

from catalog.imports.hub import PROBE_TIMEOUT
from catalog.models import Dataset
from tests.support.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def no_hub():
    try:
        socket.getaddrinfo("huggingface.co", 443)
    except OSError:
        return
    pytest.skip("huggingface.co resolves here: this machine may reach the Hub")


@pytest.mark.parametrize("where", ["compare", "model", "new-job"])
def test_offline_the_import_says_what_to_upload_and_links_the_form(page, web_server, demo_variant, no_hub,
                                                                   where):
    model = demo_variant.model_id
    path = {"compare": f"/catalog/models/{model}/compare/", "model": f"/catalog/models/{model}/",
            "new-job": f"/jobs/new?variant={demo_variant.pk}&method=evaluate"}[where]
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}{path}")
    assert page.locator("#id_dataset").input_value() == ""  # no dataset yet
    started = time.monotonic()
    page.get_by_role("button", name="Import WikiText-2, test split").click()
    error = page.locator("#wikitext-error")
    error.wait_for(timeout=(PROBE_TIMEOUT + 4) * 1000)
    assert time.monotonic() - started < PROBE_TIMEOUT + 4
    text = error.inner_text()
    assert "Hugging Face Hub is not reachable" in text
    assert "upload wiki.test.raw from WikiText-2 (raw, wikitext-2-raw-v1) as plain UTF-8 text" in text
    assert not Dataset.objects.exists()

    error.get_by_role("link", name="Open the dataset upload form").click()
    page.wait_for_url(f"{web_server}/catalog/datasets/#add-dataset")
    assert page.locator("#add-dataset input[type=file]").is_visible()
