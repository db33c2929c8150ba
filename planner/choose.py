"""Choose a quant: which variant of a model to run on a given machine at a given context.

Quality comes from the variants' KL evaluations exactly as the comparison page reads them
(catalog.comparison.comparison_rows: the latest evaluation of each kind, llama.cpp's statistics
with their uncertainties); size is the variant's files on disk, or the planner's memory at the
context; whether and how it runs is the planner's fit (planner.estimator: estimate() rows at the
context, the fit solver's placement, its llama-server command; vLLM's for non-GGUF variants on a
GPU). Nothing here re-derives a memory figure, a speed or a command.

A variant's quality is only ever a measurement or exact:
- measured: its KL evaluation against the reference most of the model's KL evaluations used, on
  the same text and context (numbers against another reference or text don't compare);
- reference: the variant the others were measured against; KL(reference ‖ itself) is 0, its PPL
  ratio 1 and its "same top" 100 % by definition;
- otherwise it is shown with why (KL skipped, unstable, no KL evaluation, not comparable) and is
  never placed on the chart or the frontier.
A KL evaluation is unstable when it says so (`stable` false, as the speed evaluation records
runs that never settled) or when llama.cpp's uncertainty of the mean KLD is as large as the
mean itself: then one standard error reaches KL 0 and the measurement can't rank the variant.

The three picks, for the hardware and context asked:
- best quality: the lowest distance from the reference among the variants that fit fully on
  the device(s) with at least `headroom` bytes of the planner's capacity left;
- smallest: the smallest on disk within the tolerance that runs there (fully or with offload);
- fastest: the highest planner decode tok/s within the tolerance that runs there.
Ties go to the better quality, then the smaller file.

Task accuracy (a "tasks" evaluation: lm-evaluation-harness on a task of the team's catalog) is a
quality axis too, one per task and protocol the comparison page has a column for: higher is
better, there is no reference (every variant is scored, the base included), a variant scored
under another protocol of the task is "not comparable" (its number isn't set beside these), and
"within the tolerance" means an accuracy at most `tolerance` below the best measured one. Its
uncertainty is lm-eval's standard error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import reverse

from planner.choose_plans import GiB, Plans, gib, sweep
from catalog import comparison_tasks
from catalog.comparison import Row, comparison_rows
from catalog.models import Model, Variant
from planner.estimator import Architecture, Hardware, Workload


class ChooseError(Exception):
    """A Choose input was refused; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class Metric:
    key: str            # the comparison column it reads
    title: str
    axis: str           # what the chart plots: the distance from the reference, 0 = the reference
    tolerance: float    # the default tolerance, in the metric's own terms
    at_least: bool = False  # the tolerance is a minimum ("same top ≥ 0.9"), else a maximum
    # A task's accuracy: higher is better, no reference, the tolerance a drop from the best measured.
    task: comparison_tasks.TaskColumn | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.task is not None

    def distance(self, value: float) -> float:
        """What the frontier ranks, smaller is better: 1 − accuracy (the error rate) for a task."""
        if self.key == "ratio":
            return abs(value - 1)
        return 1 - value if self.at_least or self.higher_is_better else value

    def reference_value(self) -> float:
        return 1.0 if self.key in ("ratio", "same_top") else 0.0

    def tolerance_text(self, tolerance: float, best: float | None = None) -> str:
        if self.higher_is_better:
            floor = f" ({best - tolerance:.4g})" if best is not None else ""
            return f"{self.title} ≥ best − {tolerance:g}{floor}"
        if self.key == "ratio":
            return f"|PPL ratio − 1| ≤ {tolerance:g}"
        return f"{self.title} {'≥' if self.at_least else '≤'} {tolerance:g}"


METRICS = {m.key: m for m in (
    Metric("kl", "mean KLD", "mean KLD", 0.05),
    Metric("kl_p99_9", "99.9 % KLD", "99.9 % KLD", 1.0),
    Metric("ratio", "PPL ratio", "|PPL(Q)/PPL(base) − 1|", 0.02),
    Metric("same_top", "same top", "1 − same top", 0.9, at_least=True),
)}
TASK_TOLERANCE = 0.02  # two points of accuracy below the best measured, by default
TASK_KEY = re.compile(rf"{comparison_tasks.KEY_PREFIX}[0-9a-f]{{{comparison_tasks.PROTOCOL_CHARS}}}")


def metric_refused(metric: str) -> str:
    """Why `metric` can't be any model's metric ("" when it could be): refused before the
    planner runs, as the API's schema used to refuse it."""
    if metric in METRICS or TASK_KEY.fullmatch(metric):
        return ""
    return (f"must be one of {', '.join(METRICS)}, or task_<the first {comparison_tasks.PROTOCOL_CHARS} hex "
            "digits of a task's protocol> for a task the model was scored on")


def task_metric(column: comparison_tasks.TaskColumn) -> Metric:
    return Metric(column.key, f"{column.task} {column.metric}", f"{column.task} {column.metric}", TASK_TOLERANCE,
                  task=column)


def task_metrics(rows: list[Row]) -> list[Metric]:
    """A quality axis for each (task, protocol) the model's variants were scored on."""
    return [task_metric(c) for c in comparison_tasks.task_columns([r.tasks for r in rows])]


def metrics_for(model: Model) -> list[Metric]:
    """Every metric `model` can be chosen by: the KL ones and one per task it was scored on."""
    return [*METRICS.values(), *task_metrics(comparison_rows(model, "size"))]


AXES = {"disk": "size on disk", "memory": "planned memory at the context"}
FIT_WORDS = {"device": "fits on the device", "offload": "fits with offload", "none": "does not fit",
             "refused": "not planned"}
@dataclass
class Candidate:
    variant: Variant
    disk_bytes: int
    status: str = "not evaluated"  # measured | reference | skipped | unstable | not comparable | not evaluated
    status_note: str = "no KL evaluation yet"
    value: float | None = None     # the metric as llama.cpp prints it
    unc: float | None = None
    distance: float | None = None  # what the chart and the frontier rank (0: the reference)
    fit: str = "refused"           # device | offload | none | refused
    fit_note: str = ""
    memory_bytes: int | None = None   # the planner's total at the context
    headroom_bytes: int | None = None  # the planner's capacity minus that total (fits fully only)
    tokens_per_s: float | None = None  # the planner's decode speed on this hardware
    speed_note: str = ""
    command: str = ""
    command_note: str = ""
    measured_tps: float | None = None
    measured_tps_flag: str = ""
    votes: dict | None = None  # its blind-vote rating (catalog.votes), None without votes
    frontier: bool = False
    dominated_by: int | None = None

    @property
    def usable(self) -> bool:
        return self.status in ("measured", "reference")

    # The quality cell's words (templates/catalog/partials/quality_value.html, as on the comparison page).
    @property
    def value_text(self) -> str:
        return "—" if self.value is None else f"{self.value:g}"

    @property
    def unc_text(self) -> str:
        return "" if self.unc is None else f"{self.unc:g}"

    @property
    def quality_note(self) -> str:
        return "" if self.usable else self.status_note

    @property
    def mark(self) -> str:
        return "(reference)" if self.status == "reference" else ""

    @property
    def fit_words(self) -> str:
        return FIT_WORDS[self.fit]

    @property
    def runs(self) -> bool:
        return self.fit in ("device", "offload")

    @property
    def downloads(self) -> list[dict]:
        return [{"path": f.path, "bytes": f.bytes, "url": reverse("catalog:download", args=[f.pk])}
                for f in self.variant.files.all()]

    @property
    def chat_url(self) -> str:
        return f"{reverse('runtime:playground')}?variant={self.variant.pk}"

    def x(self, axis: str) -> int | None:
        return (self.disk_bytes or None) if axis == "disk" else self.memory_bytes


@dataclass
class Pick:
    kind: str            # best | smallest | fastest
    title: str
    candidate: Candidate | None
    reason: str


@dataclass
class Choice:
    model: Model
    hardware: Hardware | None
    context: int
    metric: Metric
    axis: str
    headroom_bytes: int
    tolerance: float
    candidates: list[Candidate]
    picks: list[Pick]
    reference: Variant | None
    planner_refused: str = ""
    sweep: dict | None = None     # what a sweep would measure, when nothing is measured yet
    metrics: list[Metric] | None = None  # every metric this model can be chosen by (its tasks' too)

    @property
    def best_value(self) -> float | None:
        """A task metric's best measured accuracy, which its tolerance counts down from."""
        values = [c.value for c in self.candidates if c.usable and c.value is not None]
        return max(values) if values and self.metric.higher_is_better else None

    @property
    def tolerance_text(self) -> str:
        return self.metric.tolerance_text(self.tolerance, self.best_value)


def clean_inputs(metric: str, axis: str, headroom_gb: float | None,
                 tolerance: float | None, tasks: list[Metric] = ()) -> tuple[Metric, str, int, float]:
    known = {**METRICS, **{m.key: m for m in tasks}}
    if metric not in known:
        scored = "".join(f", {m.key} ({m.title}, {m.task.short_protocol})" for m in tasks)
        raise ChooseError("metric", f"must be one of {', '.join(METRICS)}{scored or ' (no task scored yet)'}")
    if axis not in AXES:
        raise ChooseError("x", f"must be one of {', '.join(AXES)}")
    headroom_gb = 0.0 if headroom_gb is None else headroom_gb
    if not 0 <= headroom_gb <= 65536:
        raise ChooseError("headroom_gb", "must be from 0 to 65536 (GiB to keep free on the device)")
    m = known[metric]
    tolerance = m.tolerance if tolerance is None else tolerance
    top = 1 if m.at_least or m.higher_is_better else 1e6
    if not 0 <= tolerance <= top:
        raise ChooseError("tolerance", f"must be from 0 to {top:g}")
    return m, axis, int(headroom_gb * GiB), tolerance


def choose(*, model: Model, arch: Architecture | None, hardware: Hardware | None, workload: Workload,
           metric: str = "kl", axis: str = "disk", headroom_gb: float | None = 0.0,
           tolerance: float | None = None, planner_refused: str = "") -> Choice:
    """The Choose view's data for `model` on `hardware` at `workload.context` (a llama.cpp
    workload; non-GGUF variants are planned under transformers with the same context). `arch` and
    `hardware` None: the planner can't plan the model (`planner_refused` says why)."""
    rows = comparison_rows(model, "size")
    tasks = task_metrics(rows)
    m, axis, headroom, tolerance = clean_inputs(metric, axis, headroom_gb, tolerance, tasks)
    common = _common_key(rows)
    candidates = [_task_candidate(r, m) if m.higher_is_better else _candidate(r, m, common) for r in rows]
    reference = next((c.variant for c in candidates if c.status == "reference"), None)
    if arch is not None and hardware is not None:
        plans = Plans(arch, hardware, workload)
        for c in candidates:
            plans.place(c)
    else:
        for c in candidates:
            c.fit_note = planner_refused or "the planner can't plan this model"
    _frontier(candidates, axis)
    choice = Choice(model=model, hardware=hardware, context=workload.context, metric=m, axis=axis,
                    headroom_bytes=headroom, tolerance=tolerance, candidates=candidates, picks=[],
                    reference=reference, planner_refused=planner_refused,
                    metrics=[*METRICS.values(), *tasks])
    choice.picks = _picks(choice)
    if not any(c.status == "measured" for c in candidates):
        choice.sweep = sweep(arch, candidates, reference)
    return choice


# ---- quality ------------------------------------------------------------------------------------
def _kl_key(row: Row) -> tuple | None:
    """What makes two KL evaluations comparable: the same reference, text and context."""
    method = row.methods.get("kl")
    if not method or row.kl_skipped:
        return None
    dataset = method.get("dataset") or {}
    return (method.get("reference_variant"), dataset.get("sha256") or dataset.get("name"),
            method.get("context"))


def _common_key(rows: list[Row]) -> tuple | None:
    """The (reference, text, context) most of the model's KL evaluations share, or None."""
    keys = [k for r in rows if (k := _kl_key(r)) and k[0] is not None]
    if not keys:
        return None
    return max(set(keys), key=lambda k: (keys.count(k), -k[0]))


def _candidate(row: Row, m: Metric, common: tuple | None) -> Candidate:
    c = Candidate(variant=row.variant, disk_bytes=row.size_bytes or 0,
                  measured_tps=row.values.get("tps"), measured_tps_flag=row.speed_flag, votes=row.votes)
    kl = row.kl_metrics
    if common is not None and row.variant.pk == common[0]:
        c.status, c.value, c.distance = "reference", m.reference_value(), 0.0
        c.status_note = "the reference of the KL evaluations: KL 0, PPL ratio 1, same top 100 % by definition"
        return c
    if row.kl_skipped:
        c.status, c.status_note = "skipped", f"KL skipped: {row.kl_skipped}"
        return c
    if not kl:
        return c
    if kl.get("stable") is False or (kl.get("kl_mean_unc") is not None and kl.get("kl_mean")
                                     and kl["kl_mean_unc"] >= kl["kl_mean"]):
        c.status = "unstable"
        c.status_note = ("unstable: the KL evaluation never settled" if kl.get("stable") is False else
                         f"unstable: mean KLD {kl['kl_mean']:g} ± {kl['kl_mean_unc']:g}, the uncertainty as "
                         "large as the value (too few tokens to rank it)")
        return c
    key = _kl_key(row)
    if key != common:
        c.status = "not comparable"
        c.status_note = ("its KL evaluation recorded no reference" if key is None else
                         f"measured against #{key[0]}, not the reference #{common[0]}" if key[0] != common[0]
                         else "measured on another text or context than the other variants")
        return c
    value = row.values.get(m.key)
    if value is None:
        c.status_note = f"its KL evaluation has no {m.title} (an older evaluation)"
        return c
    c.status, c.status_note = "measured", ""
    c.value, c.unc, c.distance = value, row.uncs.get(m.key), m.distance(value)
    return c


def _task_candidate(row: Row, m: Metric) -> Candidate:
    """A variant's accuracy on the metric's task, only when scored under the metric's protocol."""
    c = Candidate(variant=row.variant, disk_bytes=row.size_bytes or 0, status_note=f"no {m.task.task} score yet",
                  measured_tps=row.values.get("tps"), measured_tps_flag=row.speed_flag, votes=row.votes)
    value = row.values.get(m.key)
    if value is None:
        if differs := comparison_tasks.other_protocol(row.tasks, m.task):
            c.status, c.status_note = "not comparable", f"other protocol: {differs}"
        return c
    c.status, c.status_note = "measured", ""
    c.value, c.unc, c.distance = value, row.uncs.get(m.key), m.distance(value)
    return c


# ---- the frontier and the picks -----------------------------------------------------------------
def _frontier(candidates: list[Candidate], axis: str) -> None:
    """Pareto frontier over (x, distance), both smaller is better: a measured variant is on it
    unless another one is no larger and no worse, and strictly one of the two."""
    placed = [c for c in candidates if c.usable and c.x(axis) is not None]
    for c in placed:
        better = [o for o in placed if o is not c and o.x(axis) <= c.x(axis) and o.distance <= c.distance
                  and (o.x(axis) < c.x(axis) or o.distance < c.distance)]
        c.frontier = not better
        c.dominated_by = min(better, key=lambda o: (o.distance, o.x(axis))).variant.pk if better else None


def _quality(choice: Choice, c: Candidate) -> str:
    if c.status == "reference":
        return f"the reference ({choice.metric.title} {c.value:g} by definition)"
    unc = f" ± {c.unc:g}" if c.unc is not None else ""
    return f"{choice.metric.title} {c.value:g}{unc}"


def _where(choice: Choice) -> str:
    hw = choice.hardware
    return f"{hw.name}{f' × {hw.device_count}' if hw.device_count > 1 else ''} at context {choice.context:,}"


def _runs(c: Candidate) -> str:
    return "fits fully on the device" if c.fit == "device" else "runs with offload to system RAM"


def _picks(choice: Choice) -> list[Pick]:
    m, cands = choice.metric, choice.candidates
    if m.higher_is_better:  # at most `tolerance` below the best accuracy measured
        best_value = choice.best_value
        limit = m.distance(best_value - choice.tolerance) if best_value is not None else -1.0
    else:
        limit = 1 - choice.tolerance if m.at_least else choice.tolerance
    tol = choice.tolerance_text
    titles = {"best": "Best quality that fits", "smallest": f"Smallest within {tol}",
              "fastest": f"Fastest within {tol}"}
    if choice.hardware is None:
        why = f"no fit: {choice.planner_refused or 'the planner cannot plan this model'}"
        return [Pick(k, t, None, why) for k, t in titles.items()]
    where = _where(choice)
    measured = [c for c in cands if c.usable]
    if not measured:
        why = f"no variant has a usable {m.title} yet: see what a sweep would measure"
        return [Pick(k, t, None, why) for k, t in titles.items()]
    picks = []
    full = [c for c in measured if c.fit == "device" and (c.headroom_bytes or 0) >= choice.headroom_bytes]
    best = min(full, key=lambda c: (c.distance, c.disk_bytes), default=None)
    room = f" with ≥ {gib(choice.headroom_bytes)} left" if choice.headroom_bytes else ""
    most = "highest" if m.higher_is_better else "lowest"
    picks.append(Pick("best", titles["best"], best, (
        f"{most} {m.axis} of the variants that fit fully on {where}{room}: {_quality(choice, best)}, "
        f"{gib(best.memory_bytes)} planned, {gib(best.headroom_bytes)} left") if best else
        f"no variant with a usable {m.title} fits fully on {where}{room}"))
    within = [c for c in measured if c.distance <= limit + 1e-12 and c.runs]
    smallest = min((c for c in within if c.disk_bytes), key=lambda c: (c.disk_bytes, c.distance), default=None)
    picks.append(Pick("smallest", titles["smallest"], smallest, (
        f"smallest on disk ({gib(smallest.disk_bytes)}) of the variants within {tol} that run on {where}: "
        f"{_quality(choice, smallest)}; {_runs(smallest)}") if smallest else
        f"no variant within {tol} runs on {where}"))
    timed = [c for c in within if c.tokens_per_s is not None]
    fastest = max(timed, key=lambda c: (c.tokens_per_s, -c.distance, -c.disk_bytes), default=None)
    if fastest:
        why = (f"the planner's fastest decode of the variants within {tol} on {where}: "
               f"{fastest.tokens_per_s:g} tok/s, {_quality(choice, fastest)}; {_runs(fastest)}")
    elif within:
        note = next((c.speed_note for c in within if c.speed_note), "")
        why = f"the planner gives no decode speed for these variants on {where}" + (f": {note}" if note else "")
    else:
        why = f"no variant within {tol} runs on {where}"
    picks.append(Pick("fastest", titles["fastest"], fastest, why))
    return picks


def choice_json(choice: Choice) -> dict:
    """The API's and the CLI's answer (the page renders the same Choice)."""
    def candidate(c: Candidate) -> dict:
        return {"variant": c.variant.pk, "label": c.variant.label, "disk_bytes": c.disk_bytes,
                "memory_bytes": c.memory_bytes, "status": c.status, "status_note": c.status_note,
                "value": c.value, "uncertainty": c.unc, "distance": c.distance, "frontier": c.frontier,
                "dominated_by": c.dominated_by, "fit": c.fit, "fit_note": c.fit_note,
                "headroom_bytes": c.headroom_bytes, "tokens_per_s": c.tokens_per_s, "speed_note": c.speed_note,
                "measured_tokens_per_s": c.measured_tps, "measured_speed_flag": c.measured_tps_flag,
                "votes": c.votes,
                "command": c.command, "command_note": c.command_note, "chat": c.chat_url,
                "downloads": c.downloads}

    hw = choice.hardware
    return {
        "model": choice.model.pk, "hardware": hw.to_dict() if hw else None, "context": choice.context,
        "metric": choice.metric.key, "axis": choice.metric.axis, "x": choice.axis,
        "higher_is_better": choice.metric.higher_is_better,
        "metrics": [{"key": m.key, "title": m.title, "axis": m.axis, "higher_is_better": m.higher_is_better,
                     "protocol": m.task.protocol if m.task else None,
                     "about": m.task.about if m.task else ""} for m in choice.metrics or METRICS.values()],
        "headroom_bytes": choice.headroom_bytes, "tolerance": choice.tolerance,
        "tolerance_text": choice.tolerance_text,
        "reference": choice.reference.pk if choice.reference else None,
        "planner_refused": choice.planner_refused,
        "picks": [{"kind": p.kind, "title": p.title, "variant": p.candidate.variant.pk if p.candidate else None,
                   "reason": p.reason} for p in choice.picks],
        "candidates": [candidate(c) for c in choice.candidates],
        "sweep": choice.sweep,
    }
