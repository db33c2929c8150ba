"""Which architectures the planner plans exactly and which it refuses, and what a config's first plan
costs: every text-generation model type of the pinned transformers, its default config and a
randomized variant (tests/planner/architecture_sweep.py), through the planner's checking path.

    python bench/architecture_coverage.py [--markdown]

Prints the cold import time of torch + transformers, the meta-device build times (median, max)
and a cached repeat, then the verdict counts and each refused model type with its reason.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

started = time.perf_counter()
from planner.model_definition import causal_lm_model_types, load_libraries, model_definition  # noqa: E402

load_libraries()
IMPORT_SECONDS = time.perf_counter() - started

from tests.planner.architecture_sweep import default_config, randomized_config, seed_of, verdict  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--markdown", action="store_true", help="print the refusals as a Markdown table")
    args = parser.parse_args()
    types = causal_lm_model_types()
    rows, builds = [], []
    for mt in types:
        for label, cfg in (("default", default_config(mt)), ("randomized", randomized_config(default_config(mt),
                                                                                               seed_of(mt)))):
            v = verdict(cfg)
            rows.append((mt, label, v))
            try:
                builds.append(model_definition(cfg).build_seconds)
            except Exception:  # noqa: BLE001  (refused builds have no time)
                pass
    cfg = default_config("llama")
    model_definition(cfg)
    t = time.perf_counter()
    model_definition(cfg)   # the second plan of the same config
    cached = time.perf_counter() - t
    print(f"transformers model types with a text-generation class: {len(types)}")
    print(f"import torch + transformers: {IMPORT_SECONDS:.2f} s (once per process; the web process warms it at start)")
    print(f"meta-device build per config: median {statistics.median(builds) * 1000:.0f} ms, "
          f"max {max(builds) * 1000:.0f} ms over {len(builds)} builds; cached repeat {cached * 1e6:.0f} µs")
    for label in ("default", "randomized"):
        counts = Counter(v.status for _, lab, v in rows if lab == label)
        print(f"{label:>10}: " + ", ".join(f"{k} {counts[k]}" for k in ("exact", "refused", "mismatch", "crash")))
    exact = sorted({mt for mt, label, v in rows if label == "default" and v.status == "exact"})
    print(f"\nexact ({len(exact)}): {', '.join(exact)}\n")
    if args.markdown:
        print("| model type | refused because |\n|---|---|")
    for mt, label, v in rows:
        if label == "default" and v.status != "exact":
            reason = v.reason.replace("\n", " ")[:160]
            print(f"| {mt} | {v.status}: {reason} |" if args.markdown else f"{mt:<28} {v.status}: {reason}")


if __name__ == "__main__":
    main()
