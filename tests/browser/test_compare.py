"""The comparison page in a browser: tick a variant, evaluate it on the real worker, watch the
job page show its results when it ends (no reload), see its perplexity in the table and its point
on the size-vs-perplexity chart, sort the table (htmx); the chart's labels stay inside it."""

import pytest

from catalog.models import Variant
from jobs.models import Job
from tests.support.fixtures import browser_login
from tests.support.processes import WIKITEXT

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_evaluate_from_the_compare_page_and_see_the_chart(page, web_server, teams, demo_variant,
                                                          celery_worker):
    from catalog.datasets import dataset_upload
    from catalog.evaluations import evaluation_record

    dataset = dataset_upload(team_id=teams["red"].pk, user_id=teams["alice"].pk, path=str(WIKITEXT / "test.txt"),
                             name="wikitext-2 test")
    # A second variant measured earlier (no files, so no point on the chart), to sort against.
    other = Variant.objects.create(model=demo_variant.model, parent=demo_variant, format="gguf",
                                   quant_type="Q2_K")
    evaluation_record(planner=None, variant=other, kind="perplexity", metrics={"perplexity": 99.0},
                      method={"tokens_sha256": "another text"})

    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/catalog/models/{demo_variant.model_id}/")
    page.click("#compare-link")
    page.wait_for_url(f"**/catalog/models/{demo_variant.model_id}/compare/")
    assert page.locator(f"#compare-{demo_variant.pk} td.ppl").inner_text() == "—"

    page.check(f"input[name=variants][value='{demo_variant.pk}']")
    page.select_option("#id_dataset", str(dataset.pk))
    page.fill("input[name=context]", "128")
    page.fill("input[name=chunks]", "1")
    page.click("#evaluate-selected")
    page.wait_for_selector("text=Evaluating: job")
    job = Job.objects.get(method="evaluate", input_variant=demo_variant)
    assert (job.params["context"], job.params["chunks"], job.params["dataset"]) == (128, 1, dataset.pk)

    # The job page, opened while the job runs, shows the results once it ends: no reload.
    page.goto(f"{web_server}/jobs/{job.pk}/")
    first_status = page.locator("[data-status]").get_attribute("data-status")
    page.evaluate("window.openedOnce = true")
    page.wait_for_selector("[data-status=succeeded], [data-status=failed]", timeout=300_000)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error + job.log_tail[-2000:]
    assert first_status in ("queued", "running")
    page.wait_for_selector("#evaluations tr.evaluation-perplexity")
    assert page.evaluate("window.openedOnce") is True  # the same document: it was never reloaded
    shown = page.locator("#evaluations tr.evaluation-perplexity").inner_text()
    assert str(job.evaluations.get(kind="perplexity").metrics["perplexity"]) in shown

    page.goto(f"{web_server}/catalog/models/{demo_variant.model_id}/compare/")
    ppl = float(page.locator(f"#compare-{demo_variant.pk} td.ppl .value").inner_text())
    assert ppl == job.evaluations.get(kind="perplexity").metrics["perplexity"]
    assert page.locator(f"#compare-{demo_variant.pk} td.delta").inner_text() == "0.0000"
    assert page.locator(f"#compare-{other.pk} td.delta").inner_text() == "other tokens"
    assert page.locator(f"#compare-{demo_variant.pk} td.tps").inner_text() != "—"
    point = page.locator(f"#size-vs-ppl g.point[data-variant='{demo_variant.pk}'] title")
    assert f"perplexity {ppl}" in point.text_content()

    page.click("a[data-sort-key=ppl]")  # htmx swaps the table in and pushes ?sort=ppl
    page.wait_for_selector("table.compare[data-sort=ppl]")
    ids = page.locator("table.compare tbody tr").evaluate_all("rows => rows.map(r => r.id)")
    assert ids == [f"compare-{demo_variant.pk}", f"compare-{other.pk}"]
    assert page.url.endswith("?sort=ppl")
    page.click("a[data-sort-key=ppl]")
    page.wait_for_selector("table.compare[data-sort='-ppl']")
    ids = page.locator("table.compare tbody tr").evaluate_all("rows => rows.map(r => r.id)")
    assert ids == [f"compare-{other.pk}", f"compare-{demo_variant.pk}"]

    assert "base" in page.locator("#chart-legend").inner_text()


def test_the_chart_keeps_long_labels_inside_and_shows_which_point_is_the_base(page, web_server, teams,
                                                                               demo_variant):
    from catalog.evaluations import evaluation_record
    from catalog.models import File

    same = {"tokens_sha256": "one text"}
    evaluation_record(planner=None, variant=demo_variant, kind="perplexity", metrics={"perplexity": 20.5},
                      method=same)
    # The largest and the smallest variant, with long labels: their points sit at the chart's
    # right and left edges and the highest perplexity at its top.
    for quant_type, size, ppl in (("Q8_0-with-a-rather-long-descriptive-suffix", 400 * 2**20, 20.1),
                                  ("IQ1_S-also-with-a-long-name", 5 * 2**20, 95.0)):
        child = Variant.objects.create(model=demo_variant.model, parent=demo_variant, format="gguf",
                                       quant_type=quant_type)
        File.objects.create(variant=child, path="model.gguf", bytes=size, sha256="0" * 64)
        evaluation_record(planner=None, variant=child, kind="perplexity", metrics={"perplexity": ppl},
                          method=same)

    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/catalog/models/{demo_variant.model_id}/compare/")
    chart = page.locator("#size-vs-ppl").bounding_box()
    boxes = page.locator("#size-vs-ppl text").evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return [e.textContent, r.left, r.top, r.right, r.bottom]; })")
    assert len(boxes) == 5 + 5 + 2 + 3  # ticks, axis names, one label per point
    for text, left, top, right, bottom in boxes:
        assert (chart["x"] <= left and right <= chart["x"] + chart["width"]
                and chart["y"] <= top and bottom <= chart["y"] + chart["height"]), (text, chart)
    base = page.locator("#size-vs-ppl g.point.base")
    assert base.count() == 1 and base.get_attribute("data-variant") == str(demo_variant.pk)
    legend = page.locator("#chart-legend")
    assert "base (the lineage root" in legend.inner_text()
    swatch = legend.locator(".swatch").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert swatch == "rgb(192, 57, 43)" == _rgb(base.locator("circle").get_attribute("fill"))


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"
