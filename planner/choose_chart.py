"""The Choose view's Pareto chart, laid out here (SVG coordinates) so the template only draws it:
size (GiB on disk, or the planner's memory at the context) against the distance from the
reference in the chosen metric, every measured variant a labelled point with its uncertainty bar,
coloured by the planner's fit, the frontier drawn through, dominated points greyed. Variants
without a usable measurement are not drawn (the page lists them with why).

A task's accuracy is drawn as it is, on a linear axis, higher up better, its bars ± lm-eval's
standard error: an accuracy is a fraction of documents, not a distance spread over decades."""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.choose import AXES, FIT_WORDS, GiB, Choice
from catalog.comparison import LABEL_CHAR_PX, LABEL_FONT_PX, LABEL_GAP, _point_label, _ticks

FIT_COLOURS = {"device": "#1f7a3d", "offload": "#c77700", "none": "#a3261b", "refused": "#777777"}


@dataclass
class ParetoChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    points: list[dict]
    frontier: str          # the polyline's points, "x,y x,y ..."
    x_ticks: list[dict]
    y_ticks: list[dict]
    x_label: str
    y_label: str
    bar_words: str = "the uncertainty llama.cpp reports"


def _box(text: dict) -> tuple[float, float, float, float]:
    w = len(text["text"]) * LABEL_CHAR_PX
    x = text["x"] if text["anchor"] == "start" else text["x"] - w
    return x, text["y"] - LABEL_FONT_PX, x + w, text["y"]


def _overlaps(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _spread_labels(points: list[dict], width: int) -> None:
    """Frontier labels first; a label that would cover one already placed tries below its point,
    then the other side: close quants (a Q3_K_L beside a Q3_K_M) stay readable."""
    placed: list[tuple] = []
    for p in sorted(points, key=lambda p: not p["frontier"]):
        text = p["text"]
        tries = [text, {**text, "y": round(p["y"] + LABEL_GAP + LABEL_FONT_PX, 1)}]
        other = _point_label(text["text"], p["x"], p["y"], width)
        if text["anchor"] == "start" and p["x"] - LABEL_GAP - len(text["text"]) * LABEL_CHAR_PX >= 0:
            other = {**other, "anchor": "end", "x": round(p["x"] - LABEL_GAP, 1)}
            tries += [other, {**other, "y": round(p["y"] + LABEL_GAP + LABEL_FONT_PX, 1)}]
        p["text"] = next((t for t in tries if not any(_overlaps(_box(t), b) for b in placed)), text)
        placed.append(_box(p["text"]))


def _log_ticks(low: float, high: float, base: int) -> list[float]:
    """Powers of `base` between low and high (both > 0); the ends themselves when none falls inside."""
    ticks, t = [], base ** math.floor(math.log(low, base))
    while t <= high * 1.0001:
        if t >= low * 0.9999:
            ticks.append(t)
        t *= base
    return ticks or [low, high]


def pareto_chart(choice: Choice, width: int = 720, height: int = 360) -> ParetoChart | None:
    """Both axes logarithmic: quants spread over decades of KLD and a few sizes, which a linear
    scale would pile at the bottom left. The reference (distance 0 by definition) sits on the
    bottom line, labelled 0."""
    placed = [c for c in choice.candidates if c.usable and c.x(choice.axis) is not None]
    if not placed:
        return None
    left, right, top, bottom = 64, width - 16, 28, height - 40
    xs = [c.x(choice.axis) / GiB for c in placed]
    x0, x1 = math.log10(min(xs)) - 0.05, math.log10(max(xs)) + 0.05
    accuracy = choice.metric.higher_is_better

    def sx(x: float) -> float:
        return round(left + (math.log10(x) - x0) / (x1 - x0) * (right - left), 1)

    if accuracy:  # linear in the accuracy itself; `distance` (1 − accuracy) still ranks the frontier
        lows = [max(0.0, c.value - (c.unc or 0)) for c in placed]
        tops = [min(1.0, c.value + (c.unc or 0)) for c in placed]
        pad = (max(tops) - min(lows)) * 0.08 or 0.02
        a0, a1 = max(0.0, min(lows) - pad), min(1.0, max(tops) + pad)

        def sy(distance: float) -> float:
            return round(bottom - (1 - distance - a0) / (a1 - a0) * (bottom - top), 1)
    else:
        positive = [c.distance for c in placed if c.distance > 0]
        highs = [c.distance + (c.unc or 0) for c in placed]
        y_floor = min(positive) / 2 if positive else 1e-3
        y0, y1 = math.log10(y_floor), math.log10(max(max(highs), y_floor * 10)) + 0.05

        def sy(y: float) -> float:
            return round(bottom - (math.log10(max(y, y_floor)) - y0) / (y1 - y0) * (bottom - top), 1)

    points = []
    for c, x in zip(placed, xs):
        px, py = sx(x), sy(c.distance)
        label = f"#{c.variant.pk} {c.variant.quant_type or c.variant.label}"
        unc = f" ± {c.unc:g}" if c.unc is not None else ""
        value = "reference" if c.status == "reference" else f"{choice.metric.title} {c.value:g}{unc}"
        points.append({
            "pk": c.variant.pk, "x": px, "y": py, "fit": c.fit, "colour": FIT_COLOURS[c.fit],
            "frontier": c.frontier, "dominated": not c.frontier,
            "bar": {"low": sy(c.distance - c.unc), "high": sy(c.distance + c.unc)} if c.unc else None,
            "text": _point_label(label, px, py, width),
            "title": (f"{label}: {x:.2f} GiB {AXES[choice.axis]}, {value}; {FIT_WORDS[c.fit]}"
                      + ("" if c.frontier else f"; dominated by #{c.dominated_by}")),
        })
    _spread_labels(points, width)
    frontier = sorted((p for p in points if p["frontier"]), key=lambda p: (p["x"], -p["y"]))
    if accuracy:
        y_ticks = [{"at": sy(1 - t), "label": f"{t:.3f}"} for t in _ticks(a0, a1)]
    else:
        y_ticks = [{"at": sy(t), "label": f"{t:g}"} for t in _log_ticks(10 ** y0, 10 ** y1, 10)]
    if not accuracy and any(c.distance == 0 for c in placed):
        y_ticks = [{"at": float(bottom), "label": "0"}] + [t for t in y_ticks if t["at"] < bottom - 12]
    return ParetoChart(
        width=width, height=height, left=left, right=right, top=top, bottom=bottom, points=points,
        frontier=" ".join(f"{p['x']},{p['y']}" for p in frontier),
        x_ticks=[{"at": sx(t), "label": f"{t:g}"} for t in _log_ticks(10 ** x0, 10 ** x1, 2)],
        y_ticks=y_ticks, x_label=f"GiB, {AXES[choice.axis]} (log scale)",
        y_label=f"{choice.metric.axis} (higher is better)" if accuracy else f"{choice.metric.axis} (log)",
        bar_words="the standard error lm-eval reports" if accuracy else "the uncertainty llama.cpp reports")
