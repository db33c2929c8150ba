"""llama.cpp partial offload: how many layers fit on the device, the rest in system RAM."""

from planner.estimator import HARDWARE_PROFILES, Architecture, Hardware, Workload, estimate
from planner.estimator.architecture import layer_index
from planner.estimator.gguf_quant import gguf_tensor_plan
from planner.presets import preset_architecture
from tests.planner.hybrid_configs import QWEN3_NEXT_80B

LLAMA70 = preset_architecture("llama-3.1-70b")


def _layer_bytes(arch, ftype):
    per = [0] * arch.n_layers
    for name, _, b in gguf_tensor_plan(arch, ftype):
        if layer_index(name) is not None:
            per[layer_index(name)] += b
    return per


def test_llama70b_q4_k_m_on_a_4090_offloads_the_largest_number_of_layers_that_fit():
    row = estimate(LLAMA70, HARDWARE_PROFILES["rtx-4090"], Workload(context=4096), ["Q4_K_M"]).rows[0]
    assert row.fits is False and row.n_layers == 80
    layers = _layer_bytes(LLAMA70, "Q4_K_M")
    kv_layer = row.kv_cache_bytes // 80
    non_layer = row.weights_bytes - sum(layers)
    budget = row.capacity_bytes - row.overhead_bytes - row.compute_bytes - non_layer
    k = row.gpu_layers
    on_gpu = sum(layers[80 - k:]) + k * kv_layer               # llama.cpp offloads the last layers
    assert on_gpu <= budget < on_gpu + layers[80 - k - 1] + kv_layer
    assert k == 41
    assert row.runs_with_offload is True  # the other 39 layers fit in 64 GiB host RAM


def test_offloaded_decode_shows_no_speed_where_the_whole_gpu_one_does():
    """Both cards have published llama-bench figures; the layers left in system RAM are read at a speed
    nobody measured for that machine, so the offloaded row shows none and says so."""
    wl = Workload(context=4096)
    partial = estimate(LLAMA70, HARDWARE_PROFILES["rtx-4090"], wl, ["Q4_K_M"]).rows[0]
    full = estimate(LLAMA70, HARDWARE_PROFILES["a100-80gb"], wl, ["Q4_K_M"]).rows[0]
    assert full.gpu_layers == 80 and full.fits and full.decode_tokens_per_s > 0
    assert partial.gpu_layers < 80 and partial.decode_tokens_per_s is None
    assert "B a step are read from system RAM" in partial.decode_withheld


def test_smaller_quant_puts_more_layers_on_gpu():
    rows = {r.scheme: r for r in estimate(LLAMA70, HARDWARE_PROFILES["rtx-4090"], Workload(context=4096),
                                             ["Q8_0", "Q4_K_M", "Q2_K", "IQ2_XS"]).rows}
    assert rows["Q8_0"].gpu_layers < rows["Q4_K_M"].gpu_layers < rows["Q2_K"].gpu_layers
    assert rows["IQ2_XS"].gpu_layers == 80 and rows["IQ2_XS"].fits


def test_cpu_kind_runs_every_layer_on_cpu_and_other_runtimes_report_none():
    arch = preset_architecture("smollm2-135m")
    cpu = estimate(arch, HARDWARE_PROFILES["cpu-2core-24gb"], Workload(), ["Q4_K_M"]).rows[0]
    assert cpu.gpu_layers == 0 and cpu.n_layers == 30 and cpu.fits
    hf = estimate(arch, HARDWARE_PROFILES["rtx-4090"], Workload(runtime="transformers"), ["FP16"]).rows[0]
    assert hf.gpu_layers is None and hf.n_layers is None


def test_too_big_for_host_ram_too():
    small_host = Hardware.custom(name="tiny", memory_gb=8, bandwidth_gbs=300, tflops=30, ram_gb=16)
    row = estimate(LLAMA70, small_host, Workload(context=4096), ["Q4_K_M"]).rows[0]
    assert row.fits is False and row.runs_with_offload is False
    assert 0 < row.gpu_layers < 80


def test_a_hybrid_offloads_kv_with_its_attention_layers_and_state_with_its_recurrent_layers():
    """Qwen3-Next at 32,768: the KV (805,306,368 B) belongs to the 12 attention layers (3, 7, …, 47),
    67,108,864 B each; the recurrent state (79,036,416 B) to the 36 DeltaNet layers, 2,195,456 B
    each (test_recurrent_state pins both). A layer costs its weights plus its own share only."""
    arch = Architecture.from_config(QWEN3_NEXT_80B)
    row = estimate(arch, HARDWARE_PROFILES["rtx-4090"], Workload(context=32768), ["Q4_K_M"]).rows[0]
    assert row.fits is False and (row.kv_cache_bytes, row.recurrent_state_bytes) == (805_306_368, 79_036_416)
    layers = _layer_bytes(arch, "Q4_K_M")
    cache = [67_108_864 if i % 4 == 3 else 2_195_456 for i in range(48)]
    non_layer = row.weights_bytes - sum(layers)
    budget = row.capacity_bytes - row.overhead_bytes - row.compute_bytes - non_layer
    k = row.gpu_layers
    on_gpu = sum(layers[48 - k:]) + sum(cache[48 - k:])
    assert on_gpu <= budget < on_gpu + layers[48 - k - 1] + cache[48 - k - 1]
    assert k == 21
    assert "67,108,864 KV on each of 12 attention layers, 2,195,456 recurrent state on each of 36" in \
        row.formulas["gpu_layers"]
