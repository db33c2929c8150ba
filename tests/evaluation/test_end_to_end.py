"""Evaluation jobs on a real worker for GGUF, HF, bitsandbytes NF4 and GPTQ variants of the demo
model, and the cross-engine check: the same F16 weights through llama.cpp (F16 GGUF) and through
transformers (the HF F16 folder it was converted from) agree on perplexity within 1 %.

The variants are the session's builds (tests/support/artifacts.py) registered in the catalog:
demo Q4_1 GGUF → HF F16 → F16 GGUF (llama.cpp's converter); demo → HF F32 → NF4, GPTQ 4-bit g64.
The five evaluations run once for the module (`evaluated`, 2 chunks × 128 tokens of WikiText-2
test); each test below checks one property of what they recorded."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from jobs.models import Job, Worker
from jobs.services import job_submit
from tests.support.artifacts import register_copy
from tests.support.processes import WIKITEXT, wait_until

# Transactional: the first test's flush removes the rows `evaluated` made outside any test.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TINY = {"context": 128, "chunks": 2, "prompt_tokens": 32, "gen_tokens": 8, "speed_seconds": 1}


def registered(team, demo, builds) -> dict:
    """The demo's variants as the chain above, in team's catalog."""
    hf16 = register_copy(model=demo.model, folder=builds["hf16"], format="hf", quant_type="F16",
                         parent=demo)
    hf32 = register_copy(model=demo.model, folder=builds["hf32"], format="hf", quant_type="F32",
                         parent=demo)
    made = {"q4_1": demo, "hf": hf16}
    for name, parent, build in (("f16", hf16, builds["f16"]), ("nf4", hf32, builds["nf4"]),
                                ("gptq", hf32, builds["gptq"])):
        made[name] = register_copy(model=demo.model, folder=build.folder, format=build.output.format,
                                   quant_type=build.output.quant_type, parent=parent)
    return made


@pytest.fixture(scope="module")
def evaluated(django_db_setup, django_db_blocker, celery_worker, demo_hf_f16, demo_hf_f32,
              demo_f16_gguf, demo_nf4, demo_gptq):
    """Runs the five evaluation jobs once and returns what they recorded as plain data (the rows
    are flushed by the next transactional test): {name: {"variant": ..., kind: {metrics, method}}}."""
    from accounts.models import Team
    from catalog.datasets import dataset_upload
    from catalog.models import Variant
    from catalog.imports.demo import demo_model_import

    with django_db_blocker.unblock():
        team = Team.objects.create(name="evaluation")
        demo = demo_model_import(team=team).variants.get()
        v = registered(team, demo, {"hf16": demo_hf_f16, "hf32": demo_hf_f32, "f16": demo_f16_gguf,
                                    "nf4": demo_nf4, "gptq": demo_gptq})
        test_set = dataset_upload(team_id=team.pk, user_id=None, path=str(WIKITEXT / "test.txt"),
                                  name="wikitext-2 test")
        params = {"dataset": test_set.pk, **TINY}
        wait_until(lambda: Worker.objects.filter(hostname__startswith="test-worker@").exists(), 10,
                   what="the worker's heartbeat row")
        jobs = {name: job_submit(team=team, user=None, method="evaluate", input_variant=v[name],
                                 params={**params, **extra})
                for name, extra in (("q4_1", {}), ("hf", {"reference": "none"}),
                                    ("f16", {"reference": v["hf"].pk}),
                                    ("nf4", {}),  # reference: the lineage root, the Q4_1 GGUF
                                    ("gptq", {"reference": v["hf"].pk, "speed": False}))}
        results = {}
        for name, job in jobs.items():
            wait_until(lambda: Job.objects.get(pk=job.pk).is_final, 600, interval=1,
                       what=f"the {name} evaluation")
            job.refresh_from_db()
            assert job.status == Job.Status.SUCCEEDED, f"{name}: {job.error}\n{job.log_tail[-3000:]}"
            row = Variant.objects.get(pk=v[name].pk)
            results[name] = {e.kind: {"metrics": e.metrics, "method": e.method}
                             for e in job.evaluations.all()}
            results[name]["variant"] = {"pk": row.pk, "perplexity": row.perplexity,
                                        "metrics": row.metrics}
        results["dataset"] = test_set.pk
    print("\nmeasured:", json.dumps({name: {"ppl": r["perplexity"]["metrics"]["perplexity"],
                                            "kl": r.get("kl", {}).get("metrics", {}).get("kl_mean"),
                                            "rss": r["memory"]["metrics"]["peak_rss_bytes"]}
                                     for name, r in results.items() if name != "dataset"}))
    return results


def runs(evaluated) -> dict:
    return {name: r for name, r in evaluated.items() if name != "dataset"}


def test_every_engine_scores_the_same_tokens_the_same_way(evaluated):
    """llama.cpp's and the HF tokenizer agree on SmolLM2, so every engine scored the same ids."""
    shas = {name: r["perplexity"]["method"]["tokens_sha256"] for name, r in runs(evaluated).items()}
    assert len(set(shas.values())) == 1, shas
    for name, r in runs(evaluated).items():
        ppl = r["perplexity"]
        assert ppl["metrics"]["tokens_scored"] == 2 * 63, name  # 128-token chunks, second half
        assert (ppl["method"]["context"], ppl["method"]["chunks"],
                ppl["method"]["dataset"]["id"]) == (128, 2, evaluated["dataset"]), name
        assert 5 < ppl["metrics"]["perplexity"] < 60, (name, ppl["metrics"])
    assert evaluated["q4_1"]["perplexity"]["method"]["engine"]["engine"] == "llama.cpp"
    assert evaluated["hf"]["perplexity"]["method"]["engine"]["engine"] == "transformers"


def test_quantized_variants_were_evaluated_through_the_engine_chat_loads(evaluated):
    """The job's child opened NF4 and GPTQ with engines.open_engine: the class the runtime's
    model manager loads for those formats, on bitsandbytes' and GPTQModel's own layers
    (tests/engines/test_measurement.py compares the whole record with chat's, in one process)."""
    from engines import engine_for

    for name, fmt, kernel in (("nf4", "bnb-nf4", "Linear4bit"), ("gptq", "gptq", "TorchCpu")):
        engine = evaluated[name]["perplexity"]["method"]["engine"]
        assert engine["class"] == engine_for(fmt).class_path(), (name, engine)
        assert any(layer.startswith(kernel) for layer in engine["linear"]), (name, engine)


def test_memory_and_speed_are_measured_and_planned(evaluated):
    for name, r in runs(evaluated).items():
        assert r["memory"]["metrics"]["peak_rss_bytes"] > 100 * 2**20, name
    # GGUF: served through the runtime's engine at the evaluation's context, beside the planner's
    # figure for the same (tests/jobs/methods/test_evaluate_memory.py pins the two within 10 %).
    for name in ("q4_1", "f16"):
        memory = evaluated[name]["memory"]
        assert memory["method"]["what"] == "served at context 128", name
        assert "planner_error_pct" in memory["metrics"], (name, memory["metrics"])
    # transformers: the evaluation process, labelled so and not set against a served plan.
    assert evaluated["hf"]["memory"]["method"]["what"] == "evaluation process at context 128"
    assert "planner_total_bytes" not in evaluated["hf"]["memory"]["metrics"]
    assert evaluated["q4_1"]["speed"]["metrics"]["decode_tokens_per_s"] > 0
    assert "speed" not in evaluated["gptq"]  # asked for without speed


def test_kl_is_measured_only_against_a_reference(evaluated):
    assert "kl" not in evaluated["q4_1"]  # the lineage root has no reference
    assert "kl" not in evaluated["hf"]  # reference "none"
    assert evaluated["nf4"]["kl"]["method"]["reference_variant"] == evaluated["q4_1"]["variant"]["pk"]
    assert evaluated["gptq"]["kl"]["method"]["reference_variant"] == evaluated["hf"]["variant"]["pk"]


def test_llamacpp_and_transformers_agree_on_the_same_f16_weights(evaluated):
    llama_ppl = evaluated["f16"]["perplexity"]["metrics"]["perplexity"]
    hf_ppl = evaluated["hf"]["perplexity"]["metrics"]["perplexity"]
    assert abs(llama_ppl / hf_ppl - 1) < 0.01, (llama_ppl, hf_ppl)
    cross = evaluated["f16"]["kl"]["metrics"]
    assert cross["reference_perplexity"] == hf_ppl  # the same numbers again, in another process
    assert cross["kl_mean"] < 0.01 and cross["top1_agreement"] > 0.95, cross


def test_quantization_costs_more_kl_than_changing_engines(evaluated):
    cross = evaluated["f16"]["kl"]["metrics"]["kl_mean"]
    assert evaluated["nf4"]["kl"]["metrics"]["kl_mean"] > cross
    assert evaluated["gptq"]["kl"]["metrics"]["kl_mean"] > cross


def test_the_variant_row_shows_its_latest_scores(evaluated):
    nf4 = evaluated["nf4"]
    assert nf4["variant"]["perplexity"] == nf4["perplexity"]["metrics"]["perplexity"]
    assert nf4["variant"]["metrics"]["kl_divergence"] == nf4["kl"]["metrics"]["kl_mean"]


def test_the_cli_inline_gives_the_same_scores_for_the_same_tokens(evaluated, teams, demo_variant,
                                                                   demo_hf_f16):
    from catalog.datasets import dataset_upload

    hf = register_copy(model=demo_variant.model, folder=demo_hf_f16, format="hf", quant_type="F16",
                       parent=demo_variant)
    test_set = dataset_upload(team_id=teams["red"].pk, user_id=None,
                              path=str(WIKITEXT / "test.txt"), name="wikitext-2 test")
    out = StringIO()
    call_command("evaluate", str(hf.pk), "--dataset", str(test_set.pk), "--context", "128",
                 "--chunks", "2", "--reference", "none", "--no-speed", "--inline", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["status"] == "succeeded"
    [ppl] = [e for e in report["evaluations"] if e["kind"] == "perplexity"]
    assert ppl["metrics"]["perplexity"] == evaluated["hf"]["perplexity"]["metrics"]["perplexity"]
    assert ppl["method"]["tokens_sha256"] == evaluated["hf"]["perplexity"]["method"]["tokens_sha256"]
