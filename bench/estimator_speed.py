"""Time estimate() for all schemes on a few presets; prints the median ms per full estimate.

    python bench/estimator_speed.py [runs]

Target: < 20 ms per full estimate (all SCHEME_NAMES) of one model.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner.estimator import HARDWARE_PROFILES, SCHEME_NAMES, Workload, estimate  # noqa: E402
from planner.presets import preset_architecture  # noqa: E402

CASES = [
    ("smollm2-135m", "cpu-2core-24gb", Workload(context=8192)),
    ("llama-3.1-8b", "rtx-4090", Workload(context=8192)),
    ("llama-3.1-70b", "rtx-4090", Workload(context=4096)),
    ("mixtral-8x7b", "a100-80gb", Workload(runtime="vllm", context=32768, batch=8)),
    ("llama-3.1-405b", "h200", Workload(runtime="transformers", context=4096, mode="lora")),
]


def main(runs: int = 50) -> None:
    for key, hw_key, wl in CASES:
        hw = HARDWARE_PROFILES[hw_key]
        start = time.perf_counter()
        arch = preset_architecture(key)
        estimate(arch, hw, wl)
        cold = (time.perf_counter() - start) * 1000
        times = []
        for i in range(runs):
            # a fresh Workload each run, so per-workload work is not cached away
            run_wl = Workload(**{**wl.to_dict(), "context": wl.context - i, "lora_targets": wl.lora_targets,
                                 "notes": ()})
            t0 = time.perf_counter()
            estimate(arch, hw, run_wl)
            times.append((time.perf_counter() - t0) * 1000)
        print(f"{key:16s} on {hw_key:14s} {wl.runtime:12s}: {len(SCHEME_NAMES)} schemes, "
              f"median {statistics.median(times):6.2f} ms, max {max(times):6.2f} ms, first call {cold:6.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
