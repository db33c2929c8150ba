"""How job pages word a job: its title, its parameters, its timing and its log tail.

Pure functions over a Job row (or its fields), used by the template filters in
jobs/templatetags/job_format.py, so the wording is the same on the dashboard, the job list and
the job page, and is tested without a browser.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

# What each method does, in the words of the pages (the method keys are jobs.methods' names).
METHOD_TITLES = {
    "gguf": "Quantize to GGUF",
    "gptq": "Quantize with GPTQ",
    "awq": "Quantize with AWQ",
    "bnb-nf4": "Quantize with bitsandbytes 4-bit",
    "bnb-int8": "Quantize with bitsandbytes LLM.int8",
    "evaluate": "Evaluate",
    "tasks": "Score tasks (lm-eval accuracy)",
    "imatrix": "Make an importance matrix",
    "hf-from-gguf": "Convert GGUF → HF safetensors",
    "import-upload": "Import an upload",
    "import-hub": "Import from the Hugging Face Hub",
    "import-path": "Import from a server path",
}
# Parameters that are bookkeeping, not choices the user made.
HIDDEN_PARAMS = {"warning", "staged", "task_specs"}  # task_specs: what "tasks" resolved to
PARAM_NAMES = {"types": "types", "dtype": "dtype", "bits": "bits", "group_size": "group size",
               "desc_act": "activation order", "quant_type": "4-bit type", "double_quant": "double quant",
               "llm_int8_threshold": "outlier threshold", "compute_dtype": "compute dtype",
               "seq_len": "sequence length", "repo_id": "repository"}

# Library warnings as Python's warnings module prints them ("file.py:12: FutureWarning: ..." then
# the source line "  warnings.warn(...)"), and logging-style "WARNING ..." lines from transformers,
# torch and friends: kept, but folded away under the lines that say what the job did.
_WARNING_LINE = re.compile(
    r"(?:\b[A-Z][A-Za-z]*Warning\b:?|^\s*warnings\.warn\(|^\s*warn\(|^W\d{4} |^\s*WARNING\b|^\s*\[?warn(?:ing)?\]?[: ])",
)


def job_title(job) -> str:
    """'Convert GGUF → HF safetensors', 'Quantize to GGUF', ... (the method key if unknown)."""
    return METHOD_TITLES.get(job.method, job.method)


def param_value_text(value: Any) -> str:
    """A parameter's value as a person writes it: lists joined, booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(param_value_text(v) for v in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{k} {param_value_text(v)}" for k, v in value.items()) or "—"
    return str(value)


def params_rows(params: dict | None) -> list[tuple[str, str]]:
    """[(name, value text)] for the parameters a user chose, in their stored order."""
    return [(PARAM_NAMES.get(k, k.replace("_", " ")), param_value_text(v))
            for k, v in (params or {}).items() if k not in HIDDEN_PARAMS]


def params_text(params: dict | None) -> str:
    """'types Q6_K, Q3_K_M · dtype float16' for a table cell."""
    return " · ".join(f"{name} {value}" for name, value in params_rows(params))


def duration_text(seconds: float | None) -> str:
    """45 → '45 s'; 65 → '1 min 5 s'; 7380 → '2 h 3 min'."""
    if seconds is None:
        return "—"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def timing_text(*, status: str, eta_seconds: float | None, started_at: datetime | None,
                finished_at: datetime | None, now: datetime) -> str:
    """What the page says about time: the ETA only when the runner measured one from progress
    that moved (jobs.runner.Watch.eta), otherwise the time the job has been running; a finished
    job's duration; nothing for a job that never started."""
    if status == "running":
        if eta_seconds:
            return f"about {duration_text(eta_seconds)} left"
        if started_at:
            return f"running for {duration_text((now - started_at).total_seconds())}"
        return "running"
    if status in ("succeeded", "failed", "cancelled") and started_at and finished_at:
        return f"took {duration_text((finished_at - started_at).total_seconds())}"
    return ""


def job_timing(job, now: datetime) -> str:
    return timing_text(status=job.status, eta_seconds=job.eta_seconds, started_at=job.started_at,
                       finished_at=job.finished_at, now=now)


_CONTINUATION = re.compile(r"^\s*(?:warnings\.)?warn\(")


def warning_count(lines: list[str]) -> int:
    """Warnings, not lines: Python prints each as its message line plus the `warnings.warn(` line."""
    return sum(1 for line in lines if not _CONTINUATION.match(line))


def is_library_warning(line: str) -> bool:
    return bool(_WARNING_LINE.search(line))


def split_log(tail: str) -> tuple[list[str], list[str]]:
    """(the job's own lines, library warnings) from a log tail, each in order."""
    own, warnings = [], []
    for line in (tail or "").splitlines():
        (warnings if is_library_warning(line) else own).append(line)
    return own, warnings


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _job_ref(job, team_id: int) -> str:
    """'#5 Quantize to GGUF' for a job of the viewer's team; another team's says only that."""
    return f"#{job.pk} {job_title(job)}" if job.team_id == team_id else "a job of another team"


def queue_wait_text(wait, *, team_id: int) -> str:
    """Why a queued job waits (wait: jobs.selectors.QueueWait): its place in its queue, what runs
    ahead of it and on which node, or that no worker of its queue is up."""
    place = "next" if wait.position == 1 else f"{_ordinal(wait.position)}"
    parts = [f"{place} in queue {wait.queue}"]
    if wait.ahead:
        shown = ", ".join(_job_ref(j, team_id) for j in wait.ahead[:3])
        more = f" and {len(wait.ahead) - 3} more" if len(wait.ahead) > 3 else ""
        parts.append(f"waiting behind {shown}{more}")
    if wait.running:
        parts.append("running now: " + ", ".join(
            f"{_job_ref(j, team_id)} on {j.worker} ({j.progress:.0f} %)" for j in wait.running[:3]))
    up = [w.hostname for w in wait.workers if w.is_alive]
    if not wait.workers:
        parts.append(f"no worker consumes queue {wait.queue}")
    elif not up:
        parts.append(f"no worker of this queue is up ({', '.join(w.hostname for w in wait.workers)} "
                     "silent): it starts when one comes back")
    elif not wait.running and not wait.ahead:
        parts.append(f"{', '.join(up)} up with nothing running: it is about to start")
    return "; ".join(parts)


def cancel_confirm_text(job, now: datetime) -> str:
    """What the Cancel button of a running job asks first: the progress that would be lost (a
    queued job is cancelled without asking: nothing of it has run)."""
    if job.status != "running":
        return ""
    stage = f" ({job.stage})" if job.stage else ""
    ran = f", after {duration_text((now - job.started_at).total_seconds())}" if job.started_at else ""
    return f"Cancel job #{job.pk}? It is {job.progress:.0f} % done{stage}{ran}: that work is lost."
