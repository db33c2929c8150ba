"""The measured error on record: rows that bench/estimator_accuracy.py saved in planner/measured.json.

A row: {"model", "total_params", "runtime", "scheme", "context", "kv_dtype", "metric", "estimate_bytes",
"measured_bytes", "error_pct", "date"}. `error_pct` = (estimate − measured) / measured × 100 (positive:
the planner over-estimates). The planner shows a row beside an estimate when the model's parameter
count, the scheme and the runtime match; the record with the context nearest the user's is chosen.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

MEASURED_PATH = Path(__file__).resolve().parent / "measured.json"
# The metric shown on the page, per runtime (the README table has them all): llama.cpp's own model +
# KV + compute buffers vs weights + KV + compute; transformers' get_memory_footprint() vs weights.
HEADLINE_METRIC = {"llama.cpp": "buffers", "transformers": "weights"}


@lru_cache(maxsize=1)
def measured_rows(path: Path = MEASURED_PATH) -> tuple[dict[str, Any], ...]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return ()
    return tuple(r for r in data.get("rows", []) if isinstance(r, dict))


def measured_for(*, total_params: int, runtime: str, scheme: str, context: int,
                 kv_dtype: str = "f16") -> dict[str, Any] | None:
    """The record matching model/scheme/runtime (headline metric), nearest in context and KV type."""
    metric = HEADLINE_METRIC.get(runtime)
    candidates = [r for r in measured_rows() if r.get("total_params") == total_params
                  and r.get("runtime") == runtime and r.get("scheme") == scheme and r.get("metric") == metric]
    if not candidates:
        return None
    return min(candidates, key=lambda r: (r.get("kv_dtype") != kv_dtype, abs(r.get("context", 0) - context)))


def measured_label(record: dict[str, Any]) -> str:
    """e.g. 'measured: −0.4 % at ctx 2048' (a real minus sign, like the README table)."""
    pct = record["error_pct"]
    sign = "−" if pct < 0 else "+"
    where = f"at ctx {record['context']}" if record.get("runtime") == "llama.cpp" else "weights"
    kv = f", KV {record['kv_dtype']}" if record.get("runtime") == "llama.cpp" and record.get("kv_dtype") != "f16" else ""
    return f"measured: {sign}{abs(pct):.1f} % {where}{kv}"
