"""Evaluating from the model page in a browser: tick the demo Q4_1 (the lineage root) and a Q8_0
made from it, pick WikiText-2 test, submit; the page follows both jobs' progress (htmx polling
of its variants table, which stops with 286 once they end) and the KL columns (Mean KLD, 99.9 %
KLD, RMS Δp, Same top) fill in for the Q8_0 without a reload; the root, which has no reference,
keeps "—" there."""

import pytest

from catalog.models import Variant
from jobs.models import Job
from tests.support.fixtures import browser_login
from tests.support.processes import WIKITEXT

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def q8_child(demo_variant, demo_gguf, tmp_path) -> Variant:
    """The demo Q4_1 requantized to Q8_0 by llama.cpp's llama-quantize, registered as its child."""
    from jobs import llama_tools
    from tests.support.artifacts import register_copy

    folder = tmp_path / "q8"
    folder.mkdir()
    llama_tools.run("llama-quantize", ["--allow-requantize", str(demo_gguf),
                                       str(folder / "model-Q8_0.gguf"), "Q8_0", "2"])
    return register_copy(model=demo_variant.model, folder=folder, format="gguf", quant_type="Q8_0",
                         parent=demo_variant)


def _number(text: str) -> float:
    return float(text.replace("%", "").strip())


def test_evaluate_two_variants_from_the_model_page(page, web_server, teams, demo_variant, q8_child,
                                                    celery_worker):
    from catalog.datasets import dataset_upload

    dataset = dataset_upload(team_id=teams["red"].pk, user_id=teams["alice"].pk,
                             path=str(WIKITEXT / "test.txt"), name="wikitext-2 test")
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/catalog/models/{demo_variant.model_id}/")
    child_row = page.locator(f"#variant-{q8_child.pk}")
    assert child_row.locator("td.kl").inner_text() == "—"

    page.check(f"#pick-{demo_variant.pk}")
    page.check(f"#pick-{q8_child.pk}")
    page.select_option("#id_dataset", str(dataset.pk))
    page.select_option("#id_mode", "quick")
    page.fill("input[name=context]", "128")
    page.fill("input[name=chunks]", "2")
    page.click("#evaluate-selected")
    page.wait_for_url("**/catalog/models/*/?watch=*")
    page.evaluate("window.sameDocument = true")
    jobs = list(Job.objects.filter(method="evaluate").order_by("input_variant_id"))
    assert [j.input_variant_id for j in jobs] == [demo_variant.pk, q8_child.pk]
    assert {(j.params["context"], j.params["chunks"], j.params["dataset"]) for j in jobs} == {
        (128, 2, dataset.pk)}

    page.wait_for_selector(f"#evaluating-{jobs[1].pk}")  # the jobs' progress, polled in
    page.wait_for_selector("#model-variants[data-polling=false]", timeout=300_000)
    for job in jobs:
        job.refresh_from_db()
        assert job.status == Job.Status.SUCCEEDED, job.error + job.log_tail[-2000:]
    assert page.locator("#evaluating [data-job-status=succeeded]").count() == 2
    assert page.evaluate("window.sameDocument") is True  # filled in by the poll, not a reload

    kl = q8_child.evaluations.get(kind="kl").metrics
    shown = {key: child_row.locator(f"td.{key} .value").inner_text()
             for key in ("kl", "kl_p99_9", "dp_rms", "same_top")}
    assert shown == {"kl": f"{kl['kl_mean']:.6f}", "kl_p99_9": f"{kl['kl_p99_9']:.6f}",
                     "dp_rms": f"{100 * kl['dp_rms']:.3f} %", "same_top": f"{100 * kl['same_top']:.3f} %"}
    # Q8_0 of a Q4_1 is close to it, not identical: small positive KL, most top tokens agree.
    assert 0 < _number(shown["kl"]) < 0.1 and _number(shown["same_top"]) > 80
    assert "±" in child_row.locator("td.kl").inner_text()
    assert "llama.cpp perplexity --kl-divergence statistics" in child_row.locator(
        "td.kl_p99_9").get_attribute("title")
    root_row = page.locator(f"#variant-{demo_variant.pk}")
    assert root_row.locator("td.kl").inner_text() == "—"  # the root is its own reference
    assert root_row.locator("td.ppl .value").inner_text() != ""
