"""Server time to render the planner's results partial (the htmx response) vs the bare estimate.

    python bench/planner_partial_speed.py [runs]

Calls the view through RequestFactory with HX-Request set (no HTTP, no middleware, anonymous user:
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

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import AnonymousUser  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django_htmx.middleware import HtmxDetails  # noqa: E402

from planner import views  # noqa: E402
from planner.forms import PlanForm  # noqa: E402

CASES = [
    "preset=smollm2-135m&hardware=cpu-2core-24gb&context=2048",
    "preset=llama-3.1-8b&hardware=rtx-4090&context=8192",
    "preset=llama-3.1-70b&hardware=h100-80gb&devices=2&runtime=vllm&context=32768&batch=8",
    "preset=mixtral-8x7b&hardware=a100-80gb&runtime=transformers&mode=lora&context=4096",
]


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(runs: int = 30) -> None:
    factory = RequestFactory()
    print(f"{'case':<88} {'estimate ms':>11} {'partial ms':>10} {'ratio':>6}")
    for query in CASES:
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
    print(f"median of {runs} runs each; target: partial < 50 ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
