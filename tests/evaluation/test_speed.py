"""Speed figures (jobs/methods/evaluate_speed.py): the stopping rule on fixed series, the reading of
other processes' CPU load, and the speed Evaluation of a real (tiny) GGUF and HF run carrying its
runs, medians and conditions. No assertion on how fast anything is."""

import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.methods.evaluate_speed import NodeLoad, StopRule, measure, median_move, stop_reason
from tests.support.processes import WIKITEXT

RULE = StopRule(min_runs=5, max_runs=8, max_seconds=60.0, tolerance=0.02)


def test_median_move_is_the_larger_move_of_the_last_two_runs():
    assert median_move([100.0, 90.0]) == float("inf")  # fewer than 3 runs: never stable
    assert median_move([100.0, 90.0, 110.0, 100.0, 101.0]) == 0.0  # medians 100, 100, 100
    # median of 5 = 100; of the first 4 (50, 60, 100, 150) = 80; of the first 3 = 100
    assert median_move([100.0, 50.0, 150.0, 60.0, 140.0]) == pytest.approx(0.2)


def test_stops_when_both_medians_settle_after_at_least_min_runs():
    steady = [100.0, 99.0, 101.0, 100.0, 100.5]
    assert stop_reason([steady[:4], steady[:4]], 1.0, RULE) is None  # 4 < min_runs
    assert stop_reason([steady, steady], 1.0, RULE) == "stable"
    jumpy = [100.0, 50.0, 150.0, 60.0, 140.0]
    assert stop_reason([steady, jumpy], 1.0, RULE) is None  # decode still moving
    # medians 100 (5 runs), 100.5 (4), 100 (3): a 0.5 % move, below the 2 % tolerance
    assert stop_reason([[100.0, 102.0, 98.0, 101.0, 99.0]] * 2, 1.0, RULE) == "stable"
    # medians 100, 103, 100: a 3 % move
    assert stop_reason([[100.0, 112.0, 88.0, 106.0, 94.0]] * 2, 1.0, RULE) is None


def test_caps_stop_a_series_that_never_settles():
    alternating = [100.0, 50.0] * 4
    assert stop_reason([alternating[:7]] * 2, 1.0, RULE) is None
    assert stop_reason([alternating] * 2, 1.0, RULE) == "max_runs"
    assert stop_reason([alternating[:2]] * 2, 60.0, RULE) == "max_seconds"
    assert stop_reason([[], []], 60.0, RULE) is None  # at least one run, however slow


def test_measure_discards_the_warm_up_and_reports_medians_and_spread():
    # seconds per run: warm-up (slow, discarded), then prefill 1.0/0.8/1.0/1.25/1.0, decode 2.0
    series = iter([(10.0, 20.0), (1.0, 2.0), (0.8, 2.0), (1.0, 2.0), (1.25, 2.0), (1.0, 2.0)])
    metrics, method = measure(lambda: next(series), prompt_tokens=100, gen_tokens=10,
                              engine_info={"threads": 1, "device": "cpu"}, rule=RULE)
    assert metrics["runs"] == 5 and metrics["stable"] and method["repeats"]["stopped"] == "stable"
    assert method["repeats"]["prefill_tokens_per_s"] == [100.0, 125.0, 100.0, 80.0, 100.0]
    assert (metrics["prefill_tokens_per_s"], metrics["prefill_min"], metrics["prefill_max"]) == (100.0, 80.0, 125.0)
    assert metrics["prefill_spread_pct"] == 45.0
    assert metrics["decode_tokens_per_s"] == metrics["tokens_per_second"] == 5.0
    assert metrics["prefill_seconds"] == 1.0 and metrics["decode_seconds"] == 2.0
    assert method["conditions"]["device"] == "cpu" and method["conditions"]["threads"] == 1


def counters(*readings):
    """A fixed sequence of (seconds, node busy CPU seconds, own CPU seconds) readings."""
    it = iter(readings)
    return lambda: next(it)


def test_own_work_is_not_other_load_and_a_little_noise_is_quiet():
    # 2 s on 2 cores: the node busy 2.4 CPU-s, 2.0 of them this process's -> others 0.2 cores
    load = NodeLoad(counters((0.0, 0.0, 0.0), (2.0, 2.4, 2.0)), cores=2).read(threads=1)
    assert (load["own_cpu_cores"], load["other_cpu_cores"], load["other_cpu_share"]) == (1.0, 0.2, 0.1)
    assert load["quiet"] and load["warning"] is None and not load["threads_exceed_free_cores"]
    # 2 threads on 2 cores with 0.2 cores of noise: within the 0.25-core slack, still quiet
    assert NodeLoad(counters((0.0, 0.0, 0.0), (2.0, 2.4, 2.0)), cores=2).read(threads=2)["quiet"]


def test_other_load_makes_the_node_busy_and_says_why():
    # others used 1.2 cores of 2 (60 %): busy; 2 threads don't fit in the 0.8 left
    load = NodeLoad(counters((0.0, 0.0, 0.0), (1.0, 3.2, 2.0)), cores=2).read(threads=2)
    assert load["other_cpu_cores"] == 1.2 and load["threads_exceed_free_cores"] and not load["quiet"]
    assert "1.2 of the node's 2 cores (60 %)" in load["warning"]
    assert "2 threads for the 0.8 cores left free" in load["warning"]
    # 0.4 cores of 16 is 2.5 %: quiet for 8 threads
    assert NodeLoad(counters((0.0, 0.0, 0.0), (1.0, 8.4, 8.0)), cores=16).read(threads=8)["quiet"]


def test_a_busy_child_process_is_seen_as_other_load():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start
        load = NodeLoad()
        time.sleep(1.5)
        seen = load.read(threads=load.cores)
    finally:
        busy.kill()
        busy.wait()
    assert seen["other_cpu_cores"] >= 0.5  # the child (and whatever else runs here)
    assert seen["threads_exceed_free_cores"] and not seen["quiet"] and seen["warning"]
    assert seen["own_cpu_cores"] < 0.2  # this process slept
    assert seen["cores"] >= 1 and seen["cpu_model"]


def run_speed(input_format: str, input_dir: Path, files: list[str], tmp_path: Path):
    from jobs.methods.base import InputFile, RunContext
    from jobs.methods.evaluate import EvaluateMethod

    params = {"mode": "quick", "context": 32, "chunks": 1, "speed": True, "prompt_tokens": 16,
              "gen_tokens": 4, "threads": 1, "dataset_path": str(WIKITEXT / "test.txt"),
              "reference": None}
    ctx = RunContext(job_id=1, params=params, input_format=input_format, input_quant_type="x",
                     input_dir=str(input_dir), input_files=[InputFile(f, 0, "") for f in files],
                     workdir=str(tmp_path))
    return next(e for e in EvaluateMethod().run(ctx) if e.kind == "speed")


def check_speed_evaluation(speed) -> None:
    m, repeats, cond = speed.metrics, speed.method["repeats"], speed.method["conditions"]
    assert m["runs"] == repeats["runs"] == len(repeats["decode_tokens_per_s"]) >= 5
    assert repeats["stopped"] in ("stable", "max_runs", "max_seconds") and repeats["warmup_runs"] == 1
    assert m["decode_tokens_per_s"] == pytest.approx(statistics.median(repeats["decode_tokens_per_s"]), abs=0.02)
    assert m["prefill_tokens_per_s"] == pytest.approx(statistics.median(repeats["prefill_tokens_per_s"]), abs=0.02)
    assert m["decode_min"] <= m["decode_tokens_per_s"] <= m["decode_max"]
    assert m["prefill_min"] <= m["prefill_tokens_per_s"] <= m["prefill_max"]
    assert m["tokens_per_second"] == m["decode_tokens_per_s"]
    assert speed.method["prompt_tokens"] == 16 and speed.method["gen_tokens"] == 4
    assert cond["threads"] == 1 and cond["device"] in ("cpu", "cuda") and cond["cpu_model"]
    assert len(cond["load_average_before"]) == len(cond["load_average_after"]) == 3
    assert isinstance(cond["quiet"], bool) and m["quiet"] == cond["quiet"]
    assert (cond["warning"] is None) == cond["quiet"]


@pytest.mark.slow
def test_gguf_speed_evaluation_carries_runs_medians_and_conditions(demo_gguf, tmp_path):
    speed = run_speed("gguf", demo_gguf.parent, [str(demo_gguf)], tmp_path)
    check_speed_evaluation(speed)
    assert speed.method["engine"] == "llama.cpp" and "omp_env" in speed.method["conditions"]


@pytest.mark.slow
def test_transformers_speed_evaluation_carries_runs_medians_and_conditions(demo_hf_f16, tmp_path):
    speed = run_speed("hf", demo_hf_f16, sorted(str(p) for p in demo_hf_f16.iterdir()), tmp_path)
    check_speed_evaluation(speed)
    assert speed.method["engine"] == "transformers"
