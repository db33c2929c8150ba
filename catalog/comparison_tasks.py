"""Task accuracy on the comparison page: the "tasks" evaluations (lm-evaluation-harness scoring a
task of the team's catalog) as columns, one per (task, protocol).

Two task results compare only when they were measured the same way: the same task file, few-shot
count, document limit, seed, lm-eval version and prompt template. The tasks job folds those into
Evaluation.method["protocol"] (a sha256), so a column is one task under one protocol, and a
variant measured under another protocol of the same task gets no number in it: its cell names
what differs instead ("other protocol: 5-shot, not 0-shot"), so an incomparable number never
stands beside the others. Its own number is in its own protocol's column.

Each cell shows the task's primary metric as lm-eval reports it (acc for multiple_choice,
exact_match for generate_until) ± lm-eval's standard error, and the other metrics, the number of
documents scored and the subtasks in its details.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from catalog.models import Evaluation

TASK_KIND = "tasks"
PRIMARY = {"multiple_choice": "acc", "generate_until": "exact_match"}
KEY_PREFIX = "task_"
PROTOCOL_CHARS = 12  # of the protocol's sha256 in a column's key: one task's protocols never collide


@dataclass(frozen=True)
class TaskColumn:
    """A comparison column for one task under one protocol; shaped like comparison.Column."""

    key: str
    task: str
    protocol: str
    metric: str
    method: dict  # the protocol's conditions, as the first evaluation under it recorded them
    kind: str = TASK_KIND
    fmt: str = "{:.4f}"
    numeric: bool = True
    shown: bool = True

    @property
    def title(self) -> str:
        return f"{self.task} {self.metric} ±"

    @property
    def short_protocol(self) -> str:
        """What sets this column apart from another of the same task, in a few words."""
        m = self.method
        limit = f"{m['limit']} docs" if m.get("limit") else "all docs"
        return f"{m.get('num_fewshot', '?')}-shot · {limit} · protocol {self.protocol[:6]}"

    @property
    def about(self) -> str:
        return (f"{self.metric} on the task {self.task} (lm-evaluation-harness) ± its standard error; "
                f"only results under this protocol: {protocol_text(self.method)}")


def protocol_text(method: dict) -> str:
    """How a task was scored, in words, from its evaluation's method."""
    template = method.get("prompt_template") or {}
    limit = f"the first {method['limit']} documents" if method.get("limit") else "every document"
    source = (f"catalog task file {method['task_sha256'][:12]}" if method.get("task_sha256")
              else f"lm-eval's built-in {method.get('task', '?')}")
    return (f"{method.get('num_fewshot', '?')}-shot, {limit}, seed {method.get('seed', '?')}, "
            f"lm-eval {method.get('lm_eval_version', '?')}, {method.get('output_type', '?')}, "
            f"prompt {json.dumps(template.get('doc_to_text', '?'))}, {source}, "
            f"protocol {str(method.get('protocol', '?'))[:12]}")


def protocol_differences(mine: dict, theirs: dict) -> str:
    """What in `mine` (a variant's method) differs from `theirs` (a column's), in words."""
    out = []
    if (mine.get("task_sha256") or None) != (theirs.get("task_sha256") or None):
        out.append("another version of the task file")
    if mine.get("num_fewshot") != theirs.get("num_fewshot"):
        out.append(f"{mine.get('num_fewshot')}-shot, not {theirs.get('num_fewshot')}-shot")
    if mine.get("limit") != theirs.get("limit"):
        def docs(m):
            return f"the first {m['limit']} documents" if m.get("limit") else "every document"
        out.append(f"{docs(mine)}, not {docs(theirs)}")
    if mine.get("seed") != theirs.get("seed"):
        out.append(f"seed {mine.get('seed')}, not {theirs.get('seed')}")
    if mine.get("lm_eval_version") != theirs.get("lm_eval_version"):
        out.append(f"lm-eval {mine.get('lm_eval_version')}, not {theirs.get('lm_eval_version')}")
    a, b = mine.get("prompt_template") or {}, theirs.get("prompt_template") or {}
    if parts := sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)):
        out.append(f"another prompt template ({', '.join(parts)})")
    return "; ".join(out) or f"protocol {str(mine.get('protocol'))[:12]}"


def primary_metric(method: dict, results: dict) -> str:
    """acc for multiple choice, exact_match for generation; a YAML task scoring neither is shown
    by the first metric it reports (the header names which)."""
    wanted = PRIMARY.get(method.get("output_type", ""))
    if wanted in results or not results:
        return wanted or "acc"
    return sorted(results)[0]


def latest_task_evaluations(variants) -> dict[int, dict[tuple[str, str], Evaluation]]:
    """{variant id: {(task, protocol): its newest "tasks" Evaluation}}, in one query."""
    out: dict[int, dict[tuple[str, str], Evaluation]] = {}
    found = Evaluation.objects.filter(variant__in=list(variants), kind=TASK_KIND).order_by("created_at", "pk")
    for e in found:
        task, protocol = (e.metrics or {}).get("task") or (e.method or {}).get("task"), (e.method or {}).get("protocol")
        if task and protocol:  # a record without its protocol can't be set beside any other
            out.setdefault(e.variant_id, {})[(task, protocol)] = e
    return out


def task_columns(per_row: list[dict[tuple[str, str], Evaluation]]) -> list[TaskColumn]:
    """One column per (task, protocol) among the rows' evaluations, by task name, then the order
    the protocols were first measured in."""
    first: dict[tuple[str, str], Evaluation] = {}
    for tasks in per_row:
        for pair, e in tasks.items():
            if pair not in first or (e.created_at, e.pk) < (first[pair].created_at, first[pair].pk):
                first[pair] = e
    columns = []
    for (task, protocol), e in sorted(first.items(), key=lambda kv: (kv[0][0], kv[1].created_at, kv[1].pk)):
        results = (e.metrics or {}).get("results") or {}
        columns.append(TaskColumn(key=f"{KEY_PREFIX}{protocol[:PROTOCOL_CHARS]}", task=task, protocol=protocol,
                                  metric=primary_metric(e.method or {}, results), method=dict(e.method or {})))
    return columns


def result(evaluation: Evaluation, metric: str) -> tuple[float | None, float | None]:
    """(value, standard error) of `metric` in a tasks evaluation; the error None when lm-eval
    gave none (it prints N/A for a single document)."""
    entry = ((evaluation.metrics or {}).get("results") or {}).get(metric) or {}
    value, stderr = entry.get("value"), entry.get("stderr")
    return value, stderr if isinstance(stderr, (int, float)) else None


def other_protocol(tasks: dict[tuple[str, str], Evaluation], column: TaskColumn) -> str:
    """Why a variant has no number in `column` though it was scored on the task: "" when it
    wasn't, else what differs in its newest such evaluation's protocol."""
    others = [e for (task, protocol), e in tasks.items() if task == column.task and protocol != column.protocol]
    if not others:
        return ""
    newest = max(others, key=lambda e: (e.created_at, e.pk))
    return protocol_differences(newest.method or {}, column.method)


def details(evaluation: Evaluation, metric: str) -> list[str]:
    """The cell's details: "n=<documents scored>", the other metrics, the subtasks' primary metric."""
    metrics = evaluation.metrics or {}
    lines = [f"n={metrics['samples']}"] if metrics.get("samples") is not None else []

    def line(name: str, entry: dict) -> str:
        value, stderr = entry.get("value"), entry.get("stderr")
        text = "—" if value is None else f"{value:.4f}"
        return f"{name} {text}" + (f" ± {stderr:.4f}" if isinstance(stderr, (int, float)) else "")

    lines += [line(name, entry) for name, entry in sorted((metrics.get("results") or {}).items())
              if name != metric and isinstance(entry, dict)]
    for sub, results in sorted((metrics.get("subtasks") or {}).items()):
        if isinstance(results.get(metric), dict):
            lines.append(line(f"{sub}: {metric}", results[metric]))
    return lines
