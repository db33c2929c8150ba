"""The `tasks` job method: task accuracy of a variant, scored by lm-evaluation-harness itself.

The variant is loaded by `engines.open_engine`, as chat serves it, and wrapped as an lm-eval model
(engines/harness.py: log-likelihoods from the engine's logits, greedy generation through its
stream). Each task is lm-eval's own: a catalog TaskSet's config dict (catalog/tasksets.py builds
it; here it gets `dataset_path: json` over the stored items file, read offline) or a built-in task
by name, scored by lm-eval's evaluator with the job's few-shot count, doc limit and seed. One
Evaluation per task, kind "tasks": every metric lm-eval reports with its standard error, the
subtasks of a group, and how it was measured. Two variants' results are compared only when their
method["protocol"] is equal: the same task file (sha256), few-shot count, limit, seed, lm-eval
version, prompt template and generation length.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

from jobs.methods import hf_common
from jobs.methods.base import Evaluation, JobError, Method, RunContext

_PARAMS = {"tasks", "task_specs", "num_fewshot", "limit", "seed", "max_gen_toks", "threads", "context"}
FORMATS = ("gguf", "hf", "bnb-nf4", "bnb-int8", "gptq")
OUTPUT_TYPES = ("multiple_choice", "generate_until")
# The context the variant is opened with: HFLM's default max_length when a model config says none.
DEFAULT_CONTEXT = 2048
# Which template fields of a task's config make its prompts (recorded, and part of the protocol).
TEMPLATE_KEYS = ("doc_to_text", "doc_to_target", "doc_to_choice", "target_delimiter",
                 "fewshot_delimiter")


class TasksMethod(Method):
    name = "tasks"
    kind = "evaluate"
    devices = ("cpu", "cuda")
    input_formats = FORMATS
    soft_time_limit = 4 * 3600
    hard_time_limit = 6 * 3600
    child_env = {"GPTQMODEL_CPU_WORKERS": "2", "HF_HUB_DISABLE_TELEMETRY": "1"}

    # ---- web process ----
    def validate(self, params: dict, variant) -> dict:
        params = dict(params or {})
        hf_common.reject_unknown(params, _PARAMS)
        limit = params.get("limit")
        cleaned = {
            "task_specs": _clean_specs(params.get("task_specs")),
            "num_fewshot": hf_common.clean_number(params, "num_fewshot", 0, kind=int, low=0, high=25),
            "limit": None if limit in (None, "") else hf_common.clean_number(
                params, "limit", None, kind=int, low=1, high=10_000_000),
            "seed": hf_common.clean_number(params, "seed", 1234, kind=int, low=0, high=2**31 - 1),
            "max_gen_toks": hf_common.clean_number(params, "max_gen_toks", 32, kind=int, low=1, high=256),
            "threads": hf_common.clean_number(params, "threads", 2, kind=int, low=1, high=256),
            "context": hf_common.clean_number(params, "context", DEFAULT_CONTEXT, kind=int,
                                              low=64, high=131072),
        }
        if cleaned["max_gen_toks"] >= cleaned["context"]:
            raise JobError.field("max_gen_toks", f"must be below the context ({cleaned['context']} "
                                 "tokens): the prompt needs room too")
        if params.get("tasks") is not None:
            cleaned["tasks"] = params["tasks"]
        return cleaned

    def estimate(self, params: dict, variant) -> dict:
        """The planner's total for the variant held at the job's context (what routing
        reserves); no time: none has been measured for this method."""
        from jobs.methods.evaluate import planner_memory

        plan = planner_memory(variant, params["context"])
        peak = plan["total_bytes"] if plan else variant.total_bytes + hf_common.RUNTIME_OVERHEAD_BYTES
        return {"peak_memory_bytes": int(peak), "output_bytes": 0}

    # ---- child process ----
    def run(self, ctx: RunContext) -> list[Evaluation]:
        builtin = any(s["source"] == "builtin" for s in ctx.params["task_specs"])
        # Set before lm-eval (and `datasets`, which reads them at import) is imported: catalog
        # task files are local, so nothing may reach for the Hub; a built-in task needs it.
        offline = {} if builtin else {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
        with _environ(HF_DATASETS_CACHE=str(Path(ctx.workdir) / "datasets-cache"), **offline):
            return self._run(ctx, builtin=builtin)

    def _run(self, ctx: RunContext, *, builtin: bool) -> list[Evaluation]:
        p, specs = ctx.params, ctx.params["task_specs"]
        workdir = Path(ctx.workdir)
        from lm_eval import evaluator
        from lm_eval.tasks import TaskManager

        from engines import open_engine
        from engines.harness import EngineLM
        from jobs.methods.gpu_placement import placement_for

        for spec in specs:
            if spec["source"] == "catalog" and not Path(spec["data_path"]).is_file():
                raise JobError.field("tasks", f"task {spec['name']}: its items file is not on this "
                                     f"worker ({spec['data_path']})")
        ctx.progress(0.0, "load")
        files = [Path(f.path) for f in ctx.input_files]
        engine = open_engine(ctx.input_format, files, n_ctx=p["context"], threads=p["threads"],
                             device=ctx.device, node=ctx.node,
                             placement=placement_for(ctx.input_format, files, n_ctx=p["context"],
                                                     device=ctx.device, node=ctx.node))
        names, configs = task_configs(specs, max_gen_toks=p["max_gen_toks"],
                                      cache_dir=workdir / "datasets-cache")
        report = _Progress(ctx, {c["output_type"] for c in configs if isinstance(c, dict)}
                           or {"requests"})
        lm = EngineLM(engine, max_gen_toks=p["max_gen_toks"], progress=report)
        ctx.progress(0.04, "tasks")
        seed = p["seed"]
        # simple_evaluate asks git for the commit of the current folder (lm-eval's own checkout
        # when run from one); a job's folder is no repository, and git's "fatal: not a git
        # repository" would land in the job's log. The version recorded is lm-eval's package's.
        evaluator.get_git_commit_hash = lambda: None
        try:
            out = evaluator.simple_evaluate(
                model=lm, tasks=configs, num_fewshot=p["num_fewshot"], limit=p["limit"],
                task_manager=TaskManager(include_defaults=builtin), log_samples=True,
                random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
                fewshot_random_seed=seed)
        finally:
            info, class_path = engine.info, engine.class_path()
            engine.unload()
        write_samples(out.get("samples") or {}, workdir / "samples")
        version = lm_eval_version()
        evaluations = []
        for spec, name in zip(specs, names):
            metrics = task_metrics(out, name)
            metrics["task"] = spec["name"]
            config = out["configs"].get(name) or _first_subtask_config(out, name)
            evaluations.append(Evaluation("tasks", metrics, task_method(
                spec, config, params=p, lm_eval_version=version,
                engine={"class": class_path, "info": info, "n_ctx": p["context"]})))
            ctx.log(f"{spec['name']}: " + ", ".join(
                f"{k} {v['value']:.4f} ± {v['stderr'] if v['stderr'] is None else round(v['stderr'], 4)}"
                for k, v in metrics["results"].items()) + f" over {metrics['samples']} docs")
        ctx.progress(1.0, "done")
        return evaluations


@contextmanager
def _environ(**values: str):
    """Environment variables set for the block, restored after it (run() may run in a test's
    process rather than the job's own child)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _Progress:
    """ctx.progress from the model's (done, total, request type) reports: lm-eval sends each
    request type (log-likelihoods, generations) in one call, so each type gets an equal span."""

    def __init__(self, ctx: RunContext, output_types: set[str]):
        self.ctx, self.spans, self.seen, self.last = ctx, max(1, len(output_types)), [], 0.0

    def __call__(self, done: int, total: int, kind: str) -> None:
        if kind not in self.seen:
            self.seen.append(kind)
        base = min(len(self.seen) - 1, self.spans - 1)
        # A built-in group may send more request types than were counted: never step back.
        self.last = max(self.last, 0.05 + 0.94 * (base + done / max(total, 1)) / self.spans)
        self.ctx.progress(self.last, kind)


def _clean_specs(specs) -> list[dict]:
    """The resolved task specs (jobs.services puts them here from params["tasks"])."""
    if not isinstance(specs, list) or not specs:
        raise JobError.field("tasks", "choose at least one task")
    cleaned = []
    for spec in specs:
        if not isinstance(spec, dict) or spec.get("source") not in ("catalog", "builtin") \
                or not isinstance(spec.get("name"), str) or not spec["name"]:
            raise JobError.field("tasks", f"not a task: {spec!r}")
        if spec["source"] == "catalog":
            config = spec.get("config")
            if not isinstance(config, dict) or config.get("output_type") not in OUTPUT_TYPES:
                raise JobError.field("tasks", f"task {spec['name']}: its config must be a "
                                     f"{' or '.join(OUTPUT_TYPES)} task")
            if not isinstance(spec.get("data_path"), str) or not spec["data_path"]:
                raise JobError.field("tasks", f"task {spec['name']}: no items file")
            if "dataset_path" in config or "dataset_kwargs" in config:
                raise JobError.field("tasks", f"task {spec['name']}: a catalog task's config names "
                                     "no dataset (the job reads its stored items file)")
        cleaned.append(dict(spec))
    names = [s["name"] for s in cleaned]
    if len(set(names)) != len(names):
        raise JobError.field("tasks", "a task is listed twice")
    return cleaned


def task_configs(specs: list[dict], *, max_gen_toks: int, cache_dir: Path) -> tuple[list[str], list]:
    """lm-eval's task name and its spec (a config dict, or a built-in's name) for each spec. A
    catalog task reads its items file as the `test` split with the `json` loader; two catalog
    tasks whose configs share a name are told apart by a suffix; generation stops after the
    job's max_gen_toks."""
    names, configs = [], []
    for i, spec in enumerate(specs):
        if spec["source"] == "builtin":
            names.append(spec["name"])
            configs.append(spec["name"])
            continue
        config = json.loads(json.dumps(spec["config"]))  # a deep copy lm-eval may change
        name = str(config.get("task") or f"task_{i}")
        if name in names:
            name = f"{name}_{i}"
        config.update(task=name, dataset_path="json", test_split="test",
                      dataset_kwargs={"data_files": {"test": spec["data_path"]},
                                      "cache_dir": str(cache_dir)})
        for split in ("training_split", "validation_split", "fewshot_split", "dataset_name"):
            config.pop(split, None)  # the items file is the only split there is
        if config["output_type"] == "generate_until":
            config["generation_kwargs"] = {**(config.get("generation_kwargs") or {}),
                                           "max_gen_toks": max_gen_toks}
        names.append(name)
        configs.append(config)
    return names, configs


def task_metrics(out: dict, name: str) -> dict:
    """{"results": {metric: {"value", "stderr"}}, "subtasks": {sub: {...}}, "samples": docs}
    from lm-eval's results for task (or group) `name`."""
    subtasks = _leaves(out.get("group_subtasks") or {}, name)
    counts = out.get("n-samples") or {}
    samples = sum(int(counts.get(t, {}).get("effective", 0)) for t in (subtasks or [name]))
    return {"results": _metric_values(out["results"].get(name, {})),
            "subtasks": {t: _metric_values(out["results"].get(t, {})) for t in subtasks},
            "samples": samples}


def _leaves(group_subtasks: dict, name: str) -> list[str]:
    leaves = []
    for child in group_subtasks.get(name, []):
        leaves.extend(_leaves(group_subtasks, child) if group_subtasks.get(child) else [child])
    return leaves


def _metric_values(row: dict) -> dict:
    """lm-eval's "acc,none" / "acc_stderr,none" pairs as {"acc": {"value", "stderr"}}. The
    metric is named without its filter where the task has one filter (the configs here name
    theirs, e.g. "strip"); stderr is None where lm-eval gives none ("N/A": one doc)."""
    keyed = {}
    for key, value in row.items():
        metric, sep, filter_name = key.partition(",")
        if not sep or metric.endswith("_stderr") or not isinstance(value, (int, float)):
            continue
        stderr = row.get(f"{metric}_stderr,{filter_name}")
        keyed[(metric, filter_name)] = {
            "value": float(value),
            "stderr": float(stderr) if isinstance(stderr, (int, float)) else None}
    filters = {f for _, f in keyed}
    return {(m if len(filters) == 1 else f"{m},{f}"): v for (m, f), v in sorted(keyed.items())}


def _first_subtask_config(out: dict, name: str) -> dict:
    leaves = _leaves(out.get("group_subtasks") or {}, name)
    return out["configs"].get(leaves[0], {}) if leaves else {}


def prompt_template(config: dict) -> dict:
    """The fields of a task config that make its prompts and targets, as lm-eval ran them."""
    template = {k: config.get(k) if isinstance(config.get(k), (str, int, float, list, type(None)))
                else str(config.get(k)) for k in TEMPLATE_KEYS}
    template["until"] = (config.get("generation_kwargs") or {}).get("until")
    return template


def task_method(spec: dict, config: dict, *, params: dict, lm_eval_version: str, engine: dict) -> dict:
    catalog = spec["source"] == "catalog"
    output_type = config.get("output_type") or (spec.get("config") or {}).get("output_type")
    template = prompt_template(config)
    generating = output_type == "generate_until"
    identity = spec.get("sha256") if catalog else spec["name"]
    protocol = hashlib.sha256(json.dumps(
        [identity, params["num_fewshot"], params["limit"], params["seed"], lm_eval_version, template,
         params["max_gen_toks"] if generating else None], sort_keys=True).encode()).hexdigest()
    return {"task": spec["name"], "source": spec["source"],
            "taskset_id": spec.get("taskset_id") if catalog else None,
            "task_sha256": spec.get("sha256") if catalog else None,
            "output_type": output_type, "num_fewshot": params["num_fewshot"],
            "limit": params["limit"], "seed": params["seed"], "max_gen_toks": params["max_gen_toks"],
            "lm_eval_version": lm_eval_version, "prompt_template": template, "protocol": protocol,
            "engine": engine["class"], "engine_info": engine["info"], "n_ctx": engine["n_ctx"],
            "threads": params["threads"],
            "scoring": ("sum of the continuation tokens' log-softmax over the engine's logits, "
                        "tokenized as lm-eval's HFLM does" if not generating else
                        "greedy decoding through the engine's stream (temperature 0, no penalties)")}


def write_samples(samples: dict, folder: Path) -> None:
    """Each task's per-doc record (the model's responses, the target, the doc's metrics) as
    <task>.jsonl in the work folder: what a result can be checked against, doc by doc."""
    folder.mkdir(parents=True, exist_ok=True)
    for task, rows in samples.items():
        with open(folder / f"{task}.jsonl", "w") as f:
            for row in rows:
                record = {"doc_id": row.get("doc_id"), "target": row.get("target"),
                          "resps": row.get("filtered_resps"),
                          **{m: row.get(m) for m in row.get("metrics", [])}}
                f.write(json.dumps(record, default=str) + "\n")


def lm_eval_version() -> str:
    from engines.base import package_version

    return package_version("lm_eval")


METHODS = {"tasks": TasksMethod()}
