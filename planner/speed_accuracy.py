"""The speed model's measured error on record: what bench/speed_accuracy.py last saved in
planner/speed_accuracy.json (estimate vs llama-cpp-python's measured decode and prefill, on the
machine that ran it, calibrated from that machine's node measurement).

A row: {"model", "scheme", "metric" ("decode" | "prefill"), "estimate", "measured", "ratio",
"error_pct"}; error_pct = (estimate − measured) / measured × 100. The file also records the date,
the command, the machine's load average and whether the run was quiet.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SPEED_ACCURACY_PATH = Path(__file__).resolve().parent / "speed_accuracy.json"


@lru_cache(maxsize=1)
def speed_record(path: Path = SPEED_ACCURACY_PATH) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def speed_error_note(record: dict[str, Any] | None = None) -> str:
    """e.g. 'speed model measured error (bench/speed_accuracy.py, 2026-12-07, quiet): decode −8…+3 %,
    prefill −15…+6 % over 3 models'; '' when nothing is on record."""
    record = speed_record() if record is None else record
    rows = [r for r in record.get("rows", []) if isinstance(r, dict) and "error_pct" in r]
    if not rows:
        return ""
    parts = []
    for metric in ("decode", "prefill"):
        errors = [r["error_pct"] for r in rows if r.get("metric") == metric]
        if errors:
            parts.append(f"{metric} {_pct(min(errors))}…{_pct(max(errors))} %")
    models = len({r.get("model") for r in rows})
    quiet = "quiet" if record.get("quiet") else "NOT quiet: flagged"
    return (f"speed model measured error ({record.get('command', 'bench/speed_accuracy.py')}, "
            f"{record.get('date', '?')}, {quiet}): {', '.join(parts)} over {models} models")


def _pct(x: float) -> str:
    return f"{'−' if x < 0 else '+'}{abs(x):.0f}"
