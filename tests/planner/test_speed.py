"""Decode and prefill speed against published measurements, datasheets and roofline bounds.

Sources used below:
* llama-bench on RunPod, May 2024, Llama 3 8B, XiongjieDai/GPU-Benchmarks-on-LLM-Inference README,
  "LLaMA 3" NVIDIA table: RTX 4090 Q4_K_M tg512 130.58, pp512 7138.99, pp4096 5265.68 t/s; F16 tg512
  54.84 t/s. These calibrate the RTX 4090 profile (planner/estimator/speed.py CITED), so a check
  against them would be fitting to the answer: the checks below use OTHER published figures.
* llama.cpp pull request "llama : ggml-backend integration" (ggerganov, 2024-01-10), llama-bench of
  codellama-7b on an RTX 4090: F16 (12.55 GiB) tg128 61.03 t/s, Q8_0 (6.67 GiB) tg128 98.13 t/s.
  CodeLlama 7B has Llama 2 7B's shape (vocabulary 32016 instead of 32000).
* Datasheets: RTX 4090 1,008 GB/s and 165 TFLOPS dense FP16 tensor.
* Llama 3.1 8B: 8,030,261,248 parameters, 32 layers, 8 KV heads × 128, so an f16 KV cache is
  2 × 32 × 1024 × 2 B = 131,072 B per token per sequence.
"""

import pytest

from planner.estimator import HARDWARE_PROFILES, Workload, estimate
from planner.estimator.speed import decode_tokens_per_s, prefill_seconds
from planner.presets import preset_architecture

LLAMA8 = preset_architecture("llama-3.1-8b")
GPU = HARDWARE_PROFILES["rtx-4090"]


def test_cited_4090_calibration_predicts_another_published_run():
    """Calibrated on Llama 3 8B F16 tg512 (54.84 t/s), the 4090 profile predicts codellama-7b F16
    tg128, published separately as 61.03 t/s: within 10 %. Q8_0 was not in the calibration (its
    nearest measured scheme, F16, lends its efficiency): 98.13 t/s published, within 20 %."""
    llama2 = preset_architecture("llama-2-7b")
    for scheme, published, tol in (("F16", 61.03, 0.10), ("Q8_0", 98.13, 0.20)):
        row = estimate(llama2, GPU, Workload(context=128), [scheme]).rows[0]
        assert row.decode_tokens_per_s == pytest.approx(published, rel=tol), scheme
        assert "cited: llama-bench" in row.formulas["decode_tokens_per_s"]


def test_every_speed_says_its_bandwidth_efficiency_and_source():
    cited = estimate(LLAMA8, GPU, Workload(context=512), ["Q4_K_M"]).rows[0].formulas
    assert "1,008.0 GB/s, RTX 4090 datasheet" in cited["decode_tokens_per_s"]
    assert "Q4_K_M's own; cited: llama-bench" in cited["decode_tokens_per_s"]
    assert "TFLOP/s achieved in prefill (Q4_K_M's own; cited: llama-bench" in cited["prefill_seconds"]


def test_layer_split_reads_at_one_devices_bandwidth():
    """With -sm layer the devices run one after another: two 4090s decode no faster than one (the same
    bytes at the same 1,008 GB/s), where summing bandwidths would double the speed."""
    one = estimate(LLAMA8, GPU, Workload(context=512), ["Q4_K_M"]).rows[0].decode_tokens_per_s
    two = estimate(LLAMA8, GPU.with_devices(2), Workload(context=512), ["Q4_K_M"]).rows[0].decode_tokens_per_s
    assert two == pytest.approx(one, rel=1e-6)


def test_batching_reads_weights_once_per_step():
    """W = 5e9 B of weights, K = 1024 × 131,072 = 2^27 B of KV per sequence. A step of B sequences
    takes t(B) = (W + B·K)/e + s for some bandwidth e and fixed time s ≥ 0, so aggregate tokens/s at
    B = 16 over B = 1 is 16·t(1)/t(16) = 16·(W + K + e·s)/(W + 16K + e·s), which lies between
    16·(W + K)/(W + 16K) = 11.49 (s = 0) and 16 (K = 0). Reading the weights once per sequence
    instead would give about 1."""
    one, _ = decode_tokens_per_s(LLAMA8, GPU, Workload(context=1024, batch=1), 5e9, 2**27)
    many, _ = decode_tokens_per_s(LLAMA8, GPU, Workload(context=1024, batch=16), 5e9, 16 * 2**27)
    assert 11.49 < many / one < 16


def test_huge_batch_is_compute_bound():
    """4096 sequences at context 16: a step is a 4096-row matmul of 2 × 6,979,588,096 matmul FLOP per
    token (8,030,261,248 parameters less the 2 × 128,256 × 4096 embedding and output), so aggregate
    tokens/s ≤ 165e12 / 13.96e9 = 11,820 (datasheet peak), while the memory roofline alone would
    allow ~300,000. llama.cpp's own prefill, the same matmul, ran at 7,139 t/s (pp512, Q4_K_M): the
    estimate lies between half of that and the peak."""
    tps, formula = decode_tokens_per_s(LLAMA8, GPU, Workload(context=16, batch=4096), 5e9, 4096 * 2**21,
                                       scheme="Q4_K_M")
    assert 3_570 < tps <= 11_820
    assert "compute-bound" in formula


def test_moe_reads_only_active_experts():
    """Mixtral 8x7B: 46,702,792,704 parameters, of which the 6 unused experts of 8 are
    6 × 32 layers × 3 × 4096 × 14336 = 33,822,867,456, leaving 12,879,925,248 active (27.58 %).
    Decoding a 28e9 B file reads 28e9 × 0.2758 = 7.72e9 B per token, so tokens/s ≤ 1008e9 / 7.72e9
    = 130.5 (roofline) and > 1008e9 / 28e9 = 36.0 (reading the whole file at peak bandwidth)."""
    mixtral = preset_architecture("mixtral-8x7b")
    tps, _ = decode_tokens_per_s(mixtral, GPU, Workload(context=512), 28e9, 0)
    assert 36.0 < tps < 130.5


def test_prefill_against_a_longer_published_prompt():
    """Calibrated on pp512 (7,138.99 t/s), the 4090 estimate for pp4096 must land near the published
    5,265.68 t/s. Causal attention adds 2 × 32 × 4096 × 4096 FLOP per token at 4096 against 2 × 32 ×
    512 × 4096 at 512; llama.cpp without flash attention loses more than that (softmax over the
    materialised KQ), so the estimate is faster than measured: within 30 %."""
    secs, formula = prefill_seconds(LLAMA8, GPU, Workload(context=4096), "Q4_K_M")
    assert 4096 / secs == pytest.approx(5265.68, rel=0.30)
    assert "achieved in prefill" in formula
