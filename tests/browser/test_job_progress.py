"""A user submits a GGUF job in the browser and watches its progress bar run to the end and its
output variants appear, without reloading the page."""

import pytest

from tests.support.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_submit_a_job_and_watch_it_finish(page, web_server, teams, demo_variant, celery_worker):
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/jobs/new?variant={demo_variant.pk}")
    page.select_option("#id_method", "gguf")
    page.uncheck("input[name=types][value=Q8_0]")
    for qtype in ("Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M"):
        page.check(f"input[name=types][value={qtype}]")
    page.wait_for_selector("#placement-ok")
    assert "queue cpu" in page.locator("#placement").inner_text()
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_url("**/jobs/*/")
    page.evaluate("window.sameDocument = true")

    seen = set()
    for _ in range(240):  # up to 60 s, sampling what the htmx-polled partial shows
        status = page.locator("[data-status]").get_attribute("data-status")
        value = float(page.locator("progress.job-bar").get_attribute("value"))
        seen.add(round(value))
        if status in ("succeeded", "failed", "cancelled"):
            break
        page.wait_for_timeout(250)
    assert status == "succeeded", page.locator("#job-progress").inner_text()
    assert len([v for v in seen if 0 < v < 100]) >= 2, f"progress seen: {sorted(seen)}"
    outputs = page.locator("#job-results ul.outputs li").all_inner_texts()
    assert len(outputs) == 4 and any("Q4_K_M" in o for o in outputs)
    assert page.evaluate("window.sameDocument") is True  # swapped in by the poll, not a reload

    page.goto(f"{web_server}/jobs/")
    assert "succeeded" in page.locator("#job-table").inner_text()


def test_the_form_names_a_bad_parameter(page, web_server, teams, demo_variant, celery_worker):
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/jobs/new?variant={demo_variant.pk}")
    page.uncheck("input[name=types][value=Q8_0]")
    page.uncheck("input[name=types][value=Q4_K_M]")
    page.get_by_role("button", name="Submit job").click()
    assert "choose at least one GGUF type" in page.locator(".field-types .error").inner_text()
