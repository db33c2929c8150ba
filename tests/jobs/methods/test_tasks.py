"""The "tasks" job method against lm-evaluation-harness's own command line.

The same two task files — 24 multiple-choice and 10 question/answer items written below, in the
config dicts the catalog builds (catalog/tasksets.py) — are scored twice on the demo model's
float32 HF folder: by `python -m lm_eval --model hf` (lm-eval's own transformers backend, in a
subprocess, offline) and by the job's run() (the model opened by engines.open_engine, wrapped by
engines/harness.py). The accuracies must agree within lm-eval's reported standard error; in
float32 both sides see the same token ids and the per-doc log-likelihoods agree to 1e-4 nats, and
the greedy answers are the same strings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jobs.methods.base import InputFile, RunContext
from jobs.methods.tasks import TasksMethod
from tests.support.processes import ROOT

MC_ITEMS = [
    ("What color is grass?", ["green", "purple", "orange", "white"], 0),
    ("How many days are in a week?", ["five", "seven", "ten", "twelve"], 1),
    ("What do bees make?", ["milk", "silk", "honey", "paper"], 2),
    ("Which animal barks?", ["cat", "fish", "bird", "dog"], 3),
    ("What is frozen water called?", ["ice", "steam", "sand", "smoke"], 0),
    ("Which planet do we live on?", ["Mars", "Earth", "Venus", "Jupiter"], 1),
    ("What is the opposite of hot?", ["loud", "fast", "cold", "tall"], 2),
    ("What do you use to write on paper?", ["spoon", "shoe", "plate", "pencil"], 3),
    ("Which fruit is yellow and long?", ["banana", "cherry", "grape", "plum"], 0),
    ("How many hours are in a day?", ["twelve", "twenty-four", "sixty", "seven"], 1),
    ("What gas do people breathe in to live?", ["helium", "neon", "oxygen", "argon"], 2),
    ("Where do fish live?", ["trees", "deserts", "clouds", "water"], 3),
    ("What is the capital of France?", ["Paris", "Berlin", "Madrid", "Rome"], 0),
    ("What is two plus two?", ["three", "four", "five", "six"], 1),
    ("Which season is the coldest?", ["summer", "spring", "winter", "autumn"], 2),
    ("What does a cow drink?", ["oil", "ink", "juice", "water"], 3),
    ("Which body part do you see with?", ["eyes", "ears", "knees", "elbows"], 0),
    ("What color is the sky on a clear day?", ["red", "blue", "black", "brown"], 1),
    ("What is the largest ocean on Earth?", ["Arctic", "Indian", "Pacific", "Atlantic"], 2),
    ("Which of these is a vegetable?", ["stone", "glass", "metal", "carrot"], 3),
    ("What does the sun give us?", ["light", "rain", "snow", "fog"], 0),
    ("What shape has three sides?", ["circle", "triangle", "square", "line"], 1),
    ("Which animal is known for its long neck?", ["mouse", "snake", "giraffe", "frog"], 2),
    ("What do plants need to grow?", ["plastic", "noise", "darkness", "sunlight"], 3),
]
QA_ITEMS = [
    ("What is the capital of France?", ["Paris"]),
    ("What is the capital of Italy?", ["Rome"]),
    ("What is the capital of Germany?", ["Berlin"]),
    ("What is the capital of Spain?", ["Madrid"]),
    ("What is the capital of Japan?", ["Tokyo"]),
    ("What color is grass?", ["green"]),
    ("What color is the sky on a clear day?", ["blue", "light blue"]),
    ("How many legs does a dog have?", ["four", "4"]),
    ("What is the largest planet in the solar system?", ["Jupiter"]),
    ("What do bees make?", ["honey"]),
]
# The catalog's configs (the contract's section 1); names are the TaskSets' slugs.
MC_CONFIG = {
    "task": "quiz_mc", "output_type": "multiple_choice",
    "doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_choice": "{{choices}}",
    "doc_to_target": "{{answer}}", "target_delimiter": " ", "fewshot_delimiter": "\n\n",
    "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                    {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}]}
QA_CONFIG = {
    "task": "quiz_qa", "output_type": "generate_until",
    "doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_target": "{{answers}}",
    "generation_kwargs": {"until": ["\n"], "do_sample": False},
    "filter_list": [{"name": "strip", "filter": [{"function": "remove_whitespace"},
                                                 {"function": "take_first"}]}],
    "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                     "ignore_case": True, "ignore_punctuation": True}]}
FEWSHOT, SEED, MAX_GEN_TOKS = 2, 1234, 12
# One thread on both sides: on a loaded shared CPU a second torch thread waiting at its barriers
# makes a forward pass of this model about ten times slower.
THREADS = "1"


def write_items(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    mc, qa = folder / "mc.jsonl", folder / "qa.jsonl"
    mc.write_text("".join(json.dumps({"question": q, "choices": c, "answer": a}) + "\n"
                          for q, c, a in MC_ITEMS))
    qa.write_text("".join(json.dumps({"question": q, "answers": a}) + "\n" for q, a in QA_ITEMS))
    return {"quiz_mc": mc, "quiz_qa": qa}


def cli_yaml(folder: Path, items: dict[str, Path]) -> None:
    """The task YAMLs `lm_eval --include_path` reads: the same configs over the same files (the
    job adds the same dataset keys to them); the generation length the job's max_gen_toks."""
    for config in (MC_CONFIG, QA_CONFIG):
        data = {**config, "dataset_path": "json", "test_split": "test",
                "dataset_kwargs": {"data_files": {"test": str(items[config["task"]])}}}
        if config["output_type"] == "generate_until":
            data["generation_kwargs"] = {**config["generation_kwargs"], "max_gen_toks": MAX_GEN_TOKS}
        (folder / f"{config['task']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def run_cli(model_dir: Path, tasks_dir: Path, out: Path) -> tuple[dict, dict[str, list[dict]]]:
    command = [sys.executable, "-m", "lm_eval", "--model", "hf",
               "--model_args", f"pretrained={model_dir},dtype=float32",
               "--device", "cpu", "--batch_size", "1", "--tasks", "quiz_mc,quiz_qa",
               "--include_path", str(tasks_dir), "--num_fewshot", str(FEWSHOT),
               "--seed", str(SEED), "--output_path", str(out), "--log_samples"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(out / "datasets-cache"), "OMP_NUM_THREADS": THREADS}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"lm_eval failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    [results] = out.glob("*/results_*.json")
    samples = {}
    for task in ("quiz_mc", "quiz_qa"):
        [path] = out.glob(f"*/samples_{task}_*.jsonl")
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        samples[task] = sorted(rows, key=lambda s: s["doc_id"])
    return json.loads(results.read_text()), samples


def run_job(files: list[Path], input_format: str, items: dict[str, Path], workdir: Path, *,
            qa: bool = True):
    tasks = [("Quiz MC", "mc", MC_CONFIG)] + ([("Quiz QA", "qa", QA_CONFIG)] if qa else [])
    specs = [{"name": name, "source": "catalog", "taskset_id": i + 1, "kind": kind,
              "sha256": f"{i + 1:064x}", "data_path": str(items[config["task"]]), "config": config}
             for i, (name, kind, config) in enumerate(tasks)]
    params = TasksMethod().validate({"tasks": [1, 2], "task_specs": specs, "num_fewshot": FEWSHOT,
                                     "seed": SEED, "max_gen_toks": MAX_GEN_TOKS,
                                     "threads": int(THREADS)}, None)
    events = []
    ctx = RunContext(job_id=0, params=params, input_format=input_format, input_quant_type="",
                     input_dir=str(files[0].parent), workdir=str(workdir),
                     input_files=[InputFile(path=str(p), bytes=p.stat().st_size, sha256="") for p in files],
                     progress=lambda f, s: events.append((f, s)))
    return TasksMethod().run(ctx), events


def read_samples(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def max_gap(ours: list[dict], theirs: list[dict]) -> float:
    """The largest difference between two runs' log-likelihoods of the same choice."""
    assert [d["doc_id"] for d in ours] == [s["doc_id"] for s in theirs]
    return max(abs(float(a[0]) - float(b[0])) for d, s in zip(ours, theirs)
               for a, b in zip(d["resps"], s["filtered_resps"]))


@pytest.mark.slow
def test_job_agrees_with_the_lm_eval_command_line(demo_hf_f32, demo_gguf, tmp_path):
    items = write_items(tmp_path / "items")
    tasks_dir = tmp_path / "yaml"
    tasks_dir.mkdir()
    cli_yaml(tasks_dir, items)
    cli, cli_samples = run_cli(demo_hf_f32, tasks_dir, tmp_path / "cli")
    model_files = sorted(p for p in demo_hf_f32.iterdir() if p.is_file())
    (mc, qa), events = run_job(model_files, "hf", items, tmp_path / "job")

    # Multiple choice: acc within lm-eval's standard error (float32 on both sides: equal).
    cli_mc = cli["results"]["quiz_mc"]
    assert mc.kind == "tasks" and mc.metrics["task"] == "Quiz MC"
    assert mc.metrics["samples"] == len(MC_ITEMS) and mc.metrics["subtasks"] == {}
    acc = mc.metrics["results"]["acc"]
    assert abs(acc["value"] - cli_mc["acc,none"]) <= cli_mc["acc_stderr,none"]
    assert acc["value"] == cli_mc["acc,none"]
    assert acc["stderr"] == pytest.approx(cli_mc["acc_stderr,none"])
    assert mc.metrics["results"]["acc_norm"]["value"] == cli_mc["acc_norm,none"]
    assert 0 < acc["value"] < 1 and acc["stderr"] > 0  # a score, not a degenerate 0 or 1

    # Per doc: the same prompts (few-shot examples included), the same log-likelihoods.
    gap = max_gap(read_samples(tmp_path / "job" / "samples" / "quiz_mc.jsonl"), cli_samples["quiz_mc"])
    print(f"\nacc job {acc['value']:.4f} ± {acc['stderr']:.4f}, CLI {cli_mc['acc,none']:.4f} ± "
          f"{cli_mc['acc_stderr,none']:.4f}; per-choice log-likelihood max gap {gap:.2e} nats")
    assert gap < 1e-4

    # Question/answer: greedy answers, exact match against any accepted answer.
    cli_qa = cli["results"]["quiz_qa"]
    em = qa.metrics["results"]["exact_match"]
    assert em["value"] == cli_qa["exact_match,strip"] and em["value"] > 0
    job_qa = read_samples(tmp_path / "job" / "samples" / "quiz_qa.jsonl")
    assert [d["resps"] for d in job_qa] == [s["filtered_resps"] for s in cli_samples["quiz_qa"]]
    print(f"exact_match job {em['value']:.3f} ± {em['stderr']:.3f}, CLI {cli_qa['exact_match,strip']:.3f}; "
          f"answers {[d['resps'] for d in job_qa]}")

    # How it was measured, and what makes two results comparable.
    assert mc.method["num_fewshot"] == FEWSHOT and mc.method["seed"] == SEED
    assert mc.method["lm_eval_version"] == "0.4.13" and mc.method["task_sha256"] == f"{1:064x}"
    assert mc.method["engine"] == "engines.transformers_engine.TransformersEngine"
    assert mc.method["prompt_template"]["doc_to_text"] == MC_CONFIG["doc_to_text"]
    assert qa.method["prompt_template"]["until"] == ["\n"] and qa.method["max_gen_toks"] == MAX_GEN_TOKS
    assert len({mc.method["protocol"], qa.method["protocol"]}) == 2
    fractions = [f for f, _ in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"loglikelihood", "generate_until"} <= {s for _, s in events}

    # The GGUF the HF folder was dequantized from, through llama.cpp (its matmuls quantize the
    # activations, so the log-likelihoods move a little): acc still within the CLI's stderr.
    [gguf_mc], _ = run_job([demo_gguf], "gguf", items, tmp_path / "job-gguf", qa=False)
    gguf_acc = gguf_mc.metrics["results"]["acc"]["value"]
    gguf_gap = max_gap(read_samples(tmp_path / "job-gguf" / "samples" / "quiz_mc.jsonl"),
                       cli_samples["quiz_mc"])
    print(f"GGUF through llama.cpp: acc {gguf_acc:.4f}; per-choice gap to the CLI {gguf_gap:.3f} nats")
    assert abs(gguf_acc - cli_mc["acc,none"]) <= cli_mc["acc_stderr,none"]
    assert gguf_mc.method["engine"] == "engines.llamacpp.LlamaCppEngine"
    assert gguf_mc.method["protocol"] == mc.method["protocol"]  # comparable with the HF result


def spec(**changes) -> dict:
    return {"name": "Quiz MC", "source": "catalog", "taskset_id": 1, "kind": "mc", "sha256": "0" * 64,
            "data_path": "/srv/tasks/1/items.jsonl", "config": MC_CONFIG, **changes}


@pytest.mark.parametrize("params, field, message", [
    ({"task_specs": []}, "tasks", "choose at least one task"),
    ({"task_specs": [spec(config={**MC_CONFIG, "output_type": "loglikelihood_rolling"})]}, "tasks",
     "multiple_choice or generate_until"),
    ({"task_specs": [spec(config={**MC_CONFIG, "dataset_path": "hellaswag"})]}, "tasks", "names no dataset"),
    ({"task_specs": [spec(), spec()]}, "tasks", "listed twice"),
    ({"task_specs": [spec()], "num_fewshot": 26}, "num_fewshot", "25"),
    ({"task_specs": [spec()], "limit": 0}, "limit", "1"),
    ({"task_specs": [spec()], "max_gen_toks": 257}, "max_gen_toks", "256"),
    ({"task_specs": [spec()], "temperature": 0.7}, "temperature", "unknown parameter"),
])
def test_validate_names_the_field(params, field, message):
    from jobs.methods.base import JobError

    with pytest.raises(JobError) as caught:
        TasksMethod().validate(params, None)
    assert list(caught.value.errors) == [field] and message in caught.value.errors[field]


def test_validate_defaults():
    cleaned = TasksMethod().validate({"tasks": [1], "task_specs": [spec()]}, None)
    assert {k: cleaned[k] for k in ("num_fewshot", "limit", "seed", "max_gen_toks", "threads")} == {
        "num_fewshot": 0, "limit": None, "seed": 1234, "max_gen_toks": 32, "threads": 2}


@pytest.mark.django_db
def test_estimate_holds_the_weights_and_claims_no_time(demo_variant):
    estimate = TasksMethod().estimate(TasksMethod().validate({"task_specs": [spec()]}, demo_variant),
                                      demo_variant)
    assert estimate["output_bytes"] == 0 and set(estimate) == {"peak_memory_bytes", "output_bytes"}
    assert estimate["peak_memory_bytes"] > demo_variant.total_bytes  # weights + KV cache at 2048
