"""The vLLM fit: --max-model-len, --gpu-memory-utilization, --tensor-parallel-size, KV blocks, concurrency.

Derived by hand in each docstring from vLLM's rules (vllm_fit.py cites them): KV pool per GPU =
memory × utilization − weights/TP − activation peak − 1 GiB non-torch; a block is 16 tokens;
num_gpu_blocks = pool // page_size // layers.
"""

import pytest

from planner.estimator import HARDWARE_PROFILES, EstimatorError, Hardware, Workload, estimate
from planner.estimator.architecture import Architecture
from planner.estimator.fit import fit_estimate
from planner.estimator.vllm_fit import blocks_per_request, page_bytes, tp_sizes, vllm_fit, vllm_fit_estimate
from planner.estimator.workload import MAX_CONTEXT
from planner.presets import preset_architecture
from tests.planner.hybrid_configs import GRANITE_4_H_SMALL
from tests.planner.published_configs import DEEPSEEK_V3

LLAMA8 = preset_architecture("llama-3.1-8b")
LLAMA70 = preset_architecture("llama-3.1-70b")
H100 = HARDWARE_PROFILES["h100-80gb"]


def test_page_size_is_vllms_per_token_kv_times_16():
    """Llama 3.1 8B caches 2 (K, V) × 8 kv heads × 128 × 2 B = 4,096 B per token per layer
    (128 KiB per token over 32 layers, the figure usually quoted); a 16-token block is 65,536 B.
    DeepSeek-V3's MLA latent is 512 + 64 = 576 elements per token per layer (DeepSeek-V2 §2.1.2),
    no V and not split across ranks: 16 × 576 × 2 = 18,432 B."""
    wl = Workload(runtime="vllm")
    assert page_bytes(LLAMA8, wl, 1) == 65_536
    assert page_bytes(LLAMA8, wl, 2) == 32_768          # 4 kv heads per rank
    assert page_bytes(LLAMA8, wl, 16) == 8_192          # 8 kv heads replicated: 1 per rank
    assert page_bytes(LLAMA8, Workload(runtime="vllm", kv_dtype="fp8"), 1) == 32_768
    ds = Architecture.from_config(DEEPSEEK_V3)
    assert page_bytes(ds, wl, 1) == page_bytes(ds, wl, 8) == 18_432


def test_llama_8b_bf16_on_an_h100_at_0_9():
    """weights 8,030,261,248 × 2 = 16,060,522,496; activation peak (8,192 batched tokens) =
    8,192 × (4·4096 + 4096 + 2·1024 + 3·14336) × 2 + 256 × 128,256 × 4 = 1,205,075,968;
    pool = int(80 GiB × 0.9) − 16,060,522,496 − 1,205,075,968 − 1,073,741,824 = 58,970,071,040;
    blocks = 58,970,071,040 // 65,536 // 32 = 28,119. Four requests of 65,536 tokens need
    4 × 4,096 blocks per layer (6.86x); 131,072 would give 3.43x < 4."""
    f = vllm_fit(LLAMA8, H100, Workload(runtime="vllm", context=8192, batch=4), repo="meta-llama/Llama-3.1-8B")
    assert (f.scheme, f.tensor_parallel_size, f.max_model_len) == ("BF16", 1, 65_536)
    assert f.kv_pool_per_gpu_bytes == 58_970_071_040 and f.num_gpu_blocks == 28_119
    assert f.max_concurrency == 6.86 and f.fits
    assert f.command == ("vllm serve meta-llama/Llama-3.1-8B --max-model-len 65536 --gpu-memory-utilization 0.9 "
                         "--tensor-parallel-size 1 --max-num-seqs 4")


def test_70b_on_two_h100s_splits_weights_and_kv_heads():
    """BF16 70,553,706,496 params × 2 / 2 ranks = 70,553,706,496 B per GPU; activation peak
    8,192 × (4·8192 + 8192 + 2·1024 + 3·28672) × 2 + 256 × 128,256 × 4 = 2,245,263,360;
    pool = 77,309,411,328 − 70,553,706,496 − 2,245,263,360 − 1,073,741,824 = 3,436,699,648;
    page (4 kv heads per rank) 32,768 B: blocks = 3,436,699,648 // 32,768 // 80 = 1,310,
    i.e. one request of 16,384 tokens (1,024 blocks per layer, 1.28x)."""
    f = vllm_fit(LLAMA70, H100.with_devices(2), Workload(runtime="vllm"))
    assert (f.scheme, f.tensor_parallel_size, f.num_gpu_blocks, f.max_model_len) == ("BF16", 2, 1_310, 16_384)
    assert f.weights_per_gpu_bytes == 70_553_706_496 and f.max_concurrency == 1.28
    assert "--tensor-parallel-size 2" in f.command


def test_falls_back_to_fp8_then_4_bit_and_flags_them():
    """70B on one H100: BF16 (141 GB) cannot fit; FP8 (72,683,241,472 B with its 16-bit embeddings)
    leaves a 1,307,164,672 B pool = 249 blocks per layer, under the 256 one 4,096-token request needs,
    so a 4-bit AWQ checkpoint is chosen."""
    f = vllm_fit(LLAMA70, H100, Workload(runtime="vllm"))
    assert f.scheme == "AWQ-4bit-g128" and f.fits
    assert any("published in that format" in r for r in f.reasons)
    fp8 = vllm_fit(LLAMA8, HARDWARE_PROFILES["rtx-4090"], Workload(runtime="vllm", context=32768), scheme="FP8")
    assert "--quantization fp8" in fp8.command


def test_sliding_window_layers_hold_only_window_plus_batched_tokens():
    """SlidingWindowSpec.max_memory_usage_bytes: cdiv(window − 1 + 8,192, 16) blocks; Gemma 2 9B
    (window 4,096, 21 of 42 layers local) at 32,768: 21 × 2,048 + 21 × cdiv(12,287, 16) = 21 × 2,048 + 21 × 768."""
    gemma = preset_architecture("gemma-2-9b")
    assert blocks_per_request(gemma, 32_768) == 21 * 2_048 + 21 * 768
    assert blocks_per_request(LLAMA8, 32_768) == 32 * 2_048


def test_tensor_parallel_sizes_divide_the_heads():
    assert tp_sizes(LLAMA8, 8) == [1, 2, 4, 8]
    assert tp_sizes(preset_architecture("smollm2-135m"), 8) == [1]   # 9 heads


def test_refusals_name_the_field():
    with pytest.raises(EstimatorError) as exc:
        vllm_fit(LLAMA8, HARDWARE_PROFILES["m2-max-64gb"], Workload(runtime="vllm"))
    assert exc.value.field == "hardware"
    with pytest.raises(EstimatorError) as exc:
        vllm_fit(LLAMA8, H100, Workload(runtime="vllm"), scheme="Q4_K_M")
    assert exc.value.field == "fit_scheme"
    est = estimate(LLAMA8, HARDWARE_PROFILES["cpu-ddr5-64gb"], Workload())
    assert vllm_fit_estimate(est) is None
    assert vllm_fit_estimate(estimate(LLAMA8, H100, Workload(runtime="transformers"), schemes=["BF16"])) is None
    beside = vllm_fit_estimate(estimate(LLAMA8, H100, Workload(), schemes=["Q4_K_M"]), "meta-llama/Llama-3.1-8B")
    assert beside.command.startswith("vllm serve meta-llama/Llama-3.1-8B ")   # next to the llama-server one


def test_gpt_oss_is_served_in_its_own_mxfp4_format():
    f = vllm_fit(preset_architecture("gpt-oss-20b"), HARDWARE_PROFILES["rtx-4090"], Workload(runtime="vllm"),
                 repo="openai/gpt-oss-20b")
    assert f.scheme == "MXFP4" and f.fits and "--quantization" not in f.command
    assert f.command.startswith("vllm serve openai/gpt-oss-20b --max-model-len ")


def test_a_model_too_big_for_the_gpu_says_vllm_cannot_start():
    """gpt-oss-20b (20.9 B parameters, 12.8 GiB even in its own MXFP4) on one 16 GB T4 at 32k:
    vLLM has no system-RAM offload, so no scheme leaves room for one whole request's KV cache."""
    f = vllm_fit(preset_architecture("gpt-oss-20b"), HARDWARE_PROFILES["t4"], Workload(runtime="vllm", context=32768))
    assert not f.fits and f.max_concurrency < 1
    assert "larger than the available KV cache memory" in f.reasons[0]
    assert any("closest to fitting" in r for r in f.reasons)


def test_too_long_a_context_suggests_the_length_that_fits_and_the_trained_limit():
    """Qwen3-30B-A3B (30.5 B, 40,960 trained positions) on one 24 GB card at 64k: no vLLM format holds
    one request, a shorter --max-model-len does, and 64k is past the trained positions."""
    f = vllm_fit(preset_architecture("qwen3-30b-a3b"), HARDWARE_PROFILES["rtx-4090"],
                 Workload(runtime="vllm", context=65536))
    assert not f.fits
    assert any("does fit with --max-model-len 32,768" in r for r in f.reasons)
    assert any("VLLM_ALLOW_LONG_MAX_MODEL_LEN=1" in r for r in f.reasons)


def test_llama_4_scout_max_model_len_stays_within_the_workload_limit():
    """Llama 4 Scout declares 10,485,760 positions, beyond the 10,000,000 a Workload takes: the
    search stops there and says so, on 8 H100s and on a machine where every length fits."""
    scout = preset_architecture("llama-4-scout")
    for runtime in ("vllm", "llama.cpp"):   # llama.cpp plans on a GPU show the vLLM fit beside them
        f = vllm_fit_estimate(estimate(scout, H100.with_devices(8), Workload(runtime=runtime, context=32768),
                                       ["BF16", "Q4_K_M"]))
        assert f.fits and 32768 <= f.max_model_len <= MAX_CONTEXT
    big = Hardware.custom(name="big", memory_gb=65536, bandwidth_gbs=8000, tflops=1000)
    f = vllm_fit(scout, big, Workload(runtime="vllm", context=32768))
    assert f.max_model_len == MAX_CONTEXT and "--max-model-len 10000000 " in f.command
    assert any("10,485,760 positions are beyond the longest context a workload may ask for" in r for r in f.reasons)


def test_a_model_without_attention_layers_is_refused_not_divided_by_zero():
    """A Granite 4 config with no layer list is all Mamba-2 (transformers' default): no layer has a
    KV cache, and vLLM's blocks are sized per attention layer. The vLLM fit refuses by name; the
    estimate and the llama.cpp fit plan the recurrent state alone."""
    layout = {k: v for k, v in GRANITE_4_H_SMALL.items() if k != "layer_types"}
    mamba_only = Architecture.from_config(layout)
    assert mamba_only.kv_layers == 0
    with pytest.raises(EstimatorError) as exc:
        vllm_fit(mamba_only, H100, Workload(runtime="vllm"))
    assert exc.value.field == "model" and "no attention layers" in exc.value.message
    est = estimate(mamba_only, HARDWARE_PROFILES["rtx-4090"], Workload(context=32768), ["F16", "Q4_K_M"])
    assert vllm_fit_estimate(est) is None
    assert all(r.kv_cache_bytes == 0 and r.recurrent_state_bytes > 0 for r in est.rows)
    assert 0 < est.row("F16").gpu_layers < 40   # layers offloaded: each with its state, none with KV
    assert fit_estimate(est).devices[0]["kv_bytes"] == 0


@pytest.mark.parametrize("preset", ["deepseek-v3.2", "glm-5"])
def test_vllm_is_refused_where_its_dsa_indexer_cache_was_never_measured(preset):
    """DSA models keep a second cache of indexer keys beside the MLA latent in vLLM; nobody measured
    its size here, so neither the estimate nor the vLLM fit gives a figure that leaves it out."""
    arch = preset_architecture(preset)
    hw = H100.with_devices(8)
    with pytest.raises(EstimatorError) as refused:
        estimate(arch, hw, Workload(runtime="vllm", context=8192))
    assert refused.value.field == "runtime" and "DSA indexer keys" in str(refused.value)
    with pytest.raises(EstimatorError, match="DSA indexer keys"):
        vllm_fit(arch, hw, Workload(runtime="vllm", context=8192))
    assert estimate(arch, hw, Workload(runtime="llama.cpp", context=8192)).rows[0].kv_cache_bytes > 0
