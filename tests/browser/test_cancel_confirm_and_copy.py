"""What the page shows before a running job is cancelled (a confirm naming the progress lost) and
the Copy button beside a new API token, in real Chromium against uvicorn."""

from datetime import timedelta

import pytest

from tests.support.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_cancelling_a_running_job_asks_first_naming_its_progress(page, web_server, teams, demo_variant):
    from django.utils import timezone

    from jobs.models import Job

    job = Job.objects.create(team=teams["red"], kind="quantize", method="gptq", queue="cpu",
                             input_variant=demo_variant, status=Job.Status.RUNNING, progress=42.0,
                             stage="quantize", worker="cpu@elsewhere",
                             started_at=timezone.now() - timedelta(minutes=3), heartbeat=timezone.now())
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/jobs/{job.pk}/")
    asked = []

    def answer(dialog, accept):
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda d: answer(d, False))
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_timeout(500)
    assert asked and asked[0].startswith(f"Cancel job #{job.pk}? It is 42 % done (quantize), after 3 min")
    job.refresh_from_db()
    assert not job.cancel_requested                     # dismissed: nothing was sent

    page.once("dialog", lambda d: answer(d, True))
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_selector("button:has-text('Cancelling…')")
    job.refresh_from_db()
    assert job.cancel_requested


def test_a_new_api_token_has_a_copy_button(page, web_server, teams):
    browser_login(page, web_server, "alice")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{web_server}/playground/tokens/")
    page.fill("input[name=name]", "laptop")
    page.get_by_role("button", name="Create token").click()
    key = page.locator("#new-token-key").inner_text()
    page.get_by_role("button", name="Copy").click()
    page.wait_for_selector("#copy-token:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == key
