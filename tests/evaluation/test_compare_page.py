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


# A plan as the evaluate method stores it in job.estimate["planner"], and the conditions the
# served-memory process reports for the same configuration (what llama-cpp-python 0.3.36 ran with
# for Llama(n_ctx=256, n_threads=2) on this x86 AVX2 node).
PLAN = {"what": "served at context 256", "runtime": "llama.cpp", "device": "cpu", "cpu_isa": "x86-avx2",
        "context": 256, "threads": 2, "kv_dtype": "f16", "flash_attn": False, "n_ubatch": 512,
        "batch": 1, "scheme": "Q4_1", "total_bytes": 330_000_000, "decode_tokens_per_s": 40.0}
SERVED = {"what": "served at context 256", "context": 256,
          "conditions": {"n_ctx": 256, "kv_cells": 256, "n_batch": 256, "n_ubatch": 256, "threads": 2,
                         "type_k": "f16", "type_v": "f16", "flash_attn": False, "cpu_isa": "x86-avx2"}}


def test_memory_is_stored_beside_the_planners_estimate_for_the_same_thing(family):
    base = family[0]
    memory = evaluation_record(planner=PLAN, variant=base, kind="memory",
                               metrics={"peak_rss_bytes": 300_000_000}, method=SERVED)
    assert memory.metrics == {"peak_rss_bytes": 300_000_000, "planner_total_bytes": 330_000_000,
                              "planner_error_pct": 10.0}
    assert memory.method["planner"]["scheme"] == "Q4_1"
    speed = evaluation_record(planner=PLAN, variant=base, kind="speed",
                              metrics={"decode_tokens_per_s": 30.0}, method={})
    assert speed.metrics["planner_decode_tokens_per_s"] == 40.0
    base.refresh_from_db()
    assert base.metrics["planner_memory_bytes"] == 330_000_000


@pytest.mark.parametrize("method, reason", [
    ({"what": "evaluation process at context 256", "context": 256},
     "this figure is the evaluation process at context 256"),
    ({**SERVED, "conditions": {**SERVED["conditions"], "flash_attn": True, "threads": 1}},
     "threads 2 planned, 1 measured; flash attention False planned, True measured"),
    ({**SERVED, "conditions": {**SERVED["conditions"], "cpu_isa": "aarch64"}},
     "planned for an x86-avx2 CPU, measured on aarch64"),
])
def test_memory_measured_otherwise_than_planned_is_not_compared(family, method, reason):
    """The issue's case: the evaluation process's peak (logits of every position, the text,
    numpy) against a served process's plan read as "the planner is off by 3×"."""
    base = family[0]
    memory = evaluation_record(planner=PLAN, variant=base, kind="memory",
                               metrics={"peak_rss_bytes": 519 * 2**20}, method=method)
    assert reason in memory.metrics["planner_not_compared"]
    assert "planner_total_bytes" not in memory.metrics and "planner_error_pct" not in memory.metrics
    base.refresh_from_db()
    assert "planner_memory_bytes" not in base.metrics


def test_the_runner_links_an_evaluate_jobs_measurements_to_the_job(family, teams):
    """The runner hands the job's planner estimate to the catalog and links the rows it made to
    the job (Job.evaluations), in the transaction that marks the job succeeded."""
    from jobs.runner import record_evaluations

    base = family[0]
    job = Job.objects.create(team=teams["red"], kind="evaluate", method="evaluate", input_variant=base,
                             status=Job.Status.RUNNING,
                             estimate={"planner": PLAN})
    other = Job.objects.create(team=teams["red"], kind="evaluate", method="evaluate",
                               input_variant=base, status=Job.Status.RUNNING)
    assert record_evaluations(job, [
        {"kind": "memory", "metrics": {"peak_rss_bytes": 300_000_000}, "method": SERVED},
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
    response = client.post(f"/jobs/models/{base.model_id}/compare/evaluate", {
        "variants": [base.pk, q8.pk], "dataset": dataset.pk, "mode": "quick", "chunks": "2"})
    assert response.status_code == 302
    jobs = Job.objects.filter(method="evaluate").order_by("input_variant_id")
    assert [j.input_variant_id for j in jobs] == [base.pk, q8.pk]
    assert {(j.params["chunks"], j.params["context"], j.params["dataset"]) for j in jobs} == {
        (2, 256, dataset.pk)}
    assert jobs[1].params["reference"] == base.pk and jobs[0].params["reference"] is None


# ---- the full KL columns ------------------------------------------------------------------------
# What llama.cpp 0.3.36's own tool printed, as the evaluate method stores it (fractions: Δp and
# "same top" divided by 100): `llama-perplexity -m SmolLM2-135M-Instruct.Q4_1.gguf -f
# wikitext-2/test.txt -c 128 --chunks 4 --kl-divergence-base base.kld`, then the same with
# `--kl-divergence` for the Q4_1 requantized (`llama-quantize --allow-requantize`) to Q4_0 and Q2_K.
LLAMA_CPP_KL = {
    "Q4_0": {
        "ppl_q": 15.849054, "ppl_q_unc": 3.109978, "ppl_base": 16.663954, "ppl_base_unc": 3.377945,
        "ppl_correlation": 0.9752, "ln_ppl_ratio": -0.050138, "ln_ppl_ratio_unc": 0.044853,
        "ppl_ratio": 0.951098, "ppl_ratio_unc": 0.042659, "ppl_diff": -0.8149, "ppl_diff_unc": 0.76943,
        "kl_mean": 0.230738, "kl_mean_unc": 0.01545, "kl_max": 1.747647, "kl_p99_9": 1.684704,
        "kl_p99": 1.333988, "kl_p95": 0.652068, "kl_p90": 0.493805, "kl_median": 0.178221,
        "kl_p10": 0.005944, "kl_p5": 0.002187, "kl_p1": 0.000357, "kl_p0_1": 0.00009, "kl_min": 0.00005,
        "dp_mean": -0.01189, "dp_mean_unc": 0.00703, "dp_max": 0.44126, "dp_p99_9": 0.40466,
        "dp_p99": 0.26739, "dp_p95": 0.1222, "dp_p90": 0.06848, "dp_p75": 0.0173, "dp_median": -0.00006,
        "dp_p25": -0.02116, "dp_p10": -0.12164, "dp_p5": -0.18778, "dp_p1": -0.37386,
        "dp_p0_1": -0.74751, "dp_min": -0.81767, "dp_rms": 0.11198, "dp_rms_unc": 0.01425,
        "same_top": 0.75397, "same_top_unc": 0.02719, "tokens_compared": 256,
        "top1_agreement": 0.75397, "reference_perplexity": 16.663954},
    "Q2_K": {
        "ppl_q": 19.198355, "ppl_q_unc": 3.730657, "ppl_base": 16.663954, "ppl_base_unc": 3.377945,
        "ppl_correlation": 0.9505, "ln_ppl_ratio": 0.141577, "ln_ppl_ratio_unc": 0.062984,
        "ppl_ratio": 1.152089, "ppl_ratio_unc": 0.072563, "ppl_diff": 2.534401, "ppl_diff_unc": 1.170897,
        "kl_mean": 0.377665, "kl_mean_unc": 0.025227, "kl_max": 2.360058, "kl_p99_9": 2.35234,
        "kl_p99": 2.11773, "kl_p95": 1.01902, "kl_p90": 0.81996, "kl_median": 0.289927,
        "kl_p10": 0.012267, "kl_p5": 0.005168, "kl_p1": 0.001884, "kl_p0_1": 0.00059, "kl_min": 0.000546,
        "dp_mean": -0.03702, "dp_mean_unc": 0.00871, "dp_max": 0.72915, "dp_p99_9": 0.64283,
        "dp_p99": 0.32171, "dp_p95": 0.11138, "dp_p90": 0.04505, "dp_p75": 0.00166, "dp_median": -0.00413,
        "dp_p25": -0.06277, "dp_p10": -0.19541, "dp_p5": -0.2755, "dp_p1": -0.53463,
        "dp_p0_1": -0.64746, "dp_min": -0.65252, "dp_rms": 0.14282, "dp_rms_unc": 0.01353,
        "same_top": 0.71429, "same_top_unc": 0.02851, "tokens_compared": 256,
        "top1_agreement": 0.71429, "reference_perplexity": 16.663954},
}
NEW_KEYS = ("ratio", "kl", "kl_median", "kl_p99", "kl_p99_9", "kl_max", "dp_rms", "same_top")


def kl_method(base, **extra):
    return {"context": 128, "chunks": 4, "mode": "quick", "dataset": {"name": "test.txt"},
            "reference_variant": base.pk, "reference_label": base.label,
            "statistics": {"kl": "KL(base ‖ Q) per token, natural log"}, **extra}


@pytest.fixture
def measured(teams, demo_variant):
    """The demo Q4_1 (the base: perplexity only), its Q4_0 and Q2_K with llama.cpp's KL
    statistics, and an older Q8_0 evaluation that has only the keys the first KL version kept."""
    base = demo_variant
    ppl_method = {"tokens_sha256": "t", "context": 128, "chunks": 4, "dataset": {"name": "test.txt"}}
    evaluation_record(planner=None, variant=base, kind="perplexity", method=ppl_method,
                      metrics={"perplexity": 16.6867, "perplexity_stderr": 3.38865})
    made = {}
    for qtype, metrics in LLAMA_CPP_KL.items():
        made[qtype] = Variant.objects.create(model=base.model, parent=base, format="gguf",
                                             quant_type=qtype)
        evaluation_record(planner=None, variant=made[qtype], kind="perplexity", method=ppl_method,
                          metrics={"perplexity": metrics["ppl_q"], "perplexity_stderr": metrics["ppl_q_unc"]})
        evaluation_record(planner=None, variant=made[qtype], kind="kl", metrics=metrics,
                          method=kl_method(base))
    made["Q8_0"] = Variant.objects.create(model=base.model, parent=base, format="gguf", quant_type="Q8_0")
    evaluation_record(planner=None, variant=made["Q8_0"], kind="kl", method=kl_method(base), metrics={
        "kl_mean": 0.01, "kl_median": 0.005, "kl_p99": 0.08, "kl_max": 0.4, "top1_agreement": 0.95,
        "tokens_compared": 256})
    return base, made


def comparison_table(html: str) -> dict:
    """{row id: {cell class: {"text", "title"}}} and {"headers": {sort key: title}} of a page."""
    from html.parser import HTMLParser

    out: dict = {"headers": {}}
    state: dict = {}
    rows: list = []  # the open <tr>s: a row's details hold a table of their own

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "tr":
                rows.append(out.setdefault(a["id"], {}) if a.get("id") else None)
                state["row"] = rows[-1]
            elif tag == "td" and state.get("row") is not None and a.get("class", "").startswith("num "):
                key = a["class"].split()[1]
                state["cell"] = state["row"][key] = {"text": "", "title": a.get("title", "")}
            elif tag == "th" and a.get("title"):
                state["th"] = a["title"]
            elif tag == "a" and a.get("data-sort-key") and "th" in state:
                out["headers"][a["data-sort-key"]] = state.pop("th")
            elif tag == "details":
                state.pop("cell", None)

        def handle_endtag(self, tag):
            if tag == "td":
                state.pop("cell", None)
            if tag == "tr" and rows:
                rows.pop()
                state["row"] = rows[-1] if rows else None

        def handle_data(self, data):
            if "cell" in state:
                state["cell"]["text"] += data

    Parser().feed(html)
    return out


def test_recording_keeps_the_kl_headline_numbers(measured):
    _, made = measured
    q4 = Variant.objects.get(pk=made["Q4_0"].pk)
    assert {k: q4.metrics[k] for k in ("kl_divergence", "kl_mean_unc", "kl_p99_9", "ppl_ratio",
                                       "ppl_ratio_unc", "dp_rms", "same_top")} == {
        "kl_divergence": 0.230738, "kl_mean_unc": 0.01545, "kl_p99_9": 1.684704, "ppl_ratio": 0.951098,
        "ppl_ratio_unc": 0.042659, "dp_rms": 0.11198, "same_top": 0.75397}
    # A newer KL without the new keys (an older evaluate) leaves no stale numbers beside its own.
    evaluation_record(planner=None, variant=q4, kind="kl", metrics={"kl_mean": 0.3}, method={})
    q4.refresh_from_db()
    assert q4.metrics["kl_divergence"] == 0.3 and "dp_rms" not in q4.metrics
    evaluation_record(planner=None, variant=q4, kind="kl", metrics={"skipped": "BOS differs"}, method={})
    q4.refresh_from_db()
    assert q4.metrics["kl_skipped"] == "BOS differs" and "kl_divergence" not in q4.metrics


def test_compare_page_shows_every_kl_column_with_llama_cpps_numbers(client, measured):
    base, made = measured
    client.login(username="alice", password=PASSWORD)
    html = client.get(f"/catalog/models/{base.model_id}/compare/").content.decode()
    table = comparison_table(html)
    assert [h for h in table["headers"]] == [
        "id", "size", "bpw", "ppl", "ratio", "delta", "kl", "kl_median", "kl_p99", "kl_p99_9",
        "kl_max", "dp_rms", "same_top", "tps", "votes", "mem"]
    for title in ("PPL ±", "PPL(Q)/PPL(base) ±", "Mean KLD ±", "Median KLD", "99 % KLD",
                  "99.9 % KLD", "Max KLD", "RMS Δp", "Same top %", "Tokens/s"):
        assert f">{title}</a>" in html
    q4 = {k: " ".join(v["text"].split()) for k, v in table[f"compare-{made['Q4_0'].pk}"].items()}
    # The same text llama-perplexity printed (percents for Δp and same top).
    assert q4 == {"size": "0 bytes", "bpw": "—", "ppl": "15.8491 ± 3.1100", "ratio": "0.951098 ± 0.042659",
                  "delta": "-0.8376", "kl": "0.230738 ± 0.015450", "kl_median": "0.178221",
                  "kl_p99": "1.333988", "kl_p99_9": "1.684704", "kl_max": "1.747647",
                  "dp_rms": "11.198 % ± 1.425 %", "same_top": "75.397 % ± 2.719 %", "tps": "—",
                  "votes": "—", "mem": "—"}
    old = {k: v["text"].strip() for k, v in table[f"compare-{made['Q8_0'].pk}"].items()}
    assert (old["kl"], old["kl_p99"], old["same_top"]) == ("0.010000", "0.080000", "95.000 %")
    assert old["kl_p99_9"] == old["dp_rms"] == old["ratio"] == "—"  # not in older evaluations
    # Every percentile of KLD and Δp in the row's details.
    row = html[html.index(f'id="compare-{made["Q2_K"].pk}"'):]
    details = row[:row.index("</details>")]
    for text in ("Maximum", "99.9 %", "0.1 %", "Minimum", "2.352340", "0.000546", "75.0 %",
                 "25.0 %", "0.166 %", "-6.277 %", "-65.252 %", "72.915 %", "KL(base ‖ Q) per token"):
        assert text in details, text


def test_every_kl_number_carries_its_method(client, measured):
    base, made = measured
    client.login(username="alice", password=PASSWORD)
    html = client.get(f"/catalog/models/{base.model_id}/compare/").content.decode()
    table = comparison_table(html)
    how = (f"128 tokens × 4 chunks of test.txt, reference #{base.pk} GGUF Q4_1; "
           "llama.cpp perplexity --kl-divergence statistics")
    for key in NEW_KEYS:
        assert how in table[f"compare-{made['Q2_K'].pk}"][key]["title"], key
        assert how in table["headers"][key], key  # every row measured alike: the header says how
    assert "mean KL(reference ‖ variant)" in table["headers"]["kl"]
    assert "128 tokens × 4 chunks of test.txt" in table[f"compare-{base.pk}"]["ppl"]["title"]
    assert f"<li>KL: {how}</li>" in html  # the "how measured" line under the table


@pytest.mark.parametrize("key", NEW_KEYS)
def test_sorting_by_each_kl_column_puts_unmeasured_rows_last(client, measured, key):
    base, made = measured
    q4, q2, q8 = (f"compare-{made[q].pk}" for q in ("Q4_0", "Q2_K", "Q8_0"))
    client.login(username="alice", password=PASSWORD)

    def order(sort):
        html = client.get(f"/catalog/models/{base.model_id}/compare/?sort={sort}",
                          HTTP_HX_REQUEST="true").content.decode()
        return [r for r in comparison_table(html) if r != "headers"]

    # llama.cpp's numbers: the Q4_0 is closer to the base than the Q2_K on every statistic (a
    # higher "same top" is closer); the older Q8_0 has kl_mean, kl_median, kl_p99, kl_max and
    # top1_agreement (shown as same top) only; the base has no KL at all.
    old_has = key in ("kl", "kl_median", "kl_p99", "kl_max", "same_top")
    ascending = {"same_top": [q2, q4]}.get(key, [q4, q2])
    if old_has:
        ascending = [q8] + ascending if key != "same_top" else ascending + [q8]
    unmeasured = {f"compare-{base.pk}"} | (set() if old_has else {q8})
    for sort, measured_first in ((key, ascending), (f"-{key}", ascending[::-1])):
        rows = order(sort)
        assert rows[:len(measured_first)] == measured_first, sort
        assert set(rows[len(measured_first):]) == unmeasured, sort


# ---- the model page: KL columns, "evaluate selected", the polled table ------------------------
@pytest.fixture
def cpu_worker(db):
    return Worker.objects.create(hostname="cpu@node1", queues=["cpu"], device="cpu",
                                 memory_bytes=24 * 2**30, methods=["evaluate"], last_seen=timezone.now())


def test_model_page_shows_the_kl_columns_and_an_evaluate_form(client, measured):
    base, made = measured
    client.login(username="alice", password=PASSWORD)
    html = client.get(f"/catalog/models/{base.model_id}/").content.decode()
    q2 = {k: " ".join(v["text"].split()) for k, v in comparison_table(html)[f"variant-{made['Q2_K'].pk}"].items()}
    assert {k: q2[k] for k in ("ppl", "kl", "kl_p99_9", "dp_rms", "same_top", "tps")} == {
        "ppl": "19.1984 ± 3.7307", "kl": "0.377665 ± 0.025227", "kl_p99_9": "2.352340",
        "dp_rms": "14.282 % ± 1.353 %", "same_top": "71.429 % ± 2.851 %", "tps": "—"}
    assert "llama.cpp perplexity --kl-divergence statistics" in comparison_table(html)[
        f"variant-{made['Q2_K'].pk}"]["kl_p99_9"]["title"]
    for title in ("Mean KLD ±", "99.9 % KLD", "RMS Δp", "Same top %"):
        assert f">{title}</th>" in html
    assert f'action="/jobs/models/{base.model_id}/evaluate"' in html
    assert f'name="variants" value="{made["Q2_K"].pk}" form="evaluate-form"' in html
    assert 'data-polling="false"' in html and "hx-trigger" not in html.split('id="model-variants"')[1][:200]


def test_evaluate_selected_on_the_model_page_then_poll_until_the_jobs_end(client, measured, cpu_worker):
    from catalog.models import Dataset

    base, made = measured
    dataset = Dataset.objects.create(team=base.model.team, name="wikitext-2 test", kind="txt", path="test.txt")
    client.login(username="alice", password=PASSWORD)
    response = client.post(f"/jobs/models/{base.model_id}/evaluate", {
        "variants": [base.pk, made["Q2_K"].pk], "dataset": dataset.pk, "mode": "quick",
        "context": "128", "chunks": "1"})
    jobs = list(Job.objects.filter(method="evaluate").order_by("input_variant_id"))
    assert [j.input_variant_id for j in jobs] == [base.pk, made["Q2_K"].pk]
    assert {(j.params["context"], j.params["chunks"]) for j in jobs} == {(128, 1)}
    watch = ",".join(str(j.pk) for j in sorted(jobs, key=lambda j: j.pk))
    assert response.status_code == 302
    assert response["Location"] == f"/catalog/models/{base.model_id}/?watch={watch}"

    page = client.get(response["Location"]).content.decode()
    poll = f'/jobs/models/{base.model_id}/variants/?watch={watch}'
    assert f'hx-get="{poll}" hx-trigger="every 1s"' in page and "Evaluating: job" in page
    running = client.get(poll, HTTP_HX_REQUEST="true")
    assert running.status_code == 200 and b"<html" not in running.content
    assert running.content.decode().count('data-job-status="queued"') == 2
    Job.objects.filter(pk__in=[j.pk for j in jobs]).update(status=Job.Status.SUCCEEDED, progress=100)
    done = client.get(poll, HTTP_HX_REQUEST="true")
    assert done.status_code == 286  # htmx stops polling, and swaps in the final table
    html = done.content.decode()
    assert html.count('data-job-status="succeeded"') == 2 and "hx-trigger" not in html
    assert f'id="variant-{made["Q2_K"].pk}"' in html


def test_evaluate_selected_refuses_another_teams_variant_and_bad_ids(client, measured, teams, cpu_worker):
    from catalog.models import Model

    base, _ = measured
    theirs = Model.objects.create(team=teams["blue"], name="blue model")
    their_variant = Variant.objects.create(model=theirs, format="gguf", quant_type="Q8_0")
    client.login(username="alice", password=PASSWORD)
    for url in (f"/jobs/models/{base.model_id}/evaluate", f"/jobs/models/{base.model_id}/compare/evaluate"):
        page = client.post(url, {"variants": [base.pk, their_variant.pk]}, follow=True).content.decode()
        assert f"variants: no variant #{their_variant.pk} of {base.model.name} in this team" in page
        for bad in ("x", "9" * 30):
            page = client.post(url, {"variants": [bad]}, follow=True).content.decode()
            assert "variants: must be variant ids" in page
        page = client.post(url, {}, follow=True).content.decode()
        assert "variants: tick at least one variant to evaluate" in page
    assert not Job.objects.exists()
    assert client.post(f"/jobs/models/{theirs.pk}/evaluate", {"variants": [their_variant.pk]}).status_code == 404
    assert client.get(f"/jobs/models/{theirs.pk}/variants/").status_code == 404
    assert client.get(f"/jobs/models/{base.model_id}/evaluate").status_code == 405
    assert client.get(f"/jobs/models/{base.model_id}/compare/evaluate").status_code == 405
    assert client.post(f"/catalog/models/{base.model_id}/compare/").status_code == 405
    assert client.get(f"/jobs/models/{base.model_id}/variants/?watch=x,{'9' * 30}",
                      HTTP_HX_REQUEST="true").status_code == 286  # no such job: nothing to poll
    client.login(username="bob", password=PASSWORD)
    assert client.get(f"/jobs/models/{base.model_id}/variants/?watch=1").status_code == 404
    assert not Job.objects.exists()
