"""Sweeps ("Measure quants") on the real database: the plan and its refusals, the steps a sweep
submits and those it submits next once their inputs exist, cancel as a whole, and re-running a
sweep, which finds every result already there and creates nothing.

Jobs are finished here the way the runner finishes them (claim, register the outputs or the
evaluations, finish) without running llama.cpp; tests/browser/test_sweep.py runs one for real."""

from django.utils import timezone
import pytest

from catalog.models import Evaluation, File, Variant
from jobs import lifecycle, llama_tools, runner
from jobs.methods.base import JobError
from jobs.models import Job, Sweep, Worker
from jobs.sweep_params import DEFAULT_TYPES, hf_method_notes
from jobs.sweeps import (sweep_advance, sweep_cancel, sweep_plan, sweep_progress, sweep_steps,
                         sweep_submit)
from tests.support.processes import WIKITEXT

pytestmark = pytest.mark.django_db
S = Job.Status


@pytest.fixture
def worker(db):
    return Worker.objects.create(
        hostname="cpu@sweep", queues=["cpu"], device="cpu", memory_bytes=24 * 2**30,
        methods=["gguf", "imatrix", "evaluate", "bnb-nf4", "bnb-int8", "gptq"],
        last_seen=timezone.now())


@pytest.fixture
def texts(teams):
    from catalog.datasets import dataset_upload

    red = teams["red"].pk
    return {"calibration": dataset_upload(team_id=red, user_id=None, path=str(WIKITEXT / "valid.txt"),
                                          name="valid"),
            "held_out": dataset_upload(team_id=red, user_id=None, path=str(WIKITEXT / "test.txt"),
                                       name="test"),
            "held_out_copy": dataset_upload(team_id=red, user_id=None,
                                            path=str(WIKITEXT / "test.txt"), name="test again")}


def _params(texts, **extra) -> dict:
    return {"calibration": texts["calibration"].pk, "evaluation": texts["held_out"].pk,
            "context": 128, "chunks": 2, **extra}


def _states(steps) -> dict[str, str]:
    return {s.key: s.state for s in steps}


def _finish_quantize(job: Job) -> list[Variant]:
    """What the runner does for a gguf/imatrix job that worked: outputs registered and linked."""
    assert lifecycle.claim(job_id=job.pk, worker="cpu@sweep")
    base = job.input_variant
    if job.method == "imatrix":
        made = Variant.objects.create(
            model=base.model, parent=base, format="imatrix", quant_type="imatrix",
            params={"dataset": {"sha256": job.params["dataset_sha256"]}, "chunks_requested":
                    job.params["chunks"], "context": job.params["context"], "job": job.pk,
                    "method": "imatrix"})
        File.objects.create(variant=made, path="imatrix.gguf", bytes=1, sha256="0" * 64)
        outputs = [made]
    else:
        outputs = []
        for qtype in job.params["types"]:
            params = {"type": qtype, "job": job.pk, "method": "gguf"}
            if job.params.get("imatrix"):
                params["imatrix"] = {"variant": job.params["imatrix"]}
            made = Variant.objects.create(model=base.model, parent=base, format="gguf",
                                          quant_type=qtype, params=params,
                                          tool_versions={"llama.cpp": llama_tools.version()})
            File.objects.create(variant=made, path=f"model-{qtype}.gguf", bytes=1, sha256=qtype.ljust(64, "0"))
            outputs.append(made)
    assert lifecycle.finish(job_id=job.pk, status=S.SUCCEEDED)
    job.outputs.add(*outputs)
    return outputs


def _finish_evaluate(job: Job, text_sha: str) -> None:
    assert lifecycle.claim(job_id=job.pk, worker="cpu@sweep")
    made = Evaluation.objects.create(variant=job.input_variant, kind="perplexity",
                                     metrics={"perplexity": 20.0},
                                     method={"dataset": {"sha256": text_sha},
                                             "context": job.params["context"]})
    job.evaluations.add(made)
    assert lifecycle.finish(job_id=job.pk, status=S.SUCCEEDED)


def _run_all(sweep: Sweep, texts) -> None:
    """Finishes the sweep's live jobs wave after wave, as workers would, until it is final."""
    for _ in range(10):
        live = list(sweep.jobs.filter(status=S.QUEUED).order_by("pk"))
        if not live:
            break
        for job in live:
            if job.method == "evaluate":
                _finish_evaluate(job, texts["held_out"].sha256)
            else:
                if job.method == "imatrix":
                    job.params["dataset_sha256"] = texts["calibration"].sha256
                _finish_quantize(job)
            # What runner.execute sends once a job has ended and its outputs are linked.
            runner.job_finished.send(sender=Job, job_id=job.pk)


def test_the_default_plan_makes_the_matrix_first_and_evaluates_each_candidate(teams, demo_variant,
                                                                              texts, worker):
    cleaned, steps = sweep_plan(team=teams["red"], base=demo_variant, params=_params(texts))
    assert cleaned["types"] == list(DEFAULT_TYPES) and cleaned["hf_methods"] == []
    assert [s.key for s in steps] == (["imatrix"] + [f"quantize:{t}" for t in DEFAULT_TYPES]
                                      + [f"evaluate:{t}" for t in DEFAULT_TYPES])
    states = _states(steps)
    assert states["imatrix"] == "ready"
    # The IQ ones wait for the matrix; the others start at once.
    assert {t for t in DEFAULT_TYPES if states[f"quantize:{t}"] == "waiting"} == {"IQ4_XS", "IQ3_XXS"}
    assert {states[f"quantize:{t}"] for t in ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")} == {"ready"}
    assert {states[f"evaluate:{t}"] for t in DEFAULT_TYPES} == {"waiting"}
    # What submitting would record is said beside the step: the demo base is itself quantized.
    q8 = next(s for s in steps if s.key == "quantize:Q8_0")
    assert q8.note.startswith("requantizing a Q4_1 GGUF: errors compound")
    assert next(s for s in steps if s.key == "evaluate:Q8_0").waits_for == ["GGUF Q8_0"]
    assert not Job.objects.exists() and not Sweep.objects.exists()  # a plan saves nothing


def _without(params: dict, key: str) -> dict:
    return {k: v for k, v in params.items() if k != key}


@pytest.mark.parametrize("change, field, words", [
    (lambda p, t: {**p, "evaluation": t["calibration"].pk}, "evaluation", "is the calibration text"),
    # The same file under another dataset row: compared by sha256, not by id.
    (lambda p, t: {**p, "calibration": t["held_out_copy"].pk}, "evaluation", "same sha256"),
    (lambda p, t: {**p, "types": "Q8_0,Q9_9"}, "types", "unknown GGUF type Q9_9"),
    (lambda p, t: {**p, "types": ""}, "types", "choose at least one candidate"),
    (lambda p, t: {**p, "hf_methods": ["bnb-nf4"]}, "hf_methods", "this base is a GGUF"),
    (lambda p, t: {**p, "context": 129}, "context", "must be even"),
    (lambda p, t: _without(p, "evaluation"), "evaluation", "choose a text dataset"),
    (lambda p, t: {**_without(p, "calibration"), "types": "IQ3_XXS"}, "calibration",
     "choose a text dataset"),
])
def test_refusals_name_the_field(teams, demo_variant, texts, change, field, words):
    with pytest.raises(JobError) as info:
        sweep_plan(team=teams["red"], base=demo_variant, params=change(_params(texts), texts))
    assert list(info.value.errors) == [field] and words in info.value.errors[field]


def test_another_teams_base_or_dataset_is_refused(teams, demo_variant, texts):
    with pytest.raises(JobError) as info:
        sweep_plan(team=teams["blue"], base=demo_variant, params=_params(texts))
    assert list(info.value.errors) == ["base"]
    from catalog.datasets import dataset_upload

    blue_text = dataset_upload(team_id=teams["blue"].pk, user_id=None,
                               path=str(WIKITEXT / "test.txt"), name="blue test")
    with pytest.raises(JobError) as info:
        sweep_plan(team=teams["red"], base=demo_variant,
                   params=_params(texts, evaluation=blue_text.pk))
    assert info.value.errors == {"evaluation": f"no dataset {blue_text.pk} in this team"}


def test_a_sweep_advances_step_by_step_and_a_rerun_makes_nothing(teams, demo_variant, texts, worker):
    params = _params(texts, types="Q8_0,IQ3_XXS")
    sweep, steps = sweep_submit(team=teams["red"], user=teams["alice"], base=demo_variant, params=params)
    # First wave: the matrix and Q8_0; IQ3_XXS waits for the matrix, the evaluations for their candidate.
    assert _states(steps) == {"imatrix": "queued", "quantize:Q8_0": "queued",
                              "quantize:IQ3_XXS": "waiting", "evaluate:Q8_0": "waiting",
                              "evaluate:IQ3_XXS": "waiting"}
    assert sorted(sweep.jobs.values_list("sweep_step", flat=True)) == ["imatrix", "quantize:Q8_0"]
    progress = sweep_progress(sweep, steps)
    assert (progress.status, progress.finished, progress.total, progress.percent) == ("running", 0, 5, 0)
    # Nothing has a measured duration yet: no ETA, and the page says what it waits for.
    assert progress.eta_seconds is None
    assert progress.eta_note == ("known once these have a measured duration: importance matrix, "
                                 "GGUF Q8_0, GGUF IQ3_XXS, evaluate GGUF Q8_0, evaluate GGUF IQ3_XXS")

    q8_job = sweep.jobs.get(sweep_step="quantize:Q8_0")
    [q8] = _finish_quantize(q8_job)
    runner.job_finished.send(sender=Job, job_id=q8_job.pk)  # the runner's hook advances the sweep
    evaluate = sweep.jobs.get(sweep_step="evaluate:Q8_0")
    assert evaluate.input_variant == q8 and evaluate.status == S.QUEUED
    assert (evaluate.params["reference"], evaluate.params["context"], evaluate.params["chunks"],
            evaluate.params["dataset"]) == (demo_variant.pk, 128, 2, texts["held_out"].pk)

    matrix_job = sweep.jobs.get(sweep_step="imatrix")
    matrix_job.params["dataset_sha256"] = texts["calibration"].sha256
    [matrix] = _finish_quantize(matrix_job)
    sweep_advance(sweep_id=sweep.pk)
    iq = sweep.jobs.get(sweep_step="quantize:IQ3_XXS")
    assert iq.params["imatrix"] == matrix.pk and iq.params["types"] == ["IQ3_XXS"]

    _run_all(sweep, texts)
    sweep.refresh_from_db()
    steps = sweep_steps(team=sweep.team, base=demo_variant, params=sweep.params, sweep=sweep)
    assert set(_states(steps).values()) == {"done"} and sweep.finished_at is not None
    progress = sweep_progress(sweep, steps)
    assert (progress.status, progress.finished, progress.percent) == ("succeeded", 5, 100)

    counts = (Variant.objects.count(), Evaluation.objects.count(), Job.objects.count(), Sweep.objects.count())
    again, steps = sweep_submit(team=teams["red"], user=teams["alice"], base=demo_variant, params=params)
    assert again is None and set(_states(steps).values()) == {"exists"}
    assert (Variant.objects.count(), Evaluation.objects.count(), Job.objects.count(),
            Sweep.objects.count()) == counts
    # The existing results are named: the matrix, the candidates and the evaluating jobs.
    found = {s.key: (s.output, s.measured_by) for s in steps}
    assert found["imatrix"][0] == matrix and found["quantize:Q8_0"][0] == q8
    assert found["evaluate:Q8_0"][1] == evaluate


def test_a_type_made_earlier_among_others_and_a_catalog_matrix_are_used(teams, demo_variant, texts, worker):
    """Found by what they are (source sha256, type, matrix; matrix: text sha256, chunks, context),
    not by the job that made them: a two-type job's Q8_0 counts for a one-type sweep step."""
    earlier = Job.objects.create(team=teams["red"], kind="quantize", method="gguf",
                                 params={"types": ["Q8_0", "Q4_K_M"]}, input_variant=demo_variant)
    [q8, _] = _finish_quantize(earlier)
    matrix = Variant.objects.create(
        model=demo_variant.model, parent=demo_variant, format="imatrix", quant_type="imatrix",
        params={"dataset": {"sha256": texts["calibration"].sha256}, "chunks_requested": 100,
                "context": 512})
    File.objects.create(variant=matrix, path="imatrix.gguf", bytes=1, sha256="1" * 64)
    _, steps = sweep_plan(team=teams["red"], base=demo_variant,
                          params=_params(texts, types="Q8_0,IQ3_XXS"))
    by_key = {s.key: s for s in steps}
    assert (by_key["quantize:Q8_0"].state, by_key["quantize:Q8_0"].output) == ("exists", q8)
    assert (by_key["imatrix"].state, by_key["imatrix"].output) == ("exists", matrix)
    assert by_key["quantize:IQ3_XXS"].state == "ready"
    assert by_key["quantize:IQ3_XXS"].params["imatrix"] == matrix.pk
    assert by_key["evaluate:Q8_0"].state == "ready"  # evaluated with another protocol? none yet
    # Another matrix setting (chunks) is another matrix: made, not reused.
    _, steps = sweep_plan(team=teams["red"], base=demo_variant,
                          params=_params(texts, types="IQ3_XXS", imatrix_chunks=10))
    assert _states(steps)["imatrix"] == "ready"


def test_an_evaluation_with_another_protocol_is_not_reused(teams, demo_variant, texts, worker):
    params = _params(texts, types="Q8_0")
    sweep, _ = sweep_submit(team=teams["red"], user=None, base=demo_variant, params=params)
    _run_all(sweep, texts)
    for change in ({"chunks": 3}, {"context": 256}, {"evaluation": texts["calibration"].pk,
                                                     "calibration": None}):
        _, steps = sweep_plan(team=teams["red"], base=demo_variant, params={**params, **change})
        assert _states(steps) == {"quantize:Q8_0": "exists", "evaluate:Q8_0": "ready"}, change


def test_a_second_sweep_follows_the_first_ones_live_jobs(teams, demo_variant, texts, worker):
    params = _params(texts, types="Q8_0")
    first, _ = sweep_submit(team=teams["red"], user=teams["alice"], base=demo_variant, params=params)
    second, steps = sweep_submit(team=teams["red"], user=teams["carol"], base=demo_variant, params=params)
    step = steps[0]
    assert (step.state, step.job.sweep_id) == ("queued", first.pk)
    assert f"of sweep {first.pk}" in step.note
    assert Job.objects.count() == 1 and not second.jobs.exists()


def test_cancel_stops_every_live_job_and_submits_nothing_more(teams, demo_variant, texts, worker):
    sweep, _ = sweep_submit(team=teams["red"], user=teams["alice"], base=demo_variant,
                            params=_params(texts, types="Q8_0,Q4_0,IQ3_XXS"))
    running = sweep.jobs.get(sweep_step="quantize:Q8_0")
    assert lifecycle.claim(job_id=running.pk, worker="cpu@sweep")
    sweep = sweep_cancel(sweep=sweep)
    jobs = {j.sweep_step: (j.status, j.cancel_requested) for j in sweep.jobs.all()}
    assert jobs == {"quantize:Q8_0": (S.RUNNING, True), "imatrix": (S.CANCELLED, True),
                    "quantize:Q4_0": (S.CANCELLED, True)}
    # The runner stops the running one; nothing further is submitted, and the sweep ends cancelled.
    assert lifecycle.finish(job_id=running.pk, status=S.CANCELLED, error="cancelled by user")
    runner.job_finished.send(sender=Job, job_id=running.pk)
    sweep.refresh_from_db()
    steps = sweep_steps(team=sweep.team, base=demo_variant, params=sweep.params, sweep=sweep)
    assert sweep_progress(sweep, steps).status == "cancelled" and sweep.finished_at is not None
    assert sweep.jobs.count() == 3
    assert _states(steps)["quantize:IQ3_XXS"] == "blocked"


def test_a_step_no_worker_can_run_is_refused_up_front(teams, demo_variant, texts):
    Worker.objects.create(hostname="eval-only@x", queues=["cpu"], memory_bytes=24 * 2**30,
                          methods=["evaluate"], last_seen=timezone.now())
    with pytest.raises(JobError) as info:
        sweep_submit(team=teams["red"], user=None, base=demo_variant, params=_params(texts, types="Q8_0"))
    assert "no worker node can run gguf" in info.value.errors["types"]
    assert not Sweep.objects.exists()


def test_an_hf_base_converts_once_and_offers_the_hf_methods_off_on_cpu(teams, demo_variant, texts, worker):
    hf = Variant.objects.create(model=demo_variant.model, format="hf", quant_type="f32")
    _, steps = sweep_plan(team=teams["red"], base=hf, params=_params(texts, types="Q8_0,Q4_0"))
    assert [s.key for s in steps] == ["f16", "quantize:Q8_0", "quantize:Q4_0", "evaluate:Q8_0",
                                      "evaluate:Q4_0"]
    assert _states(steps)["quantize:Q8_0"] == "waiting"  # made from the one F16, once it exists
    notes = hf_method_notes(teams["red"])
    assert notes["gptq"] == ("off: no GPU worker is up; GPTQ 4-bit on a CPU node is slow (not "
                             "measured on this installation yet)")
    # A CPU job that ran here is the measure given.
    start = timezone.now()
    Job.objects.create(team=teams["red"], kind="quantize", method="gptq", input_variant=hf,
                       status=S.SUCCEEDED, worker="cpu@sweep", started_at=start,
                       finished_at=start + timezone.timedelta(seconds=172))
    assert "took 2 min 52 s on SmolLM2-135M-Instruct" in hf_method_notes(teams["red"])["gptq"]
    _, steps = sweep_plan(team=teams["red"], base=hf,
                          params=_params(texts, types="", hf_methods=["bnb-nf4", "gptq"]))
    by_key = {s.key: s for s in steps}
    assert list(by_key) == ["quantize:bnb-nf4", "quantize:gptq", "evaluate:bnb-nf4", "evaluate:gptq"]
    # SmolLM2's 576-wide layers take GPTQ groups of 64, not 128.
    assert by_key["quantize:gptq"].params == {"dataset": texts["calibration"].pk, "bits": 4,
                                              "group_size": 64}


# ---- pages, API, CLI ---------------------------------------------------------------------------

def test_the_pages_plan_start_and_follow_a_sweep_for_its_team_only(client, teams, demo_variant, texts, worker):
    client.force_login(teams["alice"])
    model_page = client.get(f"/catalog/models/{demo_variant.model_id}/").content.decode()
    assert 'id="measure-quants-form"' in model_page and f'action="/jobs/models/{demo_variant.model_id}/sweep"' in model_page
    form = {"base": demo_variant.pk, **_params(texts, types="Q8_0")}
    plan = client.get(f"/jobs/models/{demo_variant.model_id}/sweep", form).content.decode()
    assert 'data-step="quantize:Q8_0" data-state="ready"' in plan and 'id="sweep-start"' in plan
    refused = client.post(f"/jobs/models/{demo_variant.model_id}/sweep",
                          {**form, "evaluation": texts["calibration"].pk})
    assert refused.status_code == 400 and not Sweep.objects.exists()
    assert '<p class="error" data-field="evaluation">valid is the calibration text' in refused.content.decode()

    response = client.post(f"/jobs/models/{demo_variant.model_id}/sweep", form)
    sweep = Sweep.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/sweeps/{sweep.pk}/"
    page = client.get(f"/jobs/sweeps/{sweep.pk}/").content.decode()
    assert 'id="sweep-status" data-status="running"' in page and "0 of 2 steps finished" in page
    assert 'hx-trigger="every 1s"' in page and 'id="sweep-cancel"' in page
    _run_all(sweep, texts)
    poll = client.get(f"/jobs/sweeps/{sweep.pk}/", HTTP_HX_REQUEST="true")
    assert poll.status_code == 286 and 'data-status="succeeded"' in poll.content.decode()
    assert "2 of 2 steps finished" in poll.content.decode()
    step = sweep.jobs.get(sweep_step="quantize:Q8_0")
    assert (f'step quantize:Q8_0 of <a href="/jobs/sweeps/{sweep.pk}/" id="job-sweep">sweep #{sweep.pk}</a>'
            in client.get(f"/jobs/{step.pk}/").content.decode())

    again = client.post(f"/jobs/models/{demo_variant.model_id}/sweep", form).content.decode()
    assert 'id="sweep-nothing"' in again and Sweep.objects.count() == 1

    client.force_login(teams["bob"])  # another team: every sweep route is a 404
    assert client.get(f"/jobs/sweeps/{sweep.pk}/").status_code == 404
    assert client.post(f"/jobs/sweeps/{sweep.pk}/cancel").status_code == 404
    assert client.get(f"/jobs/models/{demo_variant.model_id}/sweep", form).status_code == 404


def test_the_api_starts_reads_and_cancels_sweeps_and_names_bad_fields(client, teams, demo_variant, texts, worker):
    client.force_login(teams["alice"])
    body = {"base": demo_variant.pk, "types": ["Q8_0", "Q4_0"], "evaluation": texts["held_out"].pk,
            "context": 128, "chunks": 2}
    bad = client.post("/api/jobs/sweeps/", {**body, "context": 129}, content_type="application/json")
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["context"]
    bad = client.post("/api/jobs/sweeps/", {**body, "colour": "red"}, content_type="application/json")
    assert bad.status_code == 400 and "colour" in str(bad.json()["errors"])
    made = client.post("/api/jobs/sweeps/", body, content_type="application/json")
    assert made.status_code == 201
    data = made.json()
    assert (data["status"], data["total"], data["finished"]) == ("running", 4, 0)
    assert [(s["key"], s["state"]) for s in data["steps"]] == [
        ("quantize:Q8_0", "queued"), ("quantize:Q4_0", "queued"), ("evaluate:Q8_0", "waiting"),
        ("evaluate:Q4_0", "waiting")]
    assert client.get("/api/jobs/sweeps/").json()["sweeps"][0]["sweep"] == data["sweep"]
    cancelled = client.post(f"/api/jobs/sweeps/{data['sweep']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["cancel_requested"] is True
    client.force_login(teams["bob"])
    assert client.get(f"/api/jobs/sweeps/{data['sweep']}").status_code == 404
    assert client.post("/api/jobs/sweeps/", body, content_type="application/json").status_code == 404


def test_the_cli_starts_a_sweep_and_reports_what_exists(teams, demo_variant, texts, worker):
    import json

    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="evaluation: valid is the calibration text"):
        call_command("sweep", str(demo_variant.model_id), "--types", "Q8_0", "--calibration",
                     str(texts["calibration"].pk), "--evaluate-on", str(texts["calibration"].pk))
    from io import StringIO

    out = StringIO()
    call_command("sweep", str(demo_variant.model_id), "--types", "Q8_0", "--evaluate-on",
                 str(texts["held_out"].pk), "--context", "128", "--chunks", "2", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["status"] == "running" and data["steps"][0]["state"] == "queued"
    _run_all(Sweep.objects.get(pk=data["sweep"]), texts)
    out = StringIO()
    call_command("sweep", str(demo_variant.model_id), "--types", "Q8_0", "--evaluate-on",
                 str(texts["held_out"].pk), "--context", "128", "--chunks", "2", stdout=out)
    assert out.getvalue().splitlines()[0] == "everything is already measured: nothing started"
