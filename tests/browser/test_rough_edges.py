"""What a new user hits on every page, pinned in real Chromium against uvicorn.

Screenshots: every page, full length, at 1280 px and 390 px wide, go to
`<test session folder>/screenshots/<width>/<page>.png` (the session folder is
tests.support.testenv.SESSION_DIR, a `quantdash-test-*` folder under the system temp dir, kept
after the run for looking at).
"""

from datetime import timedelta

import pytest

from tests.support.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 390)

# For each page: the page scrolls sideways or not; each visible input without a label, an
# aria-label or aria-labelledby; anything focusable taken out of the tab order.
PAGE_CHECK = """() => {
  const visible = (el) => el.offsetParent !== null || el.getClientRects().length > 0;
  const fields = [...document.querySelectorAll("input, select, textarea")]
    .filter((el) => el.type !== "hidden" && visible(el));
  return {
    scrollWidth: document.scrollingElement.scrollWidth, innerWidth: window.innerWidth,
    unlabelled: fields.filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
                                      && !el.getAttribute("aria-labelledby")).map((el) => el.name || el.id),
    untabbable: [...fields, ...document.querySelectorAll("a[href], button, summary")]
      .filter((el) => visible(el) && el.tabIndex < 0 && !el.disabled).map((el) => el.outerHTML.slice(0, 80)),
  };
}"""
# Boxes on the page that hide part of their content behind a horizontal scrollbar.
CLIPPED = """(selector) => [...document.querySelectorAll(selector)]
  .filter((el) => el.scrollWidth > el.clientWidth + 1)
  .map((el) => (el.id || el.className) + ": " + el.scrollWidth + " > " + el.clientWidth)"""


@pytest.fixture
def site(teams):
    """The demo model in team red, a finished GGUF -> HF conversion of it, and a live worker."""
    from django.utils import timezone

    from catalog.imports.demo import demo_model_import
    from jobs.models import Job, Worker

    model = demo_model_import(team=teams["red"])
    variant = model.variants.get()
    started = timezone.now() - timedelta(minutes=2)
    job = Job.objects.create(
        team=teams["red"], submitted_by=teams["alice"], kind="import", method="hf-from-gguf",
        input_variant=variant, params={"dtype": "float16"}, status=Job.Status.SUCCEEDED, progress=100,
        stage="done", started_at=started, finished_at=started + timedelta(seconds=31), queue="cpu",
        log_tail="dequantizing 272 tensors\n/venv/transformers/modeling_utils.py:4: FutureWarning: "
                 "`torch_dtype` is deprecated! Use `dtype` instead!\nsaved hf/model.safetensors")
    Worker.objects.create(hostname="celery@a-rather-long-worker-hostname.example.internal",
                          queues=["cpu", "node.celery@a-rather-long-worker-hostname.example.internal"],
                          device="cpu", device_name="AMD EPYC 7763 64-Core Processor",
                          memory_bytes=24 * 2**30, methods=["gguf", "evaluate", "hf-from-gguf", "bnb-nf4"])
    return {"model": model, "variant": variant, "job": job}


def test_every_page_fits_1280_and_390_px_with_labelled_inputs(page, web_server, site, session_dir):
    m, v, j = site["model"].pk, site["variant"].pk, site["job"].pk
    pages = {"dashboard": "/", "planner": "/planner/?preset=mixtral-8x7b&hardware=t4",
             "catalog": "/catalog/", "model": f"/catalog/models/{m}/", "compare": f"/catalog/models/{m}/compare/",
             "import": "/jobs/import/", "datasets": "/catalog/datasets/", "jobs": "/jobs/",
             "new-job": f"/jobs/new?variant={v}", "job": f"/jobs/{j}/", "workers": "/jobs/workers/",
             "playground": "/playground/", "tokens": "/playground/tokens/"}
    browser_login(page, web_server, "alice")
    problems = []
    for width in WIDTHS:
        folder = session_dir / "screenshots" / str(width)
        folder.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": width, "height": 900})
        for name, path in pages.items():
            response = page.goto(f"{web_server}{path}")
            assert response.status == 200, (name, response.status)
            page.screenshot(path=folder / f"{name}.png", full_page=True)
            found = page.evaluate(PAGE_CHECK)
            if found["scrollWidth"] > found["innerWidth"]:
                problems.append(f"{width}px {name}: the page scrolls sideways "
                                f"({found['scrollWidth']} > {found['innerWidth']})")
            if found["unlabelled"]:
                problems.append(f"{width}px {name}: inputs without a label: {found['unlabelled']}")
            if found["untabbable"]:
                problems.append(f"{width}px {name}: out of the tab order: {found['untabbable']}")
            if width == 1280 and name in ("dashboard", "planner", "jobs"):
                # At a laptop's width these tables show every column: nothing hides behind a scrollbar.
                clipped = page.evaluate(CLIPPED, ".card, .table-scroll")
                if clipped:
                    problems.append(f"1280px {name}: columns cut off in {clipped}")
    assert not problems, "\n".join(problems)

    page.goto(f"{web_server}/")  # a keyboard user sees where the focus is
    page.keyboard.press("Tab")
    ring = page.evaluate("(() => { const s = getComputedStyle(document.activeElement);"
                         " return [s.outlineStyle, s.outlineWidth]; })()")
    assert ring == ["solid", "3px"], ring


def test_dashboard_and_job_page_for_a_conversion(page, web_server, site):
    job = site["job"]
    browser_login(page, web_server, "alice")
    workers = page.locator(".worker-rows")
    assert workers.get_by_role("columnheader", name="State").is_visible()
    assert workers.locator("td.state").first.inner_text().strip()
    row = page.locator(f".job-rows tr[data-job='{job.pk}']")
    assert "Convert GGUF → HF safetensors" in row.inner_text() and "import" not in row.inner_text().lower()
    row.get_by_role("link", name="Convert GGUF → HF safetensors").click()  # recent-job rows are links
    page.wait_for_url(f"{web_server}/jobs/{job.pk}/")
    assert page.locator("h1").inner_text() == f"Job {job.pk}: Convert GGUF → HF safetensors"
    assert page.locator(".job-state .timing").inner_text() == "took 31 s"
    assert page.locator("table.params").inner_text().split() == ["dtype", "float16"]
    page.locator("details.log > summary").click()
    assert page.locator("details.log > pre.log").inner_text() == "dequantizing 272 tensors\nsaved hf/model.safetensors"
    warnings = page.locator("details.log-warnings")
    assert warnings.locator("summary").inner_text() == "1 library warning (hidden)"
    assert not warnings.locator("pre").is_visible()
    assert page.locator(".outputs").count() == 0


def test_a_bnb_job_on_a_gguf_links_the_conversion_it_needs(page, web_server, site):
    v = site["variant"]
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/jobs/new?variant={v.pk}")
    page.select_option("#id_method", "bnb-nf4")
    page.wait_for_selector("#placement-error")
    assert "needs an HF safetensors variant" in page.locator("#placement-error").inner_text()
    with page.expect_navigation(url=f"{web_server}/jobs/*/"):
        page.locator("#make-hf").click()  # the action that makes one: a GGUF -> HF conversion job
    assert "Convert GGUF → HF safetensors" in page.locator("h1").inner_text()
    from jobs.models import Job

    made = Job.objects.exclude(pk=site["job"].pk).get()
    assert (made.method, made.input_variant_id, made.params) == ("hf-from-gguf", v.pk, {"dtype": "float16"})
    page.locator("button.danger", has_text="Cancel").click()  # no worker runs it; cancelled while queued
    page.wait_for_selector("[data-status=cancelled]")


def test_a_negative_context_is_refused_beside_the_field_and_the_old_plan_goes(page, web_server, teams):
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/planner/?preset=llama-3.1-8b&hardware=rtx-4090")
    assert page.locator("#plan-table").count() == 1
    page.fill("#id_context", "-5")
    page.locator("#id_context").press("Tab")
    page.wait_for_function("document.querySelector('#context-error').textContent !== ''")
    error = page.locator("#context-error").inner_text()
    assert "1" in error and error == page.locator("#id_context + .field-error").inner_text()
    assert page.locator("#plan-table").count() == 0  # the old plan is not left on screen
    # planner.js marks the input once htmx has settled the swap (htmx:afterSettle), a moment later
    page.wait_for_function("document.querySelector('#id_context').getAttribute('aria-invalid') !== 'false'")
    assert page.locator("#id_context").get_attribute("aria-invalid") == "true"
    assert page.locator("#id_context").get_attribute("aria-describedby") == "context-error"

    page.fill("#id_context", "8192")
    page.locator("#id_context").press("Tab")
    page.wait_for_selector("#plan-table")
    assert page.locator("#context-error").inner_text() == ""
    page.wait_for_function("document.querySelector('#id_context').getAttribute('aria-invalid') !== 'true'")
    assert page.locator("#id_context").get_attribute("aria-invalid") == "false"


def test_gpt_oss_20b_on_a_16gb_gpu_with_experts_in_ram_and_its_command_copied(page, web_server, teams):
    """The planner's scheme table: llama.cpp's schemes first (the rest folded away), the table fits 1280 px, the
    expert-offload control reaches the fit card's command, and Copy puts it on the clipboard."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web_server)
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/planner/")
    page.select_option("#id_preset", "gpt-oss-20b")
    page.wait_for_function("location.search.includes('preset=gpt-oss-20b')")
    page.select_option("#id_hardware", "t4")  # NVIDIA T4, 16 GB
    page.wait_for_function("location.search.includes('hardware=t4')")

    assert page.locator("#plan-table tr.unsupported").count() == 0
    other = page.locator("#other-schemes")
    assert other.get_attribute("open") is None and other.locator("tr.plan-row.unsupported").count() > 0
    assert not other.locator("tr.plan-row").first.is_visible()
    table_fits = "(() => { const t = document.querySelector('#plan-table');" \
                 " return t.scrollWidth <= t.parentElement.clientWidth; })()"
    assert page.evaluate(table_fits)

    page.fill("#id_n_cpu_moe", "12")  # the expert tensors of the last 12 layers stay in system RAM
    page.locator("#id_n_cpu_moe").press("Tab")
    page.wait_for_function("document.querySelector('#fit-command').textContent.includes('--n-cpu-moe 12')")
    assert "n_cpu_moe=12" in page.url
    card = page.locator("#fit-card")
    assert "experts of 12 layers in RAM" in card.inner_text()
    command = page.locator("#fit-command").inner_text()
    assert command.startswith("llama-server -m <path/to/gpt-oss-20b") and " -ngl " in command

    card.get_by_role("button", name="Copy").click()
    page.wait_for_function("document.querySelector('button[data-copy]').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == command
