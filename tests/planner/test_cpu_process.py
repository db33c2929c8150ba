"""CPU totals against measured peak RSS (bench/estimator_accuracy.py, llama-cpp-python 0.3.36 and
transformers 5.23 on the dev box). Each llama.cpp run loaded SmolLM2-135M-Instruct requantized from
the demo GGUF and filled its whole context; VmHWM in bytes as the child read it from /proc."""

import pytest

from planner.estimator import HARDWARE_PROFILES, Workload, estimate
from planner.estimator.cpu_process import cpu_work_bytes
from planner.presets import preset_architecture

SMOL = preset_architecture("smollm2-135m")
CPU = HARDWARE_PROFILES["cpu-2core-24gb"]

# (scheme, context, KV type) -> measured peak RSS, bytes
LLAMA_RSS = {("F16", 512, "f16"): 379_498_496, ("F16", 8192, "f16"): 786_530_304,
             ("Q8_0", 2048, "q8_0"): 262_340_608, ("Q8_0", 8192, "f16"): 660_553_728}
# transformers loading the demo as a bf16 safetensors folder, 512-token forward (2026-12-02 runs;
# an earlier session's runs read about 60 MiB more in every row: see cpu_process.py)
HF_RSS = {"FP32": 1_605_562_368, "BF16": 1_177_804_800, "INT8": 1_534_689_280, "NF4": 1_302_085_632}


@pytest.mark.parametrize("key", sorted(LLAMA_RSS))
def test_llama_cpp_total_is_within_10_percent_of_peak_rss(key):
    scheme, ctx, kv = key
    wl = Workload(context=ctx, kv_dtype=kv, flash_attn=kv != "f16")
    total = estimate(SMOL, CPU, wl, schemes=[scheme]).rows[0].total_bytes
    assert abs(total - LLAMA_RSS[key]) <= 0.10 * LLAMA_RSS[key]


@pytest.mark.parametrize("scheme", sorted(HF_RSS))
def test_transformers_total_is_within_10_percent_of_peak_rss(scheme):
    total = estimate(SMOL, CPU, Workload(runtime="transformers", context=512), schemes=[scheme]).rows[0].total_bytes
    assert abs(total - HF_RSS[scheme]) <= 0.10 * HF_RSS[scheme]


def test_work_buffer_and_touched_compute():
    """ggml_graph_plan: V·KQ converts the f32 scores to f16, 8,192 × 512 × 9 heads × 2 B; none with
    flash attention. Generation touches 1 logits row, not the 512 llama.cpp reserves."""
    assert cpu_work_bytes(SMOL, Workload(context=8192))[0] == 75_497_472
    assert cpu_work_bytes(SMOL, Workload(context=8192, flash_attn=True))[0] == 0
    row = estimate(SMOL, CPU, Workload(context=512), schemes=["Q8_0"]).rows[0]
    assert row.compute_bytes == 103_022_592   # llama.cpp's log: 98.25 MiB
    assert row.compute_resident_bytes < row.compute_bytes // 4
    gpu = estimate(SMOL, HARDWARE_PROFILES["rtx-4090"], Workload(context=512), schemes=["Q8_0"]).rows[0]
    assert gpu.compute_resident_bytes == gpu.compute_bytes
