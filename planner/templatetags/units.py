"""Template filters for sizes and parameter counts, one convention on every page.

Sizes are binary (1 KiB = 1024 bytes, 1 MiB = 1024² bytes, ...) and say so with the "i":
98,362,432 bytes is "93.8 MiB". Django's own `filesizeformat` divides by 1024 too but prints "MB",
which reads as decimal megabytes; these filters replace it in templates. Decimal GB appear only
where a figure is decimal on purpose (the planner's rule of thumb, bandwidth in GB/s, hardware
product names) and are labelled there.

Parameter counts use the planner's `format_param_count` (135M, 7.3B, 1.5T).
"""

from __future__ import annotations

from django import template

from planner.estimator import format_param_count

register = template.Library()

NBSP = "\xa0"  # keeps the number and its unit on one line, as filesizeformat does
BINARY_UNITS = (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))


def binary_size(n: int | float | None) -> str:
    """98_362_432 → "93.8 MiB"; 512 → "512 bytes"; None → "—". One decimal, like filesizeformat."""
    if n is None or n == "":
        return "—"
    try:
        value = float(n)
    except (TypeError, ValueError):
        return "—"
    sign = "−" if value < 0 else ""
    value = abs(value)
    if value < 1024:
        whole = int(value)
        return f"{sign}{whole}{NBSP}{'byte' if whole == 1 else 'bytes'}"
    unit, size = next((u, s) for u, s in BINARY_UNITS if value >= s)
    if round(value / size, 1) >= 1024 and unit != "TiB":  # 1023.96 MiB shows as "1.0 GiB"
        unit, size = BINARY_UNITS[BINARY_UNITS.index((unit, size)) - 1]
    return f"{sign}{value / size:.1f}{NBSP}{unit}"


def param_count(n: int | float | None) -> str:
    """134_515_008 → "135M"; 1.5e12 → "1.5T"; unknown → "?"."""
    if n in (None, "", 0):
        return "?"
    try:
        return format_param_count(float(n))
    except (TypeError, ValueError):
        return "?"


register.filter("binary_size", binary_size)
register.filter("param_count", param_count)
