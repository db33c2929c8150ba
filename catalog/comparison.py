"""The comparison page's data: one row per variant of a model with its latest measurements, a
server-side sort, and a size-vs-perplexity scatter laid out here so the template only draws it.

Δ perplexity is against the base (the lineage root with a perplexity), and only when both scored
the same token ids (Evaluation.method["tokens_sha256"]): numbers from different texts, contexts
or tokenizers are not comparable, and the row says so instead of printing a difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from catalog.evaluations import latest_evaluations
from catalog.models import Model, Variant

SORTS = {
    "id": lambda r: r.variant.pk, "size": lambda r: r.size_bytes, "bpw": lambda r: r.bits_per_weight,
    "ppl": lambda r: r.perplexity, "delta": lambda r: r.delta_perplexity, "kl": lambda r: r.kl,
    "top1": lambda r: r.top1, "tps": lambda r: r.tokens_per_second, "mem": lambda r: r.peak_memory_bytes,
}


@dataclass
class Row:
    variant: Variant
    size_bytes: int
    bits_per_weight: float | None
    perplexity: float | None = None
    tokens_sha256: str | None = None
    method: dict = field(default_factory=dict)  # the perplexity evaluation's method
    delta_perplexity: float | None = None
    comparable: bool = True
    kl: float | None = None
    top1: float | None = None
    tokens_per_second: float | None = None
    prefill_tokens_per_second: float | None = None
    peak_memory_bytes: int | None = None
    planner_memory_bytes: int | None = None
    is_base: bool = False


def _row(variant: Variant, evaluations: dict) -> Row:
    row = Row(variant=variant, size_bytes=variant.total_bytes, bits_per_weight=variant.bits_per_weight)
    if ppl := evaluations.get("perplexity"):
        row.perplexity = ppl.metrics.get("perplexity")
        row.tokens_sha256 = ppl.method.get("tokens_sha256")
        row.method = ppl.method
    if kl := evaluations.get("kl"):
        row.kl, row.top1 = kl.metrics.get("kl_mean"), kl.metrics.get("top1_agreement")
    if speed := evaluations.get("speed"):
        row.tokens_per_second = speed.metrics.get("decode_tokens_per_s")
        row.prefill_tokens_per_second = speed.metrics.get("prefill_tokens_per_s")
    if memory := evaluations.get("memory"):
        row.peak_memory_bytes = memory.metrics.get("peak_rss_bytes")
        row.planner_memory_bytes = memory.metrics.get("planner_total_bytes")
    return row


def comparison_rows(model: Model, sort: str = "size") -> list[Row]:
    """Every variant of `model` with its latest evaluations, sorted by `sort` (a SORTS key,
    "-" in front for descending; unmeasured values always last)."""
    variants = list(model.variants.prefetch_related("files").select_related("parent"))
    latest = latest_evaluations(variants)
    rows = [_row(v, latest.get(v.pk, {})) for v in variants]
    roots = [r for r in rows if r.variant.parent_id is None and r.perplexity is not None]
    base = roots[0] if roots else None
    for r in rows:
        if base is None or r.perplexity is None:
            continue
        r.is_base = r is base
        r.comparable = r.tokens_sha256 == base.tokens_sha256
        if r.comparable:
            r.delta_perplexity = round(r.perplexity - base.perplexity, 4)
    key = SORTS.get(sort.lstrip("-"), SORTS["size"])
    measured = [r for r in rows if key(r) is not None]
    missing = [r for r in rows if key(r) is None]
    return sorted(measured, key=key, reverse=sort.startswith("-")) + missing


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


COLUMNS = [("id", "Variant"), ("size", "Size"), ("bpw", "Bits/weight"), ("ppl", "Perplexity"),
           ("delta", "Δ vs base"), ("kl", "KL divergence"), ("top1", "Top-1 agree"),
           ("tps", "Tokens/s"), ("mem", "Peak memory")]


def sort_headers(sort: str) -> list[dict]:
    """Column headers: clicking the sorted column reverses it, another column sorts ascending."""
    return [{"key": key, "title": title,
             "next": f"-{key}" if sort == key else key,
             "state": "asc" if sort == key else "desc" if sort == f"-{key}" else ""}
            for key, title in COLUMNS]
