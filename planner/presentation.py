"""Turns an Estimate into what the results partial draws: table cells with formulas, SVG geometry.

Charts are inline SVG computed here (server-side, no JS), so they are testable like any HTML.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from planner.estimator import Estimate, SchemeRow, estimate, format_decimal_bytes
from planner.estimator.fit import Fit
from planner.estimator.speed import calibration_of, speed_withheld
from planner.measured import measured_for, measured_label
from planner.speed_accuracy import speed_error_note

CHART_SCHEMES = {  # a few schemes per runtime for the memory-vs-context chart
    "llama.cpp": ["F16", "Q8_0", "Q4_K_M", "Q2_K"],
    "transformers": ["FP16", "INT8", "NF4"],
    "vllm": ["FP16", "FP8", "AWQ-4bit-g128"],
}
CHART_COLOURS = ["#2f5fd0", "#1f7a3d", "#c77700", "#a3261b"]
SEGMENTS = [("weights_bytes", "weights", "#2f5fd0"), ("kv_cache_bytes", "KV cache", "#c77700"),
            ("recurrent_state_bytes", "recurrent state", "#b5548c"), ("compute_bytes", "compute", "#7a4fd0"),
            ("other_bytes", "overhead + training", "#8a94a6")]


def human_bytes(n: int | float | None) -> str:
    if n is None:
        return "—"
    sign = "−" if n < 0 else ""
    n = abs(n)
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{sign}{n / size:.2f} {unit}"
    return f"{sign}{int(n)} B"


def cell(row: SchemeRow, key: str, text: str) -> dict[str, str]:
    return {"key": key, "text": text, "formula": row.formulas.get(key, "")}


def status_of(row: SchemeRow) -> tuple[str, str]:
    if row.fits:
        return "fits", "fits"
    if row.runs_with_offload:
        return "offload", f"runs with offload ({row.gpu_layers}/{row.n_layers} layers on device)"
    return "nofit", "doesn't fit"


def table_rows(est: Estimate) -> list[dict[str, Any]]:
    wl, arch = est.workload, est.model
    training = wl.mode != "inference"
    out = []
    for row in est.rows:
        status, status_text = status_of(row)
        bpw = cell(row, "bits_per_weight", f"{row.bits_per_weight:.2f}")  # over the whole model
        bpw["per_quantized_weight"] = f"{row.bits_per_quantized_weight:.2f}"  # the format's own bits
        bpw["per_quantized_weight_formula"] = row.formulas["bits_per_quantized_weight"]
        cells = [bpw,
                 cell(row, "weights_bytes", human_bytes(row.weights_bytes)),
                 cell(row, "kv_cache_bytes", human_bytes(row.kv_cache_bytes))]
        if arch.hybrid is not None:
            cells.append(cell(row, "recurrent_state_bytes", human_bytes(row.recurrent_state_bytes)))
        cells += [cell(row, "compute_bytes", human_bytes(row.compute_bytes)),
                  cell(row, "overhead_bytes", human_bytes(row.overhead_bytes))]
        if training:
            cells.append(cell(row, "training_bytes", human_bytes(row.training_bytes)))
        total = cell(row, "total_bytes", human_bytes(row.total_bytes))
        total["rule_of_thumb"] = f"rule {format_decimal_bytes(row.rule_of_thumb_bytes)}"
        total["rule_of_thumb_note"] = row.rule_of_thumb_note
        cells += [total,
                  cell(row, "headroom_bytes", human_bytes(row.headroom_bytes)),
                  cell(row, "max_context", f"{row.max_context:,}"),
                  cell(row, "gpu_layers", "—" if row.gpu_layers is None
                       else f"{row.gpu_layers}/{row.n_layers}"),
                  {**cell(row, "decode_tokens_per_s", "—" if row.decode_tokens_per_s is None
                          else f"{row.decode_tokens_per_s:,.1f}"),
                   "withheld": row.decode_withheld, **speed_provenance(est.hardware, wl.runtime)}]
        record = measured_for(total_params=arch.total_params, runtime=wl.runtime, scheme=row.scheme,
                              context=wl.context, kv_dtype=wl.kv_dtype) if not training else None
        out.append({"row": row, "status": status, "status_text": status_text, "cells": cells,
                    "measured": measured_label(record) if record else "", "measured_record": record})
    return out


def column_titles(est: Estimate) -> list[str]:
    titles = ["bpw", "weights", "KV cache"] + (["recurrent state"] if est.model.hybrid is not None else [])
    titles += ["compute", "overhead"]
    if est.workload.mode != "inference":
        titles.append("training")
    return titles + ["total", "headroom", "max context", "layers on device", "decode tok/s"]


def stacked_bars(est: Estimate, width: int = 720, bar_h: int = 14, gap: int = 5, label_w: int = 120) -> dict:
    """One horizontal stacked bar per scheme against the capacity line (not the schemes that do
    nothing for this model: the table folds those away with their reason)."""
    rows = [r for r in est.rows if r.applies]
    capacity = rows[0].capacity_bytes if rows else 0
    scale_max = max([capacity] + [r.total_bytes for r in rows]) * 1.04 or 1
    area = width - label_w - 10
    has_state = any(r.recurrent_state_bytes for r in rows)   # hybrid models only
    segments = [s for s in SEGMENTS if has_state or s[0] != "recurrent_state_bytes"]
    bars = []
    for i, r in enumerate(rows):
        y = 20 + i * (bar_h + gap)
        x = label_w
        parts = []
        values = {"weights_bytes": r.weights_bytes + r.repack_bytes, "kv_cache_bytes": r.kv_cache_bytes,
                  "recurrent_state_bytes": r.recurrent_state_bytes,
                  "compute_bytes": r.compute_resident_bytes}
        values["other_bytes"] = r.total_bytes - sum(values.values())
        for key, label, colour in segments:
            w = values[key] / scale_max * area
            parts.append({"x": round(x, 1), "w": round(w, 1), "colour": colour,
                          "title": f"{r.scheme} {label}: {human_bytes(values[key])}"})
            x += w
        bars.append({"scheme": r.scheme, "y": y, "text_y": y + bar_h - 3, "parts": parts,
                     "fits": r.fits, "total": human_bytes(r.total_bytes), "end_x": round(x + 4, 1)})
    cap_x = round(label_w + capacity / scale_max * area, 1)
    height = 20 + len(rows) * (bar_h + gap) + 10
    return {"width": width, "height": height, "bar_h": bar_h, "bars": bars, "cap_x": cap_x,
            "capacity": human_bytes(capacity), "legend": [{"label": s[1], "colour": s[2]} for s in segments]}


def context_points(max_position: int, current: int) -> list[int]:
    top = min(max_position, 1_048_576)
    points, c = [], 512
    while c < top:
        points.append(c)
        c *= 2
    points.append(top)
    if current <= top and current not in points:
        points.append(current)
    return sorted(set(points))


def context_chart(est: Estimate, width: int = 720, height: int = 260) -> dict:
    """Total memory vs context for a few schemes (log2 x axis), with the capacity line."""
    wl, arch, hw = est.workload, est.model, est.hardware
    schemes = CHART_SCHEMES[wl.runtime]
    contexts = context_points(arch.max_position_embeddings, wl.context)
    series: dict[str, list[int]] = {s: [] for s in schemes}
    for ctx in contexts:
        for row in estimate(arch, hw, replace(wl, context=ctx), schemes=schemes).rows:
            series[row.scheme].append(row.total_bytes)
    capacity = est.rows[0].capacity_bytes if est.rows else 0
    y_max = max([capacity] + [v for vs in series.values() for v in vs]) * 1.08 or 1
    left, right, top, bottom = 70, 20, 10, 40
    lx0, lx1 = math.log2(contexts[0]), math.log2(contexts[-1])
    span = max(lx1 - lx0, 1e-9)

    def px(ctx: int) -> float:
        return round(left + (math.log2(ctx) - lx0) / span * (width - left - right), 1)

    def py(b: float) -> float:
        return round(height - bottom - b / y_max * (height - top - bottom), 1)

    lines = []
    for i, (scheme, values) in enumerate(series.items()):
        pts = " ".join(f"{px(c)},{py(v)}" for c, v in zip(contexts, values))
        lines.append({"scheme": scheme, "points": pts, "colour": CHART_COLOURS[i % len(CHART_COLOURS)],
                      "label_y": 14 + i * 16})
    ticks = [{"x": px(c), "label": f"{c // 1024}k" if c >= 1024 else str(c)} for c in contexts
             if c == contexts[-1] or c & (c - 1) == 0]
    y_ticks = [{"y": py(y_max * f / 1.08), "label": human_bytes(y_max * f / 1.08)} for f in (0.25, 0.5, 0.75, 1.0)]
    return {"width": width, "height": height, "lines": lines, "cap_y": py(capacity),
            "capacity": human_bytes(capacity), "ticks": ticks, "y_ticks": y_ticks, "left": left,
            "axis_y": height - bottom, "right_x": width - right, "current_x": px(wl.context)
            if contexts[0] <= wl.context <= contexts[-1] else None}


def results_context(est: Estimate, fit: Fit | None = None) -> dict[str, Any]:
    return {"estimate": est, "fit_card": fit_card(fit, est.hardware), "rows": table_rows(est), "columns": column_titles(est), "bars": stacked_bars(est),
            "context_chart": context_chart(est), "arch": est.model, "hw": est.hardware, "wl": est.workload,
            "speed": speed_provenance(est.hardware, est.workload.runtime),
            "human_bytes": human_bytes}


def speed_provenance(hw, runtime: str = "llama.cpp") -> dict[str, str]:
    """Where a speed's constants come from, in short, and the speed model's measured error on record
    (shown beside every speed; the formula says the bandwidth and efficiency in full); where no
    measured or cited figure covers the hardware, `speed_withheld` says why no speed is shown."""
    withheld = speed_withheld(hw, runtime)
    if withheld:
        return {"speed_source": f"not shown: {withheld}", "speed_error": "", "speed_withheld": withheld}
    cal = calibration_of(hw)
    if cal.measured:
        source = "measured on this node"
    else:
        source = "cited: published llama-bench on this card"
    if cal.measured:
        error = (cal.error_note or speed_error_note()
                 or "the speed model's error is not on record yet: bench/speed_accuracy.py on a quiet node records it")
    else:
        error = "no measured error of the speed model on this hardware"
    return {"speed_source": source, "speed_error": error, "speed_withheld": ""}


def fit_card(fit: Fit | None, hw=None) -> dict[str, Any] | None:
    """The Fit card: the solver's choices, per-device bytes (readable) and the command."""
    if fit is None:
        return None
    caps = fit.device_capacity_bytes or [0] * len(fit.devices)
    devices = [{"index": i, "model": human_bytes(d["model_bytes"]), "kv": human_bytes(d["kv_bytes"]),
                "recurrent_state": human_bytes(d.get("recurrent_state_bytes", 0)),
                "compute": human_bytes(d["compute_bytes"] + d["overhead_bytes"]), "total": human_bytes(d["total_bytes"]),
                "capacity": human_bytes(cap) if cap else "—"}
               for i, (d, cap) in enumerate(zip(fit.devices, caps))]
    status = "fits" if fit.fully_on_device else "offload" if fit.fits else "nofit"
    has_state = any(d.get("recurrent_state_bytes") for d in fit.devices)
    return {"fit": fit, "devices": devices, "ram": human_bytes(fit.system_ram_bytes), "status": status,
            "ram_budget": human_bytes(fit.ram_budget_bytes) if fit.ram_budget_bytes else "",
            "has_recurrent_state": has_state, **(speed_provenance(hw) if hw is not None else {})}
