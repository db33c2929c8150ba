"""Alice uploads the demo GGUF through the import page (real uvicorn, Chromium), sees it in the
catalog with its quant type and size, and downloads it back byte for byte."""

import hashlib

import pytest

from tests.support.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * 1024**2):
            digest.update(chunk)
    return digest.hexdigest()


def test_upload_gguf_then_list_then_download(page, web_server, teams, tmp_path, celery_worker):
    from catalog.services import demo_model_path

    demo = demo_model_path()
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/catalog/")
    page.get_by_role("link", name="Import a model").click()
    page.set_input_files("#id_files", str(demo))
    page.fill("#id_name", "smol-upload")
    # A 94 MiB upload: give it time on a busy 2-core machine. The import then runs as a job.
    with page.expect_navigation(url=f"{web_server}/jobs/*/", timeout=120_000):
        page.get_by_role("button", name="Import").click()
    page.wait_for_selector("[data-status=succeeded], [data-status=failed], [data-status=cancelled]",
                           timeout=120_000)
    status = page.locator("[data-status]").get_attribute("data-status")
    assert status == "succeeded", page.locator("#job-progress").inner_text()
    page.locator("ul.outputs a").click()
    page.wait_for_url(f"{web_server}/catalog/models/*/")
    assert page.locator("h1").inner_text() == "smol-upload"
    row = page.locator("table.variants tbody tr").first
    assert row.locator(".quant-type").inner_text() == "Q4_1"
    assert row.locator(".size").inner_text() == "93.8\xa0MiB"  # 98,362,432 bytes, binary units (planner/templatetags/units.py)

    page.get_by_role("navigation").get_by_role("link", name="Catalog").click()
    listed = page.locator("#model-table tr", has_text="smol-upload")
    assert "Q4_1" in listed.inner_text()
    listed.get_by_role("link", name="smol-upload").click()

    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("link", name=demo.name).click()
    saved = tmp_path / "downloaded.gguf"
    info.value.save_as(saved)
    assert info.value.suggested_filename == demo.name
    assert _sha256(saved) == _sha256(demo)
