"""Decode roofline and prefill time."""

import pytest

from planner.estimator import HARDWARE_PROFILES, Workload, estimate
from planner.estimator.speed import (BANDWIDTH_EFFICIENCY, COMPUTE_EFFICIENCY, PER_LAYER_STEP_SECONDS,
                                     decode_tokens_per_s, prefill_seconds)

STEP = 32 * PER_LAYER_STEP_SECONDS["llama.cpp"]  # fixed per-step time for 32 layers
from planner.presets import preset_architecture

LLAMA8 = preset_architecture("llama-3.1-8b")
GPU = HARDWARE_PROFILES["rtx-4090"]


def test_batch1_decode_is_bandwidth_over_bytes():
    tps, _ = decode_tokens_per_s(LLAMA8, GPU, Workload(context=4096), 4_912_898_304, 2**29)
    expected = 1 / ((4_912_898_304 + 2**29) / (1008e9 * BANDWIDTH_EFFICIENCY["gpu"]) + STEP)
    assert tps == pytest.approx(expected)
    assert 100 < tps < 140  # llama.cpp on a 4090 does ~130 tok/s for 8B Q4_K_M


def test_batching_reads_weights_once_per_step():
    one, _ = decode_tokens_per_s(LLAMA8, GPU, Workload(context=1024, batch=1), 5e9, 2**27)
    many, _ = decode_tokens_per_s(LLAMA8, GPU, Workload(context=1024, batch=16), 5e9, 16 * 2**27)
    assert many == pytest.approx(16 / ((5e9 + 16 * 2**27) / (1008e9 * 0.7) + STEP))
    assert many > 10 * one


def test_huge_batch_is_compute_bound():
    tps, formula = decode_tokens_per_s(LLAMA8, GPU, Workload(context=16, batch=4096), 5e9, 4096 * 2**21)
    assert tps == pytest.approx(4096 / (2 * LLAMA8.active_params * 4096 / (165e12 * COMPUTE_EFFICIENCY) + STEP))
    assert "compute-bound" in formula


def test_moe_reads_only_active_experts():
    mixtral = preset_architecture("mixtral-8x7b")
    tps, _ = decode_tokens_per_s(mixtral, GPU, Workload(context=512), 28e9, 0)
    active_bytes = 28e9 * 12_879_925_248 / 46_702_792_704
    assert tps == pytest.approx(1 / (active_bytes / (1008e9 * 0.7) + STEP))


def test_prefill_seconds_formula():
    secs, _ = prefill_seconds(LLAMA8, GPU, Workload(context=2048))
    flops = 2 * 8_030_261_248 * 2048 + 2 * 32 * 2048 * 2048 * 4096
    assert secs == pytest.approx(flops / (165e12 * COMPUTE_EFFICIENCY))


def test_row_speed_uses_scheme_bytes():
    rows = {r["scheme"]: r for r in estimate(LLAMA8, GPU, Workload(), ["Q8_0", "Q4_K_M"]).rows}
    assert rows["Q4_K_M"]["decode_tokens_per_s"] > rows["Q8_0"]["decode_tokens_per_s"]


def test_tiny_model_is_capped_by_per_layer_step_time():
    smol = preset_architecture("smollm2-135m")
    tps, _ = decode_tokens_per_s(smol, GPU, Workload(context=512), 103_668_480, 11_796_480)
    assert tps < 1 / (30 * PER_LAYER_STEP_SECONDS["llama.cpp"])
