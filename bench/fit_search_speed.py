"""Time the llama.cpp fit solver: one fit() per scheme, and fit_estimate() (scheme choice + fit).

    python bench/fit_search_speed.py [runs]

Target: < 50 ms per fit() of a 61-layer model (DeepSeek-V3), the no-fit path (nearest fixes) included.
Prints the median ms per call and its ratio to the target.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner.estimator import HARDWARE_PROFILES, Workload, estimate  # noqa: E402
from planner.estimator.fit import fit, fit_estimate  # noqa: E402
from planner.presets import preset_architecture  # noqa: E402

TARGET_MS = 50
CASES = [   # (preset, hardware, devices, RAM GiB, context, scheme: fits fully / with offload / not at all)
    ("deepseek-v3", "h100-80gb", 2, 128, 8192, "IQ3_XXS"),
    ("deepseek-v3", "h100-80gb", 2, 128, 8192, "Q4_K_M"),
    ("deepseek-v3", "h100-80gb", 8, 2048, 8192, "Q4_K_M"),
    ("llama-3.1-70b", "rtx-4090", 1, 64, 4096, "Q4_K_M"),
    ("mixtral-8x7b", "t4", 1, 64, 4096, "Q4_K_M"),
]


def _median_ms(call, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(runs: int = 20) -> None:
    for key, hw_key, devices, ram, ctx, scheme in CASES:
        arch, wl = preset_architecture(key), Workload(context=ctx)
        hw = HARDWARE_PROFILES[hw_key].with_devices(devices).with_ram(ram)
        result = fit(arch, hw, wl, scheme)
        one = _median_ms(lambda: fit(arch, hw, wl, scheme), runs)
        est = estimate(arch, hw, wl)
        chosen = fit_estimate(est)
        both = _median_ms(lambda: fit_estimate(est), runs)
        print(f"{key} on {devices} × {hw_key}, {ram} GiB RAM, ctx {ctx}: fit({scheme}) {one:.1f} ms "
              f"({one / TARGET_MS:.2f} × target, {'fits' if result.fits else 'no fit'}); fit_estimate → "
              f"{chosen.scheme} {both:.1f} ms ({both / TARGET_MS:.2f} × target)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
