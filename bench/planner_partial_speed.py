"""Server time to render the planner's results partial (the htmx response) vs the bare estimate.

    python bench/planner_partial_speed.py [runs]

Cases: four everyday plans and the largest preset (by parameters) on 8 H100s, one 4090 (expert
offload) and 8 H200s with vLLM. Calls the view through RequestFactory with HX-Request set (no HTTP, no middleware, anonymous user:
no database query) and reports the median over `runs`. Target: partial < 50 ms.
The partial is one full estimate plus the memory-vs-context chart (a few schemes × ~10 contexts),
the table with every formula, and the SVG.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantdash.settings")
# as deployed (DEBUG=0: templates without debug bookkeeping); the key only signs nothing here
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "planner-partial-bench-only")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import AnonymousUser  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django_htmx.middleware import HtmxDetails  # noqa: E402

from planner import views  # noqa: E402
from planner.forms import PlanForm  # noqa: E402
from planner.presets import PRESETS, preset_architecture  # noqa: E402

CASES = [
    "preset=smollm2-135m&hardware=cpu-2core-24gb&context=2048",
    "preset=llama-3.1-8b&hardware=rtx-4090&context=8192",
    "preset=llama-3.1-70b&hardware=h100-80gb&devices=2&runtime=vllm&context=32768&batch=8",
    "preset=mixtral-8x7b&hardware=a100-80gb&runtime=transformers&mode=lora&context=4096",
]


def largest_preset() -> str:
    """The preset with the most parameters (kimi-k2 / deepseek-v3 once they exist)."""
    return max(PRESETS, key=lambda key: preset_architecture(key).total_params)


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(runs: int = 30) -> None:
    factory = RequestFactory()
    big = largest_preset()
    cases = CASES + [f"preset={big}&hardware=h100-80gb&devices=8&context=32768",
                     f"preset={big}&hardware=rtx-4090&context=8192",
                     f"preset={big}&hardware=h200&devices=8&runtime=vllm&context=32768&batch=8"]
    print(f"largest preset: {big} ({preset_architecture(big).total_params:,} parameters)")
    print(f"{'case':<88} {'estimate ms':>11} {'partial ms':>10} {'ratio':>6}")
    worst = 0.0
    for query in cases:
        def partial():
            request = factory.get(f"/planner/?{query}", HTTP_HX_REQUEST="true")
            request.user = AnonymousUser()
            request.htmx = HtmxDetails(request)
            response = views.index(request)
            assert response.status_code == 200 and b"plan-row" in response.content

        def estimate_only():
            form = PlanForm(dict(parse_qsl(query)), user=AnonymousUser())
            assert form.is_valid()

        partial()  # warm caches (templates, per-architecture tensor plans)
        est, part = median_ms(estimate_only, runs), median_ms(partial, runs)
        print(f"{query:<88} {est:>11.1f} {part:>10.1f} {part / est:>5.1f}x")
        if big in query:
            worst = max(worst, part)
    print(f"median of {runs} runs each; largest preset's partial: {worst:.1f} ms (target < 50 ms)"
          f"{'' if worst < 50 else ' — OVER'}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
