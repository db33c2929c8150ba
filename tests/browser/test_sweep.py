"""Measure quants from the model page in a browser, end to end through the real worker: the demo
SmolLM2 Q4_1 swept to Q8_0 and Q4_0 (no matrix needed) with a quick evaluation (context 128,
2 chunks, KL against the base, no speed runs); the sweep page follows the steps by htmx polling and shows the
sweep done without a reload. The same sweep submitted again reports everything already measured
and creates nothing: no sweep, no job, no variant, no evaluation."""

import pytest

from catalog.models import Evaluation, Variant
from jobs.models import Job, Sweep
from tests.support.fixtures import browser_login
from tests.support.processes import WIKITEXT

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]


def _ask_for_the_sweep(page, web_server, model_id: int, texts: dict) -> None:
    page.goto(f"{web_server}/catalog/models/{model_id}/")
    page.select_option("#mq-calibration", str(texts["calibration"].pk))
    page.select_option("#mq-evaluation", str(texts["held_out"].pk))
    # The plan asks the planner for each job's memory: the web process's first plan imports torch
    # and transformers (tens of seconds on the shared 2-core machine), later ones take milliseconds.
    page.click("#measure-quants", timeout=120_000)
    page.wait_for_url("**/jobs/models/*/sweep?*", timeout=120_000)
    page.fill("#sweep-types", "Q8_0, Q4_0")
    page.fill("#sweep-context", "128")
    page.fill("#sweep-chunks", "2")
    page.select_option("#sweep-speed", "0")  # speed on a shared test machine is noise, and slow
    page.click("#sweep-preview")
    page.wait_for_selector("#sweep-steps")


def test_a_sweep_from_the_model_page_measures_each_candidate_once(page, web_server, teams, demo_variant,
                                                                    celery_worker):
    from catalog.datasets import dataset_upload

    red = teams["red"].pk
    texts = {"calibration": dataset_upload(team_id=red, user_id=None, path=str(WIKITEXT / "valid.txt"),
                                           name="wikitext-2 valid"),
             "held_out": dataset_upload(team_id=red, user_id=None, path=str(WIKITEXT / "test.txt"),
                                        name="wikitext-2 test")}
    browser_login(page, web_server, "alice")
    _ask_for_the_sweep(page, web_server, demo_variant.model_id, texts)
    states = {row.get_attribute("data-step"): row.get_attribute("data-state")
              for row in page.locator("#sweep-steps tbody tr").all()}
    assert states == {"quantize:Q8_0": "ready", "quantize:Q4_0": "ready",
                      "evaluate:Q8_0": "waiting", "evaluate:Q4_0": "waiting"}

    page.click("#sweep-start")
    page.wait_for_url("**/jobs/sweeps/*/")
    page.evaluate("window.sameDocument = true")
    sweep = Sweep.objects.get()
    page.wait_for_selector("#sweep-status[data-status=succeeded]", timeout=300_000)
    assert page.evaluate("window.sameDocument") is True  # followed by polling, not reloads
    assert page.locator("#sweep-count").inner_text() == "4 of 4 steps finished"
    assert page.locator("#sweep-cancel").count() == 0

    jobs = {j.sweep_step: j for j in sweep.jobs.all()}
    assert set(jobs) == {"quantize:Q8_0", "quantize:Q4_0", "evaluate:Q8_0", "evaluate:Q4_0"}
    for job in jobs.values():
        assert job.status == Job.Status.SUCCEEDED, job.error + job.log_tail[-2000:]
    for qtype in ("Q8_0", "Q4_0"):
        [made] = jobs[f"quantize:{qtype}"].outputs.all()
        assert (made.quant_type, made.parent_id) == (qtype, demo_variant.pk)
        evaluate = jobs[f"evaluate:{qtype}"]
        assert evaluate.input_variant_id == made.pk
        kinds = {e.kind: e for e in evaluate.evaluations.all()}
        assert {"perplexity", "kl"} <= set(kinds)
        assert kinds["kl"].method["reference_variant"] == demo_variant.pk
        assert (kinds["perplexity"].method["context"], kinds["perplexity"].method["chunks"]) == (128, 2)
        assert kinds["perplexity"].method["dataset"]["sha256"] == texts["held_out"].sha256
    # Q8_0 of the Q4_1 base is closer to it than Q4_0 is (llama.cpp's own KL statistics).
    kl = {q: jobs[f"evaluate:{q}"].evaluations.get(kind="kl").metrics["kl_mean"] for q in ("Q8_0", "Q4_0")}
    assert 0 < kl["Q8_0"] < kl["Q4_0"]
    for qtype in ("Q8_0", "Q4_0"):  # the page shows what each evaluation measured
        assert page.inner_text(f"#step-evaluate{qtype.lower()} .kl") == f"mean KL {kl[qtype]:.6f}"

    counts = (Sweep.objects.count(), Job.objects.count(), Variant.objects.count(), Evaluation.objects.count())
    _ask_for_the_sweep(page, web_server, demo_variant.model_id, texts)
    states = {row.get_attribute("data-step"): row.get_attribute("data-state")
              for row in page.locator("#sweep-steps tbody tr").all()}
    assert set(states.values()) == {"exists"} and len(states) == 4
    assert page.locator("#sweep-start").count() == 1
    page.click("#sweep-start")
    page.wait_for_selector("#sweep-nothing")
    assert "Everything is already measured: no job was started." in page.inner_text("#sweep-nothing")
    assert page.inner_text("#step-evaluateq4_0 .kl") == f"mean KL {kl['Q4_0']:.6f}"
    assert (Sweep.objects.count(), Job.objects.count(), Variant.objects.count(),
            Evaluation.objects.count()) == counts

    # What was just measured decides the Choose page (real KL figures, no stated ones). The demo base
    # is the reference (KL 0); Q4_0's file is the smallest and Q8_0 is closer to the base than Q4_0.
    made = {q: jobs[f"quantize:{q}"].outputs.get() for q in ("Q8_0", "Q4_0")}
    base, q8, q4 = demo_variant.pk, made["Q8_0"].pk, made["Q4_0"].pk
    assert made["Q4_0"].files.get().bytes < demo_variant.files.get().bytes < made["Q8_0"].files.get().bytes

    def picks(**query) -> dict:
        page.goto(f"{web_server}/planner/choose/{demo_variant.model_id}/?"
                  + "&".join(f"{k}={v}" for k, v in {"hardware": "rtx-4090", "context": 128, **query}.items()))
        return {kind: page.get_attribute(f"#pick-{kind}", "data-variant") for kind in ("best", "smallest")}

    # An RTX 4090 holds every variant: the best is the reference itself; within a loose tolerance the
    # smallest is Q4_0, within one tighter than Q8_0's measured KL only the reference is left.
    assert picks(tolerance=1.0) == {"best": str(base), "smallest": str(q4)}
    assert picks(tolerance=kl["Q8_0"] / 2)["smallest"] == str(base)
    # On a T4, asking for more headroom than the base leaves (but less than Q4_0, the smallest,
    # does) leaves only Q4_0 to take the best-quality pick.
    api = page.request.get(f"{web_server}/api/planner/choose/{demo_variant.model_id}?hardware=t4"
                           "&context=128").json()
    room = {c["variant"]: c["headroom_bytes"] for c in api["candidates"]}
    assert room[q4] > room[base] > room[q8]
    headroom_gb = (room[q4] + room[base]) / 2 / 2**30
    assert picks(hardware="t4", headroom_gb=f"{headroom_gb:.6f}")["best"] == str(q4)
