"""lm-evaluation-harness against the dashboard: `lm_eval --model local-completions` runs the two
local WikiText-2 tasks in tests/runtime/lm_eval_tasks/ — a loglikelihood task and a generate_until
task — through real uvicorn, /v1/completions and the runtime server, offline (no Hub).

The independent sides: our own perplexity evaluation (jobs/methods/evaluate.py, run in this process
on the same GGUF) and greedy decoding by llama.cpp in this process. lm-eval's per-token
log-likelihood must agree with the evaluation's within 0.5 % over the very same token ids, and its
generations must be the greedy ones."""

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.processes import ROOT, WIKITEXT

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TASKS = Path(__file__).parent / "lm_eval_tasks"
TEXT = WIKITEXT / "test.txt"
# 4 chunks x 127 scored tokens; a chunk (256) + the 1 token lm-eval asks for fit the tests' n_ctx 512.
CHUNKS = {"context": 256, "chunks": 4}
PROMPTS = 5
MAX_GEN_TOKS = 6  # the next-word task's max_gen_toks
STOP = ["\n", "<|im_end|>"]  # the task's `until` plus the EOS string lm-eval adds to it
TOLERANCE = 0.005  # the 0.5 %


@pytest.fixture(scope="module")
def tokenizer_dir(demo_gguf, tmp_path_factory) -> Path:
    """The demo GGUF's tokenizer as an HF folder, for lm-eval's huggingface tokenizer backend."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("demo-tokenizer")
    AutoTokenizer.from_pretrained(str(demo_gguf.parent), gguf_file=demo_gguf.name).save_pretrained(str(out))
    return out


def lm_eval_command(base_url: str, model: str, tokenizer: Path, out: Path) -> list[str]:
    """The command line docs/evaluation.md shows (model quoted: lm-eval turns "7" into the int 7)."""
    model_args = (f"base_url={base_url}/v1/completions,model='{model}',tokenizer={tokenizer},"
                  "tokenizer_backend=huggingface")
    return [sys.executable, "-m", "lm_eval", "--model", "local-completions",
            "--model_args", model_args, "--tasks", "wikitext2_chunks,wikitext2_next_word",
            "--include_path", str(TASKS),
            "--metadata", json.dumps({"text": str(TEXT), **CHUNKS, "prompts": PROMPTS}),
            "--output_path", str(out), "--log_samples"]


def run_lm_eval(command: list[str], key: str, out: Path) -> tuple[dict, dict[str, list[dict]]]:
    """Runs lm-eval offline; returns its results JSON and its logged samples per task."""
    env = {**os.environ, "OPENAI_API_KEY": key, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(out / "datasets-cache")}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"lm_eval failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    [results] = out.glob("*/results_*.json")
    samples = {}
    for task in ("wikitext2_chunks", "wikitext2_next_word"):
        [path] = out.glob(f"*/samples_{task}_*.jsonl")
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        samples[task] = sorted(lines, key=lambda s: s["doc_id"])
    return json.loads(results.read_text()), samples


def our_perplexity(gguf: Path, workdir: Path):
    """The evaluate job method's perplexity Evaluation for the demo GGUF on the same chunks."""
    from jobs.methods.base import InputFile, RunContext
    from jobs.methods.evaluate import EvaluateMethod

    params = {"mode": "quick", **CHUNKS, "speed": False, "prompt_tokens": 128, "gen_tokens": 32,
              "threads": 1, "dataset_path": str(TEXT)}
    ctx = RunContext(job_id=0, params=params, input_format="gguf", input_quant_type="Q4_1",
                     input_dir=str(gguf.parent), workdir=str(workdir),
                     input_files=[InputFile(path=str(gguf), bytes=gguf.stat().st_size, sha256="")])
    [perplexity, _memory] = EvaluateMethod().run(ctx)
    return perplexity


def lm_eval_request_ids(tok, context: str, continuation: str) -> tuple[list[int], int]:
    """The ids lm-eval sends for a loglikelihood request and how many of them are context
    (lm_eval/api/model.py TemplateLM._encode_pair, causal: trailing spaces move to the
    continuation, the whole is tokenized once, the context's own length splits it)."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tok(context + continuation, add_special_tokens=False).input_ids
    return whole, len(tok(context, add_special_tokens=False).input_ids)


def greedy_text(engine, tok, prompt: str) -> str:
    """Greedy decoding of MAX_GEN_TOKS tokens from full-sequence logits, cut at the stop strings."""
    ids = tok(prompt, add_special_tokens=False).input_ids
    generated = []
    for _ in range(MAX_GEN_TOKS):
        token = int(np.argmax(engine.logits(ids + generated)[-1]))
        if token == tok.eos_token_id:
            break
        generated.append(token)
    text = tok.decode(generated)
    for stop in STOP:
        text = text.split(stop)[0]
    return text


def test_lm_eval_agrees_with_our_perplexity_and_greedy_decoding(
        runtime_web_server, red_demo, api_keys, demo_gguf, tokenizer_dir, tmp_path):
    from transformers import AutoTokenizer

    from engines import open_engine

    command = lm_eval_command(runtime_web_server, str(red_demo.pk), tokenizer_dir, tmp_path / "lm-eval")
    results, samples = run_lm_eval(command, api_keys["alice"], tmp_path / "lm-eval")
    ours = our_perplexity(demo_gguf, tmp_path / "evaluate")
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))

    # The loglikelihood task scored the same token ids as our evaluation ...
    chunks = samples["wikitext2_chunks"]
    requests = [lm_eval_request_ids(tok, s["doc"]["context"], s["doc"]["continuation"]) for s in chunks]
    windows = np.asarray([ids for ids, _ctxlen in requests], dtype=np.int64)
    assert hashlib.sha256(windows.tobytes()).hexdigest() == ours.method["tokens_sha256"]
    scored = [len(ids) - ctxlen for ids, ctxlen in requests]
    assert scored == [ours.method["scored_per_chunk"]] * CHUNKS["chunks"]
    assert sum(scored) == ours.metrics["tokens_scored"] == 4 * 127
    # ... and its per-token log-likelihood agrees within 0.5 %.
    loglikelihoods = [float(s["filtered_resps"][0][0]) for s in chunks]
    lm_eval_nll = -sum(loglikelihoods) / sum(scored)
    assert abs(lm_eval_nll - ours.metrics["nll_mean"]) / ours.metrics["nll_mean"] < TOLERANCE, (
        lm_eval_nll, ours.metrics)
    reported = results["results"]["wikitext2_chunks"]["token_perplexity,none"]
    assert reported == pytest.approx(math.exp(lm_eval_nll), rel=1e-9)

    # The generate_until task answered with the greedy continuations, and scored them.
    engine = open_engine("gguf", [demo_gguf], n_ctx=CHUNKS["context"], threads=1)
    words = samples["wikitext2_next_word"]
    assert len(words) == PROMPTS
    greedy = [greedy_text(engine, tok, s["doc"]["context"]) for s in words]
    assert [s["resps"][0][0] for s in words] == greedy
    hits = [(g.split() or [""])[0] == s["doc"]["target"] for g, s in zip(greedy, words)]
    assert results["results"]["wikitext2_next_word"]["exact_match,first_word"] == pytest.approx(
        sum(hits) / PROMPTS)
