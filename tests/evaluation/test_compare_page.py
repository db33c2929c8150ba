"""Recording evaluations (catalog.evaluations) and the comparison page (catalog.comparison)."""

import pytest
from django.utils import timezone

from catalog.comparison import comparison_rows, scatter
from catalog.evaluations import evaluation_record
from catalog.models import Variant
from jobs.models import Job, Worker
from tests.support.fixtures import PASSWORD


def record(variant, ppl, sha="abc", kl=None, tps=None, rss=None):
    evaluation_record(planner=None, variant=variant, kind="perplexity", metrics={"perplexity": ppl},
                      method={"tokens_sha256": sha, "context": 256, "chunks": 4})
    if kl is not None:
        evaluation_record(planner=None, variant=variant, kind="kl",
                          metrics={"kl_mean": kl, "top1_agreement": 0.9}, method={})
    if tps is not None:
        evaluation_record(planner=None, variant=variant, kind="speed",
                          metrics={"decode_tokens_per_s": tps, "prefill_tokens_per_s": 10 * tps}, method={})
    if rss is not None:
        evaluation_record(planner=None, variant=variant, kind="memory", metrics={"peak_rss_bytes": rss}, method={})


@pytest.fixture
def family(teams, demo_variant):
    q8 = Variant.objects.create(model=demo_variant.model, parent=demo_variant, format="gguf",
                                quant_type="Q8_0", bits_per_weight=8.5)
    q2 = Variant.objects.create(model=demo_variant.model, parent=demo_variant, format="gguf",
                                quant_type="Q2_K", bits_per_weight=3.0)
    record(demo_variant, 20.0, tps=30.0, rss=300_000_000)
    record(q8, 19.5, kl=0.01, tps=25.0)
    record(q2, 31.0, sha="other-text", kl=0.4)
    return demo_variant, q8, q2


def test_recording_updates_the_variants_headline_numbers(family):
    base, q8, _ = family
    q8.refresh_from_db()
    assert q8.perplexity == 19.5 and q8.tokens_per_second == 25.0
    assert q8.metrics["kl_divergence"] == 0.01 and q8.metrics["prefill_tokens_per_second"] == 250.0
    assert q8.metrics["perplexity_method"]["tokens_sha256"] == "abc"
    assert set(q8.metrics["evaluations"]) == {"perplexity", "kl", "speed"}
    record(q8, 19.0)  # the latest evaluation wins
    q8.refresh_from_db()
    assert q8.perplexity == 19.0 and q8.evaluations.filter(kind="perplexity").count() == 2


def test_memory_is_stored_beside_the_planners_estimate(family):
    base = family[0]
    planner = {"total_bytes": 330_000_000, "scheme": "Q4_1", "decode_tokens_per_s": 40.0}
    memory = evaluation_record(planner=planner, variant=base, kind="memory",
                               metrics={"peak_rss_bytes": 300_000_000}, method={"context": 256})
    assert memory.metrics == {"peak_rss_bytes": 300_000_000, "planner_total_bytes": 330_000_000,
                              "planner_error_pct": 10.0}
    assert memory.method["planner"]["scheme"] == "Q4_1"
    speed = evaluation_record(planner=planner, variant=base, kind="speed",
                              metrics={"decode_tokens_per_s": 30.0}, method={})
    assert speed.metrics["planner_decode_tokens_per_s"] == 40.0
    base.refresh_from_db()
    assert base.metrics["planner_memory_bytes"] == 330_000_000


def test_the_runner_links_an_evaluate_jobs_measurements_to_the_job(family, teams):
    """The runner hands the job's planner estimate to the catalog and links the rows it made to
    the job (Job.evaluations), in the transaction that marks the job succeeded."""
    from jobs.runner import _record_evaluations

    base = family[0]
    job = Job.objects.create(team=teams["red"], kind="evaluate", method="evaluate", input_variant=base,
                             status=Job.Status.RUNNING,
                             estimate={"planner": {"total_bytes": 330_000_000, "scheme": "Q4_1"}})
    other = Job.objects.create(team=teams["red"], kind="evaluate", method="evaluate",
                               input_variant=base, status=Job.Status.RUNNING)
    assert _record_evaluations(job, [
        {"kind": "memory", "metrics": {"peak_rss_bytes": 300_000_000}, "method": {}},
        {"kind": "perplexity", "metrics": {"perplexity": 21.0}, "method": {"tokens_sha256": "abc"}},
    ]) == ("succeeded", "")
    job.refresh_from_db()
    memory, ppl = job.evaluations.order_by("pk")
    assert (memory.kind, ppl.kind) == ("memory", "perplexity")
    assert job.result["evaluation_ids"] == [memory.pk, ppl.pk]
    assert memory.metrics["planner_error_pct"] == 10.0 and list(memory.jobs.all()) == [job]
    assert not other.evaluations.exists()


def test_rows_show_delta_only_for_the_same_tokens_and_sort_with_missing_last(family):
    base, q8, q2 = family
    rows = comparison_rows(base.model, "ppl")
    assert [r.variant.pk for r in rows] == [q8.pk, base.pk, q2.pk]
    by_pk = {r.variant.pk: r for r in rows}
    assert by_pk[base.pk].is_base and by_pk[base.pk].delta_perplexity == 0
    assert by_pk[q8.pk].delta_perplexity == -0.5
    assert by_pk[q2.pk].delta_perplexity is None and not by_pk[q2.pk].comparable
    rows = comparison_rows(base.model, "-kl")
    assert [r.variant.pk for r in rows] == [q2.pk, q8.pk, base.pk]  # base has no KL: last
    assert [r.variant.pk for r in comparison_rows(base.model, "tps")] == [q8.pk, base.pk, q2.pk]


def test_scatter_places_lower_perplexity_higher_on_the_chart(family):
    base, q8, q2 = family
    chart = scatter(comparison_rows(base.model))
    # Only the base has files (the demo GGUF); the two hand-made variants have no size.
    assert [p["pk"] for p in chart.points] == [base.pk]
    assert chart.points[0]["size_mb"] == pytest.approx(base.total_bytes / 2**20, abs=0.1)
    assert chart.left <= chart.points[0]["x"] <= chart.right
    assert chart.top <= chart.points[0]["y"] <= chart.bottom


def test_compare_page_lists_every_variant_and_is_a_404_for_another_team(client, family, teams):
    base, q8, q2 = family
    client.login(username="alice", password=PASSWORD)
    page = client.get(f"/catalog/models/{base.model_id}/compare/?sort=ppl")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.index(f'id="compare-{q8.pk}"') < html.index(f'id="compare-{base.pk}"')
    assert 'id="size-vs-ppl"' in html and "other tokens" in html
    assert f'href="/catalog/models/{base.model_id}/compare/"' in client.get(
        f"/catalog/models/{base.model_id}/").content.decode()
    partial = client.get(f"/catalog/models/{base.model_id}/compare/?sort=-ppl", HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and b'class="sort desc"' in partial.content
    client.login(username="bob", password=PASSWORD)
    assert client.get(f"/catalog/models/{base.model_id}/compare/").status_code == 404


def test_evaluate_selected_submits_one_job_per_variant_with_the_same_params(client, family, teams):
    from catalog.models import Dataset

    base, q8, q2 = family
    Worker.objects.create(hostname="cpu@node1", queues=["cpu"], device="cpu", memory_bytes=24 * 2**30,
                          methods=["evaluate"], last_seen=timezone.now())
    # A row only: validate() does not open the file (it lives on the worker), and a rolled-back
    # test must leave no dataset folder behind for later tests that reuse the id.
    dataset = Dataset.objects.create(team=teams["red"], name="wikitext-2 test", kind="txt", path="test.txt")
    client.login(username="alice", password=PASSWORD)
    response = client.post(f"/catalog/models/{base.model_id}/compare/", {
        "variants": [base.pk, q8.pk], "dataset": dataset.pk, "mode": "quick", "chunks": "2"})
    assert response.status_code == 302
    jobs = Job.objects.filter(method="evaluate").order_by("input_variant_id")
    assert [j.input_variant_id for j in jobs] == [base.pk, q8.pk]
    assert {(j.params["chunks"], j.params["context"], j.params["dataset"]) for j in jobs} == {
        (2, 256, dataset.pk)}
    assert jobs[1].params["reference"] == base.pk and jobs[0].params["reference"] is None
