"""Speed figures that repeat: prefill and decode tokens/s measured several times in one loaded
context until their medians settle, with the conditions they were measured under.

One run is the engine's primitive (`engine.speed_runner(prompt, gen_tokens)` yields a callable
returning (prefill_seconds, decode_seconds) for one prefill of the prompt from an empty cache and
`gen_tokens` greedy single-token steps). The loop is here, the same for every engine:

- one warm-up run is discarded (first touch of the weights, allocations, thread start-up);
- then runs repeat until there are at least `min_runs` and both medians are stable (adding each
  of the last two runs moved the median by less than `tolerance`), or `max_runs` / `max_seconds`
  is reached; the figures are the medians, with min/max/spread and the number of runs.

The conditions are read around the counted runs: threads, device, CPU model and cores, the load
average before/after, and the CPU time OTHER processes used meanwhile (node busy time from
/proc/stat via psutil minus this process's own user+system time). A node is "quiet" when the
others used at most OTHER_LOAD_MAX_SHARE of its cores and the threads fit in the cores they left
free; otherwise `warning` says why the figure is lower than a quiet node's. On an oversubscribed
CPU llama.cpp's worker threads wait for each other at every operation, so a busy node does not
cost a share of the speed but most of it (2-core node, 2 threads: decode 148 tokens/s quiet,
1-9 with one other busy process; bench/speed_stability.py).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import psutil

# "Quiet": other processes used at most this share of the node's cores during the runs ...
OTHER_LOAD_MAX_SHARE = 0.25
# ... and threads <= cores - others' core-equivalents + this slack (noise of an idle node).
FREE_CORES_SLACK = 0.25


@dataclass(frozen=True)
class StopRule:
    min_runs: int = 5
    max_runs: int = 20
    max_seconds: float = 30.0
    tolerance: float = 0.02  # relative move of the median


def median_move(values: list[float]) -> float:
    """The largest relative change of the median caused by each of the last two values: |median(all)
    - median(all but the last k)| / median(all) for k = 1, 2 (inf with fewer than 3 values)."""
    if len(values) < 3:
        return float("inf")
    now = statistics.median(values)
    return max(abs(now - statistics.median(values[:-k])) / now for k in (1, 2))


def stop_reason(series: list[list[float]], elapsed: float, rule: StopRule) -> str | None:
    """Why the loop stops after these runs ("stable", "max_runs", "max_seconds"), or None to go on.
    `series` holds one list per figure (prefill, decode), all the same length."""
    runs = len(series[0])
    if runs >= rule.min_runs and all(median_move(s) < rule.tolerance for s in series):
        return "stable"
    if runs >= rule.max_runs:
        return "max_runs"
    if runs and elapsed >= rule.max_seconds:
        return "max_seconds"
    return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _node_busy_seconds() -> float:
    """CPU seconds the whole node spent busy (all CPUs): user, nice, system, irq, softirq, steal
    (guest time is already inside user on Linux)."""
    t = psutil.cpu_times()
    return sum(getattr(t, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))


def cpu_counters() -> tuple[float, float, float]:
    """(monotonic seconds, the node's busy CPU seconds, this process's user+system seconds)."""
    own = psutil.Process().cpu_times()
    return time.monotonic(), _node_busy_seconds(), own.user + own.system


class NodeLoad:
    """The CPU time other processes used on this node between construction and `read()`
    (`counters` and `cores` are the real node's unless given)."""

    def __init__(self, counters: Callable[[], tuple[float, float, float]] = cpu_counters,
                 cores: int | None = None) -> None:
        self.counters, self.cores = counters, cores or psutil.cpu_count() or 1
        self.load_before = [round(x, 2) for x in os.getloadavg()]
        self.started, self.node0, self.own0 = counters()

    def read(self, *, threads: int) -> dict:
        now, node, own = self.counters()
        wall = max(now - self.started, 1e-6)
        node, own, cores = node - self.node0, own - self.own0, self.cores
        other = max(0.0, (node - own) / wall)
        share = other / cores
        free = cores - other
        exceed = threads > free + FREE_CORES_SLACK
        quiet = share <= OTHER_LOAD_MAX_SHARE and not exceed
        reasons = []
        if share > OTHER_LOAD_MAX_SHARE:
            reasons.append(f"other processes used {other:.1f} of the node's {cores} cores "
                           f"({100 * share:.0f} %) during the speed runs")
        if exceed:
            reasons.append(f"{threads} thread{'s' if threads != 1 else ''} for the "
                           f"{max(free, 0):.1f} cores left free (threads then wait for each other "
                           "at every step)")
        return {
            "cores": cores, "cores_available": len(os.sched_getaffinity(0)), "cpu_model": cpu_model(),
            "threads": threads, "load_average_before": self.load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "seconds": round(wall, 2), "own_cpu_cores": round(own / wall, 2),
            "other_cpu_cores": round(other, 2), "other_cpu_share": round(share, 3),
            "free_cores": round(free, 2), "threads_exceed_free_cores": exceed, "quiet": quiet,
            "quiet_rule": f"others used <= {100 * OTHER_LOAD_MAX_SHARE:.0f} % of the cores and "
                          f"threads <= free cores + {FREE_CORES_SLACK}",
            "warning": ("busy node: " + "; ".join(reasons) + " — these tokens/s are lower and less "
                        "repeatable than on a quiet node") if reasons else None,
        }


def _summary(name: str, rates: list[float], seconds: list[float]) -> dict:
    mid = statistics.median(rates)
    return {f"{name}_tokens_per_s": round(mid, 2), f"{name}_min": round(min(rates), 2),
            f"{name}_max": round(max(rates), 2),
            f"{name}_spread_pct": round(100 * (max(rates) - min(rates)) / mid, 1),
            f"{name}_seconds": round(statistics.median(seconds), 4)}


def measure(run_once: Callable[[], tuple[float, float]], *, prompt_tokens: int, gen_tokens: int,
            engine_info: dict, rule: StopRule = StopRule()) -> tuple[dict, dict]:
    """(metrics, method) of the speed Evaluation: medians and spread in metrics; every run's
    figures, the stopping rule and the node's conditions (with the engine's threads, device, GPU
    and OpenMP environment from `engine_info`) in method."""
    run_once()  # warm-up, discarded
    node = NodeLoad()
    seconds: dict[str, list[float]] = {"prefill": [], "decode": []}
    rates: dict[str, list[float]] = {"prefill": [], "decode": []}
    while True:
        for name, took, tokens in zip(("prefill", "decode"), run_once(), (prompt_tokens, gen_tokens)):
            seconds[name].append(took)
            rates[name].append(tokens / took)
        reason = stop_reason(list(rates.values()), time.monotonic() - node.started, rule)
        if reason:
            break
    conditions = {**node.read(threads=engine_info["threads"]),
                  **{k: engine_info[k] for k in ("device", "gpu", "omp_env") if k in engine_info}}
    metrics = {**_summary("prefill", rates["prefill"], seconds["prefill"]),
               **_summary("decode", rates["decode"], seconds["decode"]),
               "runs": len(rates["decode"]), "stable": reason == "stable", "quiet": conditions["quiet"]}
    metrics["tokens_per_second"] = metrics["decode_tokens_per_s"]
    method = {"repeats": {"warmup_runs": 1, "runs": metrics["runs"], "stopped": reason,
                          "rule": asdict(rule),
                          "prefill_tokens_per_s": [round(r, 2) for r in rates["prefill"]],
                          "decode_tokens_per_s": [round(r, 2) for r in rates["decode"]]},
              "conditions": conditions}
    return metrics, method
