"""The comparison page's data: one row per variant of a model with its latest measurements, a
server-side sort, and a size-vs-perplexity scatter laid out here so the template only draws it.

Δ perplexity is against the base (the lineage root with a perplexity), and only when both scored
the same token ids (Evaluation.method["tokens_sha256"]): numbers from different texts, contexts
or tokenizers are not comparable, and the row says so instead of printing a difference.

The KL columns are the statistics llama.cpp's `llama-perplexity --kl-divergence` prints
(tools/perplexity/perplexity.cpp, kl_divergence()), as the evaluate method stores them in the
"kl" Evaluation: fractions (Δp and "same top" are shown as percents, like llama.cpp does), each
with its uncertainty where llama.cpp gives one (`<key>_unc`). A key an older evaluation lacks
is shown as "—" and sorts last. Every cell's title says how it was measured (context, chunks,
dataset, reference), so the method is beside every number.

Speeds measured on a busy node (the speed evaluation's `quiet` false: other processes took cores
its threads needed) or that never settled (`stable` false) are shown greyed with the reason and
their runs' range, and sort after every speed measured quietly: llama.cpp's threads wait for
each other on an oversubscribed CPU, so such a figure says more about the other work than about
the variant. Peak memory is shown with what was measured ("served at context N") and the
planner's figure for exactly that, or why the two are not compared.

Task accuracy (lm-evaluation-harness "tasks" evaluations) adds a column per task and protocol
after these (catalog.comparison_tasks says when two results compare).
"""

from __future__ import annotations

import math
from itertools import zip_longest
from dataclasses import dataclass, field

from catalog import comparison_tasks as tasks
from catalog.evaluations import latest_evaluations
from catalog.models import Model, Variant
from catalog.votes import vote_columns_for_model

KL_TOOL = "llama.cpp perplexity --kl-divergence statistics"
# Every percentile the KL evaluation stores, in llama.cpp's printing order: (key, label).
KL_PERCENTILES = [("kl_max", "Maximum"), ("kl_p99_9", "99.9 %"), ("kl_p99", "99.0 %"),
                  ("kl_p95", "95.0 %"), ("kl_p90", "90.0 %"), ("kl_median", "Median"),
                  ("kl_p10", "10.0 %"), ("kl_p5", "5.0 %"), ("kl_p1", "1.0 %"),
                  ("kl_p0_1", "0.1 %"), ("kl_min", "Minimum")]
DP_PERCENTILES = [("dp_max", "Maximum"), ("dp_p99_9", "99.9 %"), ("dp_p99", "99.0 %"),
                  ("dp_p95", "95.0 %"), ("dp_p90", "90.0 %"), ("dp_p75", "75.0 %"),
                  ("dp_median", "Median"), ("dp_p25", "25.0 %"), ("dp_p10", "10.0 %"),
                  ("dp_p5", "5.0 %"), ("dp_p1", "1.0 %"), ("dp_p0_1", "0.1 %"),
                  ("dp_min", "Minimum")]


@dataclass(frozen=True)
class Column:
    """A table column: its sort key (also the cell's CSS class), header, what it is (the header's
    title), the Evaluation kind whose method the cells cite, and how to print its numbers."""

    key: str
    title: str
    about: str
    kind: str | None = None
    fmt: str = "{:.6f}"  # "pct" prints a fraction as a percent; "bytes" is left to the template
    numeric: bool = True
    # Shown until the user picks otherwise on the comparison page (its column chooser): the
    # columns most comparisons are read by, few enough to fit a laptop's width without scrolling
    # sideways. The others (the KL tail, the PPL ratio, RMS Δp) are one tick away.
    shown: bool = True


COLUMNS = [
    Column("id", "Variant", "the variant (#id, format, type); sorts by id", numeric=False),
    Column("size", "Size", "the variant's files together (binary units)", fmt="bytes"),
    Column("bpw", "Bits/weight", "bits per weight of the quantized tensors", fmt="{:g}"),
    Column("ppl", "PPL ±", "perplexity on the dataset ± its standard error (llama.cpp perplexity: "
           "the second half of each chunk scored)", "perplexity", "{:.4f}"),
    Column("ratio", "PPL(Q)/PPL(base) ±", "the variant's perplexity over its reference's, on "
           "the same tokens", "kl", shown=False),
    Column("delta", "Δ vs base", "perplexity minus the base's, only where both scored the same "
           "tokens", "perplexity", "{:.4f}"),
    Column("kl", "Mean KLD ±", "mean KL(reference ‖ variant) per scored token, natural log", "kl"),
    Column("kl_median", "Median KLD", "median of the per-token KL divergence", "kl", shown=False),
    Column("kl_p99", "99 % KLD", "99th percentile of the per-token KL divergence", "kl", shown=False),
    Column("kl_p99_9", "99.9 % KLD", "99.9th percentile of the per-token KL divergence", "kl",
           shown=False),
    Column("kl_max", "Max KLD", "largest per-token KL divergence", "kl", shown=False),
    Column("dp_rms", "RMS Δp", "root mean square of Δp, the change in the probability of the "
           "right token (variant minus reference), in %", "kl", "pct", shown=False),
    Column("same_top", "Same top %", "share of tokens where the variant and the reference "
           "agree on the most likely token", "kl", "pct"),
    Column("tps", "Tokens/s", "decode speed: greedy, batch 1, one token per step", "speed",
           "{:g}"),
    Column("votes", "Votes", "blind side-by-side votes: the Bradley–Terry rating (Elo scale) "
           "from the team's votes ± half its 95 % interval (n: the votes counted); \"not enough "
           "votes\" until the order around it is resolved (the leaderboard says how)",
           fmt="{:.0f}"),
    Column("mem", "Peak memory", "peak RSS of a fresh process serving the variant through the "
           "runtime's llama.cpp engine at the evaluation's context, one prompt filling it (the "
           "planner's estimate for the same beside it); older and non-GGUF records measured the "
           "evaluation process instead and are not set against the planner", "memory", "bytes"),
]
BY_KEY = {c.key: c for c in COLUMNS}
SORT_ALIASES = {"top1": "same_top"}  # the older column's sort key, in saved links
MODEL_PAGE_KEYS = ("ppl", "kl", "kl_p99_9", "dp_rms", "same_top", "tps")
# Column key -> (Evaluation kind, metric, its uncertainty). same_top falls back to the older
# top1_agreement: the same statistic (the share of tokens with the same most likely token).
SOURCES = {
    "ppl": ("perplexity", "perplexity", "perplexity_stderr"),
    "ratio": ("kl", "ppl_ratio", "ppl_ratio_unc"),
    "kl": ("kl", "kl_mean", "kl_mean_unc"),
    "kl_median": ("kl", "kl_median", None), "kl_p99": ("kl", "kl_p99", None),
    "kl_p99_9": ("kl", "kl_p99_9", None), "kl_max": ("kl", "kl_max", None),
    "dp_rms": ("kl", "dp_rms", "dp_rms_unc"),
    "same_top": ("kl", "same_top", "same_top_unc"),
    "tps": ("speed", "decode_tokens_per_s", None),
    "mem": ("memory", "peak_rss_bytes", None),
}

# Column key -> its family in the kl method's "statistics" ({family: how it was computed}).
STAT_FAMILY = {"ratio": "ppl", "kl": "kl", "kl_median": "kl", "kl_p99": "kl", "kl_p99_9": "kl",
               "kl_max": "kl", "dp_rms": "dp", "same_top": "same_top"}


@dataclass
class Cell:
    key: str
    value: float | int | None
    text: str = "—"
    unc: str = ""
    title: str = ""
    note: str = ""  # said instead of a number ("other tokens", "KL skipped: ...")
    flag: str = ""  # said beside a number shown greyed (a speed measured on a busy node)
    details: list[str] = field(default_factory=list)  # a task's other metrics, documents, subtasks

    @property
    def note_class(self) -> str:
        if self.key == "kl":
            return "kl-skipped"
        return "note other-protocol" if self.key.startswith(tasks.KEY_PREFIX) else "note"


@dataclass
class Row:
    variant: Variant
    size_bytes: int
    bits_per_weight: float | None
    values: dict = field(default_factory=dict)  # column key -> number (None: not measured)
    uncs: dict = field(default_factory=dict)  # column key -> its uncertainty
    methods: dict = field(default_factory=dict)  # Evaluation kind -> its method
    kl_metrics: dict = field(default_factory=dict)
    kl_skipped: str = ""
    tokens_sha256: str | None = None
    comparable: bool = True
    is_base: bool = False
    planner_memory_bytes: int | None = None
    memory_what: str = ""  # what the peak memory is of ("served at context 256")
    planner_not_compared: str = ""  # why the planner's figure is not beside it
    speed_flag: str = ""  # why the speed is not a quiet node's (then greyed, sorted last)
    votes: dict | None = None  # its blind-vote rating (catalog.votes), None without votes
    prefill_tokens_per_second: float | None = None
    tasks: dict = field(default_factory=dict)  # (task, protocol) -> its newest "tasks" Evaluation
    cells: list[Cell] = field(default_factory=list)

    @property
    def perplexity(self) -> float | None:
        return self.values.get("ppl")

    @property
    def delta_perplexity(self) -> float | None:
        return self.values.get("delta")

    @property
    def kl(self) -> float | None:
        return self.values.get("kl")

    @property
    def method(self) -> dict:
        """The perplexity evaluation's method."""
        return self.methods.get("perplexity", {})

    @property
    def percentiles(self) -> list[tuple[str, str, str, str]]:
        """Every KLD and Δp percentile side by side: (label, KLD, label, Δp), "" past the end
        of the shorter list (Δp has 75 % and 25 %, KLD doesn't)."""
        kl = [(label, _fmt(self.kl_metrics.get(k), "{:.6f}")) for k, label in KL_PERCENTILES]
        dp = [(label, _fmt(self.kl_metrics.get(k), "pct")) for k, label in DP_PERCENTILES]
        return [(*a, *b) for a, b in zip_longest(kl, dp, fillvalue=("", ""))]

    @property
    def kl_statistics(self) -> dict:
        """How each family of KL statistics was computed (the kl method's "statistics")."""
        return self.methods.get("kl", {}).get("statistics") or {}


def _fmt(value, fmt: str) -> str:
    if value is None:
        return "—"
    if fmt == "pct":
        return f"{100 * value:.3f} %"
    return str(value) if fmt == "bytes" else fmt.format(value)


def how_measured(kind: str, method: dict) -> str:
    """One line saying how an evaluation of `kind` was measured, from its stored method."""
    if not method:
        return ""
    dataset = (method.get("dataset") or {}).get("name") or "?"
    line = f"{method.get('context', '?')} tokens × {method.get('chunks', '?')} chunks of {dataset}"
    if kind == "kl":
        ref = method.get("reference_label") or "?"
        line += f", reference #{method.get('reference_variant', '?')} {ref}; {KL_TOOL}"
    elif kind == "speed":
        line = (f"{method.get('prompt_tokens', '?')} prompt + {method.get('gen_tokens', '?')} "
                f"generated tokens, {method.get('threads', '?')} threads")
    elif kind == "memory":
        line = method.get("what") or f"evaluation process at context {method.get('context', '?')}"
        if ran := method.get("conditions"):
            line += (f", {ran.get('threads', '?')} threads, KV {ran.get('type_k', '?')}, flash "
                     f"attention {'on' if ran.get('flash_attn') else 'off'}, ubatch "
                     f"{ran.get('n_ubatch', '?')}, {ran.get('cpu_isa', '?')}")
    return line


def speed_flag(metrics: dict, method: dict) -> str:
    """Why a speed evaluation's figure is not a quiet node's settled median ("" when it is): the
    node was busy (quiet false) and/or the runs never settled (stable false), with the decode
    runs' range."""
    if metrics.get("quiet") is not False and metrics.get("stable") is not False:
        return ""
    reasons = []
    if metrics.get("quiet") is False:
        ran = method.get("conditions") or {}
        others = ran.get("other_cpu_cores")
        reasons.append("measured while other work ran" + (
            f" (other processes used {others:g} of the node's {ran.get('cores', '?')} cores)"
            if others is not None else ""))
    if metrics.get("stable") is False:
        stopped = (method.get("repeats") or {}).get("stopped")
        reasons.append("the runs never settled" + (f" (stopped at {stopped})" if stopped else ""))
    low, high = metrics.get("decode_min"), metrics.get("decode_max")
    runs = f": decode runs {low:g}–{high:g} tok/s" if low is not None and high is not None else ""
    return "; ".join(reasons) + runs


def _row(variant: Variant, evaluations: dict) -> Row:
    row = Row(variant=variant, size_bytes=variant.total_bytes, bits_per_weight=variant.bits_per_weight)
    row.values.update(id=variant.pk, size=row.size_bytes, bpw=row.bits_per_weight)
    for kind, evaluation in evaluations.items():
        row.methods[kind] = evaluation.method or {}
    for key, (kind, metric, unc) in SOURCES.items():
        metrics = evaluations[kind].metrics if kind in evaluations else {}
        row.values[key] = metrics.get(metric)
        row.uncs[key] = metrics.get(unc) if unc else None
    # A variant measured before Evaluation rows existed (or imported with its numbers) keeps
    # its headline perplexity and speed (Variant.metric) where no evaluation says otherwise.
    for key, headline in (("ppl", variant.perplexity), ("tps", variant.tokens_per_second)):
        if row.values[key] is None:
            row.values[key] = headline
    if kl := evaluations.get("kl"):
        row.kl_metrics = kl.metrics
        row.kl_skipped = kl.metrics.get("skipped") or ""
        if row.values["same_top"] is None:
            row.values["same_top"] = kl.metrics.get("top1_agreement")
    if ppl := evaluations.get("perplexity"):
        row.tokens_sha256 = ppl.method.get("tokens_sha256")
    if speed := evaluations.get("speed"):
        row.prefill_tokens_per_second = speed.metrics.get("prefill_tokens_per_s")
        row.speed_flag = speed_flag(speed.metrics, speed.method or {})
    if memory := evaluations.get("memory"):
        _memory(row, memory.metrics, memory.method or {})
    return row


def _memory(row: Row, metrics: dict, method: dict) -> None:
    """The peak memory's label and the planner's figure, only where the plan is for the thing
    measured (an older record's plan was for a served process while it measured the evaluation
    process: not shown beside it)."""
    row.memory_what = method.get("what") or (
        f"evaluation process at context {method['context']}" if method.get("context") else "")
    planned = method.get("planner") or {}
    if metrics.get("planner_total_bytes") and method.get("what") and planned.get("what") == method["what"]:
        row.planner_memory_bytes = metrics["planner_total_bytes"]
    elif metrics.get("planner_not_compared"):
        row.planner_not_compared = metrics["planner_not_compared"]
    elif metrics.get("planner_total_bytes"):
        row.planner_not_compared = ("recorded before memory was measured as served: the figure is the "
                                    "evaluation process's, the plan a served process's")


def with_tasks(columns: list, task_cols: list) -> list:
    """The task columns right after the KL ones: quality read together, before speed and memory."""
    at = next((i for i, c in enumerate(columns) if c.key == "tps"), len(columns))
    return [*columns[:at], *task_cols, *columns[at:]]


def _task_cell(row: Row, column: tasks.TaskColumn) -> Cell:
    value, unc = row.values.get(column.key), row.uncs.get(column.key)
    cell = Cell(key=column.key, value=value, title=column.about, text=_fmt(value, column.fmt),
                unc=_fmt(unc, column.fmt) if unc is not None else "")
    if evaluation := row.tasks.get((column.task, column.protocol)):
        cell.details = tasks.details(evaluation, column.metric)
    elif differs := tasks.other_protocol(row.tasks, column):
        cell.note = f"other protocol: {differs}"
        cell.title += f" — this variant was scored under another protocol ({differs})"
    return cell


def _cells(row: Row, keys, columns: dict) -> list[Cell]:
    cells = []
    for key in keys:
        column = columns[key]
        if isinstance(column, tasks.TaskColumn):
            cells.append(_task_cell(row, column))
            continue
        value, unc = row.values.get(key), row.uncs.get(key)
        method = row.methods.get(column.kind, {}) if column.kind else {}
        title = column.about
        if line := how_measured(column.kind, method):
            title += f" — {line}"
        if how := (method.get("statistics") or {}).get(STAT_FAMILY.get(key)):
            title += f" ({how})"
        cell = Cell(key=key, value=value, title=title,
                    text=_fmt(value, column.fmt) if column.numeric else "",
                    unc=_fmt(unc, column.fmt) if unc is not None else "")
        if key == "delta" and value is not None and value > 0:
            cell.text = f"+{cell.text}"
        if key == "tps" and value is not None and row.speed_flag:
            cell.flag = row.speed_flag
            cell.title += f" — not ranked: {row.speed_flag}"
        if key == "votes" and row.votes:
            counted = row.votes["votes"]
            cell.title += f" — {counted} votes counted, {row.votes['both_bad']} both bad"
            if row.votes["rank"] is None:
                cell.note = f"not enough votes ({counted})"
                cell.title += f" ({row.votes['why_unranked']})"
            else:
                cell.unc += f" (n={counted})"
        if key == "mem" and row.planner_not_compared:
            cell.title += f" — planner not compared: {row.planner_not_compared}"
        if value is None and column.kind == "kl" and row.kl_skipped:
            cell.note = f"KL skipped: {row.kl_skipped}" if key == "kl" else "skipped"
        if key == "delta" and value is None and row.perplexity is not None and not row.comparable:
            cell.note = "other tokens"
        cells.append(cell)
    return cells


def comparison_rows(model: Model, sort: str = "size", keys=None, *,
                    artifacts: bool = False) -> list[Row]:
    """Every variant of `model` with its latest evaluations, sorted by `sort` (a column key,
    "-" in front for descending; unmeasured values always last). Each row's `cells` are the
    columns `keys` (default: every comparison column but the variant's own). Importance matrices
    are artifacts, not models: listed only with `artifacts` (the model page)."""
    variants = model.variants.prefetch_related("files").select_related("parent")
    if not artifacts:
        variants = variants.exclude(format=Variant.Format.IMATRIX)
    variants = list(variants)
    latest = latest_evaluations(variants)
    rows = [_row(v, latest.get(v.pk, {})) for v in variants]
    roots = [r for r in rows if r.variant.parent_id is None and r.perplexity is not None]
    base = roots[0] if roots else None
    for r in rows:
        r.values["delta"] = None
        if base is None or r.perplexity is None:
            continue
        r.is_base = r is base
        r.comparable = r.tokens_sha256 == base.tokens_sha256
        if r.comparable:
            r.values["delta"] = round(r.perplexity - base.perplexity, 4)
    by_task = tasks.latest_task_evaluations(variants)
    for r in rows:
        r.tasks = by_task.get(r.variant.pk, {})
    task_cols = tasks.task_columns([r.tasks for r in rows])
    for column in task_cols:
        for r in rows:
            found = r.tasks.get((column.task, column.protocol))
            r.values[column.key], r.uncs[column.key] = tasks.result(found, column.metric) if found else (None, None)
    columns = {**BY_KEY, **{c.key: c for c in task_cols}}
    votes = vote_columns_for_model(model) if keys is None or "votes" in keys else {}
    for r in rows:
        r.votes = votes.get(r.variant.pk)
        # Only a ranked rating sorts: an unresolved one is shown as "not enough votes".
        ranked = r.votes and r.votes["rank"] is not None
        r.values["votes"] = r.votes["rating"] if ranked else None
        r.uncs["votes"] = r.votes["half_width"] if ranked else None
    for r in rows:
        r.cells = _cells(r, keys or [c.key for c in with_tasks(COLUMNS, task_cols) if c.key != "id"], columns)
    name = SORT_ALIASES.get(sort.lstrip("-"), sort.lstrip("-"))
    name = name if name in columns else "size"
    reverse = sort.startswith("-")

    def rank(r: Row) -> int:  # 0 measured, 1 measured on a busy node (speed), 2 not measured
        if r.values.get(name) is None:
            return 2
        return 1 if name == "tps" and r.speed_flag else 0

    groups = [[r for r in rows if rank(r) == g] for g in range(3)]
    return [*sorted(groups[0], key=lambda r: r.values[name], reverse=reverse),
            *sorted(groups[1], key=lambda r: r.values[name], reverse=reverse), *groups[2]]


def comparison_json(model: Model, sort: str, rows: list[Row]) -> dict:
    """The comparison API's answer: the page's columns and cells as data."""
    headers = {h["key"]: h for h in sort_headers(sort, rows=rows)}
    task_cols = {c.key: c for c in tasks.task_columns([r.tasks for r in rows])}
    columns = []
    for key, h in headers.items():
        column = {k: h[k] for k in ("key", "title", "about", "numeric", "shown")}
        if t := task_cols.get(key):
            column.update(task=t.task, metric=t.metric, protocol=t.protocol, method=t.method)
        columns.append(column)
    return {"model": model.pk, "sort": sort, "methods": methods_used(rows), "columns": columns,
            "rows": [{"variant": r.variant.pk, "label": r.variant.label, "is_base": r.is_base,
                      "cells": [{"key": c.key, "value": c.value, "uncertainty": r.uncs.get(c.key), "text": c.text,
                                 "note": c.note, "flag": c.flag, "title": c.title, "details": c.details}
                                for c in r.cells]} for r in rows]}


def methods_used(rows: list[Row]) -> list[str]:
    """The distinct "how measured" lines of the rows' perplexity and KL evaluations, for the
    line under the table."""
    seen: dict[str, None] = {}
    for r in rows:
        for kind, label in (("perplexity", "PPL"), ("kl", "KL")):
            if line := how_measured(kind, r.methods.get(kind, {})):
                seen[f"{label}: {line}"] = None
    for c in tasks.task_columns([r.tasks for r in rows]):
        seen[f"Task {c.task} ({c.metric}, protocol {c.protocol[:6]}): {tasks.protocol_text(c.method)}"] = None
    return list(seen)


@dataclass
class Chart:
    width: int
    height: int
    points: list[dict]
    x_ticks: list[dict]
    y_ticks: list[dict]
    left: int
    bottom: int
    right: int
    top: int
    has_base: bool = False


# Point labels are 10px text; 6.5px a character is wider than the average glyph of the default
# sans-serif fonts (uppercase and digits included), so a label sized with it stays in the chart.
LABEL_FONT_PX = 10
LABEL_CHAR_PX = 6.5
LABEL_GAP = 7


def _ticks(low: float, high: float, n: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / (n - 1)
    return [low + i * step for i in range(n)]


def _point_label(text: str, x: float, y: float, width: int) -> dict:
    """Where a point's label goes so it is never clipped: right of the point when it fits, else
    left of it (text-anchor end), shortened with "…" when neither side has the room; above the
    point unless that leaves the top edge."""
    room_right = width - 2 - (x + LABEL_GAP)
    room_left = x - LABEL_GAP - 2
    needed = len(text) * LABEL_CHAR_PX
    anchor = "start" if needed <= room_right or room_right >= room_left else "end"
    room = room_right if anchor == "start" else room_left
    if needed > room:
        text = text[:max(1, int(room // LABEL_CHAR_PX) - 1)] + "…"
    above = y - LABEL_GAP - LABEL_FONT_PX >= 0
    return {"text": text, "anchor": anchor,
            "x": round(x + LABEL_GAP if anchor == "start" else x - LABEL_GAP, 1),
            "y": round(y - LABEL_GAP if above else y + LABEL_GAP + LABEL_FONT_PX, 1)}


def scatter(rows: list[Row], width: int = 640, height: int = 320) -> Chart | None:
    """Size (MiB, x; binary like every page) against perplexity (y) for every variant with both, in SVG coordinates."""
    points = [r for r in rows if r.perplexity is not None and r.size_bytes]
    if not points:
        return None
    left, right, top, bottom = 64, width - 16, 16, height - 40
    xs = [r.size_bytes / 2**20 for r in points]
    ys = [r.perplexity for r in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    pad_x, pad_y = (x1 - x0) * 0.08 or x0 * 0.1 or 1, (y1 - y0) * 0.1 or y0 * 0.05 or 1
    x0, x1, y0, y1 = max(0.0, x0 - pad_x), x1 + pad_x, max(0.0, y0 - pad_y), y1 + pad_y

    def sx(x: float) -> float:
        return round(left + (x - x0) / (x1 - x0) * (right - left), 1)

    def sy(y: float) -> float:
        return round(bottom - (y - y0) / (y1 - y0) * (bottom - top), 1)

    return Chart(
        width=width, height=height, left=left, right=right, top=top, bottom=bottom,
        points=[{"x": sx(x), "y": sy(y), "size_mb": round(x, 1), "perplexity": y,
                 "label": r.variant.label, "pk": r.variant.pk, "base": r.is_base,
                 "text": _point_label(r.variant.label, sx(x), sy(y), width)}
                for r, x, y in zip(points, xs, ys)],
        x_ticks=[{"at": sx(t), "label": f"{t:.0f}"} for t in _ticks(x0, x1)],
        y_ticks=[{"at": sy(t), "label": f"{t:.{_decimals(y1 - y0)}f}"} for t in _ticks(y0, y1)],
        has_base=any(r.is_base for r in points),
    )


def _decimals(span: float) -> int:
    return max(0, min(3, 1 - math.floor(math.log10(span)))) if span > 0 else 2


def sort_headers(sort: str, keys=None, rows: list[Row] | None = None) -> list[dict]:
    """Column headers: clicking the sorted column reverses it, another column sorts ascending.
    Each header's title says what the column is and, when every measured row was measured the
    same way, how (else each cell's title says it for its row)."""
    task_cols = tasks.task_columns([r.tasks for r in rows or []])
    chosen = [BY_KEY[k] for k in keys] if keys else with_tasks(COLUMNS, task_cols)
    headers = []
    for c in chosen:
        task = isinstance(c, tasks.TaskColumn)
        lines = {how_measured(c.kind, r.methods[c.kind]) for r in rows or []
                 if not task and c.kind in r.methods and r.values.get(c.key) is not None}
        about = f"{c.about} — {lines.pop()}" if len(lines) == 1 and c.kind else c.about
        headers.append({"key": c.key, "title": c.title, "about": about, "numeric": c.numeric,
                        "shown": c.shown, "protocol": c.short_protocol if task else "",
                        "next": f"-{c.key}" if sort == c.key else c.key,
                        "state": "asc" if sort == c.key else "desc" if sort == f"-{c.key}" else ""})
    return headers
