"""Evaluation jobs on a real worker for GGUF, HF, bitsandbytes NF4 and GPTQ variants of the demo
model, and the cross-engine check: the same F16 weights through llama.cpp (F16 GGUF) and through
transformers (the HF F16 folder it was converted from) agree on perplexity within 1 %.

Chain (one test, as in tests/jobs/test_hf_methods_end_to_end.py): demo Q4_1 GGUF → HF F16
(hf-from-gguf) → F16 GGUF (gguf, llama.cpp's converter), NF4 (bnb-nf4), GPTQ 4-bit g64 (tiny
calibration). Evaluations are kept tiny: 2 chunks × 128 tokens of WikiText-2 test."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from jobs.models import Job
from jobs.services import job_submit
from tests.support.processes import WIKITEXT, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TINY = {"context": 128, "chunks": 2, "prompt_tokens": 32, "gen_tokens": 8}


def submit(teams, method, variant, params):
    return job_submit(team=teams["red"], user=teams["alice"], method=method, params=params,
                      input_variant=variant)


def finished(job, timeout) -> Job:
    wait_until(lambda: Job.objects.get(pk=job.pk).is_final, timeout, interval=1, what=f"{job.method} job")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{job.log_tail[-3000:]}"
    return job


def made(teams, method, variant, params, timeout=600):
    job = finished(submit(teams, method, variant, params), timeout)
    return {v.quant_type: v for v in job.outputs.all()}


def evaluations(job) -> dict:
    return {e.kind: e for e in job.evaluations.all()}


def test_evaluate_gguf_hf_nf4_gptq_and_llamacpp_agrees_with_transformers(teams, demo_variant, celery_worker):
    from catalog.datasets import dataset_upload

    test_set = dataset_upload(team_id=teams["red"].pk, user_id=teams["alice"].pk,
                              path=str(WIKITEXT / "test.txt"), name="wikitext-2 test")
    valid_set = dataset_upload(team_id=teams["red"].pk, user_id=teams["alice"].pk,
                               path=str(WIKITEXT / "valid.txt"), name="wikitext-2 valid")
    [hf] = made(teams, "hf-from-gguf", demo_variant, {"dtype": "float16"}).values()
    [f16] = made(teams, "gguf", hf, {"types": ["F16"]}).values()
    [nf4] = made(teams, "bnb-nf4", hf, {"double_quant": True}).values()
    [gptq] = made(teams, "gptq", hf, {"bits": 4, "group_size": 64, "dataset": valid_set.pk,
                                      "samples": 4, "seq_len": 32}, 900).values()
    assert (f16.format, f16.quant_type, hf.quant_type) == ("gguf", "F16", "F16")

    params = {"dataset": test_set.pk, **TINY}
    jobs = {
        "q4_1": submit(teams, "evaluate", demo_variant, params),
        "hf": submit(teams, "evaluate", hf, {**params, "reference": "none"}),
        "f16": submit(teams, "evaluate", f16, {**params, "reference": hf.pk}),
        "nf4": submit(teams, "evaluate", nf4, params),  # reference: the lineage root, the Q4_1 GGUF
        "gptq": submit(teams, "evaluate", gptq, {**params, "reference": hf.pk, "speed": False}),
    }
    done = {name: evaluations(finished(job, 600)) for name, job in jobs.items()}

    # Every engine scored the same token ids (llama.cpp's and the HF tokenizer agree on SmolLM2).
    shas = {name: e["perplexity"].method["tokens_sha256"] for name, e in done.items()}
    assert len(set(shas.values())) == 1, shas
    for name, e in done.items():
        ppl = e["perplexity"]
        assert ppl.metrics["tokens_scored"] == 2 * 63, name
        assert (ppl.method["context"], ppl.method["chunks"], ppl.method["dataset"]["id"]) == (128, 2, test_set.pk)
        assert 5 < ppl.metrics["perplexity"] < 60, (name, ppl.metrics)
        assert e["memory"].metrics["peak_rss_bytes"] > 100 * 2**20
    assert done["q4_1"]["perplexity"].method["engine"]["engine"] == "llama.cpp"
    assert done["hf"]["perplexity"].method["engine"]["engine"] == "transformers"
    assert done["q4_1"]["memory"].metrics["planner_total_bytes"] > 0
    assert done["q4_1"]["speed"].metrics["decode_tokens_per_s"] > 0
    assert "kl" not in done["q4_1"] and "kl" not in done["hf"] and "speed" not in done["gptq"]

    # Cross-engine: F16 GGUF through llama.cpp vs the HF F16 folder through transformers.
    llama_ppl = done["f16"]["perplexity"].metrics["perplexity"]
    hf_ppl = done["hf"]["perplexity"].metrics["perplexity"]
    assert abs(llama_ppl / hf_ppl - 1) < 0.01, (llama_ppl, hf_ppl)
    cross = done["f16"]["kl"].metrics
    assert cross["reference_perplexity"] == hf_ppl  # the same numbers again, in the same job
    assert cross["kl_mean"] < 0.01 and cross["top1_agreement"] > 0.95, cross

    # Quantization costs something, measured against the reference.
    assert done["nf4"]["kl"].method["reference_variant"] == demo_variant.pk
    assert done["nf4"]["kl"].metrics["kl_mean"] > cross["kl_mean"]
    assert done["gptq"]["kl"].metrics["kl_mean"] > cross["kl_mean"]

    nf4.refresh_from_db()
    assert nf4.perplexity == done["nf4"]["perplexity"].metrics["perplexity"]
    assert nf4.metrics["kl_divergence"] == done["nf4"]["kl"].metrics["kl_mean"]
    print("\nmeasured:", json.dumps({name: {"ppl": e["perplexity"].metrics["perplexity"],
                                            "kl": e.get("kl") and e["kl"].metrics["kl_mean"],
                                            "tps": e.get("speed") and e["speed"].metrics["decode_tokens_per_s"],
                                            "rss": e["memory"].metrics["peak_rss_bytes"]}
                                     for name, e in done.items()}))

    # The CLI, inline: same scores for the same tokens.
    out = StringIO()
    call_command("evaluate", str(hf.pk), "--dataset", str(test_set.pk), "--context", "128",
                 "--chunks", "2", "--reference", "none", "--no-speed", "--inline", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["status"] == "succeeded"
    [ppl] = [e for e in report["evaluations"] if e["kind"] == "perplexity"]
    assert ppl["metrics"]["perplexity"] == hf_ppl
    assert ppl["method"]["tokens_sha256"] == shas["hf"]
