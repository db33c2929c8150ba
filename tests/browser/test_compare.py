"""The comparison page in a browser: tick a variant, evaluate it on the real worker, see its
perplexity in the table and its point on the size-vs-perplexity chart, sort the table (htmx)."""

import pytest

from catalog.models import Variant
from jobs.models import Job
from tests.support.fixtures import browser_login
from tests.support.processes import WIKITEXT, wait_until

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
    wait_until(lambda: Job.objects.get(pk=job.pk).is_final, 300, interval=1, what="the evaluate job")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error + job.log_tail[-2000:]

    page.reload()
    ppl = float(page.locator(f"#compare-{demo_variant.pk} td.ppl").inner_text())
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

    page.goto(f"{web_server}/jobs/{job.pk}/")
    assert "perplexity" in page.locator("#evaluations").inner_text()
