"""KV cache sizes per runtime (llama-kv-cache.cpp, transformers DynamicCache, vLLM blocks)."""

from planner.estimator import Workload
from planner.estimator.memory import kv_cache_bytes, llama_cpp_kv_cells
from planner.presets import preset_architecture

LLAMA31_8B = preset_architecture("llama-3.1-8b")
GiB = 2**30


def test_llama31_8b_f16_8192_is_one_gib_everywhere():
    # 2 (K,V) × 32 layers × 8 kv_heads × 128 head_dim × 8192 tokens × 2 bytes
    assert 2 * 32 * 8 * 128 * 8192 * 2 == GiB
    for runtime in ("llama.cpp", "transformers", "vllm"):
        assert kv_cache_bytes(LLAMA31_8B, Workload(runtime=runtime, context=8192))[0] == GiB


def test_quantized_kv_types_use_ggml_block_sizes():
    q8 = kv_cache_bytes(LLAMA31_8B, Workload(context=8192, kv_dtype="q8_0"))[0]
    q4 = kv_cache_bytes(LLAMA31_8B, Workload(context=8192, kv_dtype="q4_0"))[0]
    assert q8 == GiB // 2 * 34 // 32 == 570_425_344
    assert q4 == GiB // 2 * 18 // 32 == 301_989_888


def test_llama_cpp_pads_context_to_256():
    assert llama_cpp_kv_cells(LLAMA31_8B, Workload(context=1000)) == 1024
    assert kv_cache_bytes(LLAMA31_8B, Workload(context=1000))[0] == 2 * 32 * 8 * 128 * 1024 * 2
    # transformers keeps exactly the tokens it has seen
    assert kv_cache_bytes(LLAMA31_8B, Workload(runtime="transformers", context=1000))[0] == 2 * 32 * 8 * 128 * 1000 * 2


def test_llama_cpp_parallel_sequences_pad_each_stream():
    # n_ctx = pad(3 × 1000, 256) = 3072; n_ctx_seq = pad(3072 / 3, 256) = 1024 per stream
    assert llama_cpp_kv_cells(LLAMA31_8B, Workload(context=1000, batch=3)) == 3072
    # 3 × 300 = 900 -> pad 1024; 1024 // 3 = 341 -> pad 512 per stream -> 1536 cells
    assert llama_cpp_kv_cells(LLAMA31_8B, Workload(context=300, batch=3)) == 1536


def test_smollm2_kv_matches_llama_cpp_log():
    # llama-cpp-python 0.3.36, n_ctx=512: "CPU KV buffer size = 11.25 MiB"
    arch = preset_architecture("smollm2-135m")
    assert kv_cache_bytes(arch, Workload(context=512))[0] == 11_796_480 == int(11.25 * 2**20)


def test_transformers_batch_multiplies():
    one = kv_cache_bytes(LLAMA31_8B, Workload(runtime="transformers", context=4096))[0]
    four = kv_cache_bytes(LLAMA31_8B, Workload(runtime="transformers", context=4096, batch=4))[0]
    assert four == 4 * one == 2 * GiB


def test_gemma2_sliding_layers_capped_in_transformers_but_not_llama_cpp():
    arch = preset_architecture("gemma-2-9b")
    per_token_layer = 2 * 8 * 256 * 2  # K+V × kv_heads × head_dim × 2 B
    hf = kv_cache_bytes(arch, Workload(runtime="transformers", context=8192))[0]
    assert hf == per_token_layer * (21 * 4096 + 21 * 8192)
    # llama-cpp-python leaves swa_full = true: every layer gets the full context
    cpp = kv_cache_bytes(arch, Workload(runtime="llama.cpp", context=8192))[0]
    assert cpp == per_token_layer * 42 * 8192


def test_vllm_rounds_to_blocks_of_16():
    got = kv_cache_bytes(LLAMA31_8B, Workload(runtime="vllm", context=1000, batch=2))[0]
    assert got == 2 * 32 * 8 * 128 * 1008 * 2 * 2


def test_formula_has_the_numbers():
    _, formula = kv_cache_bytes(preset_architecture("smollm2-135m"), Workload(runtime="transformers", context=8192))
    assert formula == "2 × 1 batch × 8,192 seq × 30 layers × 3 kv_heads × 64 head_dim × 2 B = 188,743,680 B"
