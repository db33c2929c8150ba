"""KV cache sizes per runtime (llama-kv-cache.cpp, transformers DynamicCache, vLLM blocks)."""

from planner.estimator import Architecture, Workload
from planner.estimator.memory import kv_cache_bytes, llama_cpp_kv_cells
from planner.presets import preset_architecture
from tests.planner import published_configs

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
    # cache_utils.py DynamicSlidingWindowLayer: "Only cache the last `self.sliding_window - 1` tokens"
    assert hf == per_token_layer * (21 * 4095 + 21 * 8192)
    # llama-cpp-python leaves swa_full = true: every layer gets the full context
    cpp = kv_cache_bytes(arch, Workload(runtime="llama.cpp", context=8192))[0]
    assert cpp == per_token_layer * 42 * 8192


def test_llama_cpp_python_default_keeps_a_full_size_swa_cache():
    import llama_cpp
    assert llama_cpp.llama_context_default_params().swa_full is True
    assert Workload().swa_full is True


GEMMA3_27B = Architecture.from_config(published_configs.GEMMA3_27B)
GEMMA3_ROW = 2 * 16 * 128 * 2          # K+V × 16 kv_heads × 128 head_dim × 2 B per layer per token


def test_gemma3_27b_kv_at_32k_swa_full_on_and_off():
    """62 layers, 52 local (window 1024) and 10 global. swa_full on: every layer 32,768 cells.
    Off (llama-kv-cache-iswa.cpp): SWA cells = pad(1024 + 512 ubatch, 256) = 1536, so
    10 × 32,768 + 52 × 1536 = 407,552 layer-cells, 4.98× less than 62 × 32,768 = 2,031,616 —
    the "about 5× less KV" llama-server (swa_full off by default) shows against a full SWA cache."""
    full = kv_cache_bytes(GEMMA3_27B, Workload(context=32768, swa_full=True))[0]
    iswa = kv_cache_bytes(GEMMA3_27B, Workload(context=32768, swa_full=False))[0]
    assert full == GEMMA3_ROW * 62 * 32768 == 16_642_998_272
    assert iswa == GEMMA3_ROW * (10 * 32768 + 52 * 1536) == 3_338_665_984
    assert round(full / iswa, 1) == 5.0


def test_gemma3_27b_kv_at_32k_in_transformers_and_vllm():
    # transformers: sliding layers keep window − 1 = 1023 tokens; vLLM: the window in 16-token blocks
    hf = kv_cache_bytes(GEMMA3_27B, Workload(runtime="transformers", context=32768))[0]
    assert hf == GEMMA3_ROW * (10 * 32768 + 52 * 1023) == 3_120_136_192
    vllm = kv_cache_bytes(GEMMA3_27B, Workload(runtime="vllm", context=32768))[0]
    assert vllm == GEMMA3_ROW * (10 * 32768 + 52 * 1024)


def test_swa_cache_is_never_bigger_than_the_context():
    # pad(min(512, 1024 + 512), 256): at a short context the SWA cache is the base size
    a = kv_cache_bytes(GEMMA3_27B, Workload(context=512, swa_full=False))[0]
    assert a == GEMMA3_ROW * 62 * 512


def test_tiny_gemma3_and_gpt_oss_kv_match_llama_cpp_log():
    """bench/swa_ground_truth.py: random tiny models converted by the vendored
    convert_hf_to_gguf.py and loaded by llama-cpp-python 0.3.36 at n_ctx 4096 (n_ubatch 512).
    Gemma 3 (6 layers, 2 KV heads × 64, window 300): swa_full on logged a non-SWA cache of
    2.00 MiB (4096 cells, 1 layer) + SWA 10.00 MiB (4096 cells, 5 layers); off: 2.00 MiB +
    2.50 MiB (1024 cells, 5 layers). gpt-oss (4 layers, 2 KV heads × 64, window 128): on
    4.00 + 4.00 MiB (4096 cells, 2 + 2 layers); off 4.00 + 0.75 MiB (768 cells, 2 layers).
    transformers counted 28,711,936 and 27,542,816 parameters."""
    common = {"vocab_size": 49152, "hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2,
              "head_dim": 64, "max_position_embeddings": 4096, "tie_word_embeddings": False}
    gemma = Architecture.from_config({**common, "model_type": "gemma3_text", "intermediate_size": 512,
                                      "num_hidden_layers": 6, "sliding_window": 300})
    gpt = Architecture.from_config({**common, "model_type": "gpt_oss", "intermediate_size": 128,
                                    "num_hidden_layers": 4, "num_local_experts": 4, "num_experts_per_tok": 2,
                                    "sliding_window": 128})
    MiB = 2**20
    assert kv_cache_bytes(gemma, Workload(context=4096, swa_full=True))[0] == 12 * MiB
    assert kv_cache_bytes(gemma, Workload(context=4096, swa_full=False))[0] == int(4.5 * MiB)
    assert kv_cache_bytes(gpt, Workload(context=4096, swa_full=True))[0] == 8 * MiB
    assert kv_cache_bytes(gpt, Workload(context=4096, swa_full=False))[0] == int(4.75 * MiB)
    assert gemma.total_params == 28_711_936
    assert gpt.total_params == 27_542_816


def test_gpt_oss_20b_kv_at_32k():
    """12 of 24 layers slide over 128 tokens; 8 KV heads × 64: 2048 B per layer per token.
    llama.cpp swa_full off: 12 × 32,768 + 12 × pad(128 + 512, 256) = 768 cells."""
    a = Architecture.from_config(published_configs.GPT_OSS_20B)
    row = 2 * 8 * 64 * 2
    assert kv_cache_bytes(a, Workload(context=32768))[0] == row * 24 * 32768
    assert kv_cache_bytes(a, Workload(context=32768, swa_full=False))[0] == row * (12 * 32768 + 12 * 768)
    assert kv_cache_bytes(a, Workload(runtime="transformers", context=32768))[0] == row * (12 * 32768 + 12 * 127)


def test_mistral_v01_window_is_ignored_by_llama_cpp_but_not_transformers():
    """mistralai/Mistral-7B-v0.1 config.json: sliding_window 4096 on every layer. llama.cpp loads
    it as plain llama (no iSWA cache: full size even with swa_full off); transformers caches 4095."""
    a = Architecture.from_config({"model_type": "mistral", "vocab_size": 32000, "hidden_size": 4096,
                                  "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                                  "num_key_value_heads": 8, "max_position_embeddings": 32768,
                                  "sliding_window": 4096})
    row = 2 * 8 * 128 * 2
    assert kv_cache_bytes(a, Workload(context=16384, swa_full=False))[0] == row * 32 * 16384
    assert kv_cache_bytes(a, Workload(runtime="transformers", context=16384))[0] == row * 32 * 4095
    v03 = Architecture.from_config({"model_type": "mistral", "vocab_size": 32768, "hidden_size": 4096,
                                    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                                    "num_key_value_heads": 8, "sliding_window": None})
    assert kv_cache_bytes(v03, Workload(runtime="transformers", context=16384))[0] == row * 32 * 16384


def test_vllm_rounds_to_blocks_of_16():
    got = kv_cache_bytes(LLAMA31_8B, Workload(runtime="vllm", context=1000, batch=2))[0]
    assert got == 2 * 32 * 8 * 128 * 1008 * 2 * 2


def test_formula_has_the_numbers():
    _, formula = kv_cache_bytes(preset_architecture("smollm2-135m"), Workload(runtime="transformers", context=8192))
    assert formula == "2 × 1 batch × 8,192 seq × 30 layers × 3 kv_heads × 64 head_dim × 2 B = 188,743,680 B"


DEEPSEEK_V3 = Architecture.from_config(published_configs.DEEPSEEK_V3)


def test_deepseek_v3_mla_caches_the_latent_in_llama_cpp():
    """llama-kv-cache.cpp: one K tensor per layer of n_embd_k_gqa = kv_lora_rank + n_rot =
    512 + 64 elements per cell, and no V tensor (`has_v = !is_mla()`): 61 × 576 × 4096 × 2 B.
    The per-head layout would be 2 × 61 × 128 heads × 192 × 4096 × 2 B = 24.6 GB, 85× more."""
    assert kv_cache_bytes(DEEPSEEK_V3, Workload(context=4096))[0] == 61 * 576 * 4096 * 2 == 287_834_112
    q8 = kv_cache_bytes(DEEPSEEK_V3, Workload(context=4096, kv_dtype="q8_0"))[0]
    assert q8 == 61 * 576 * 4096 * 34 // 32


def test_deepseek_v3_mla_latent_in_transformers_and_vllm():
    # transformers 5.23 caches kv_nope (1 × 512) as keys and k_rot (1 × 64) as values; vLLM's
    # MLAAttentionSpec pages one 576-wide head with no V. Same bytes, no 256 padding.
    assert kv_cache_bytes(DEEPSEEK_V3, Workload(runtime="transformers", context=1000))[0] == 61 * 576 * 1000 * 2
    assert kv_cache_bytes(DEEPSEEK_V3, Workload(runtime="vllm", context=1000))[0] == 61 * 576 * 1008 * 2


def test_tiny_deepseek_v3_kv_matches_llama_cpp_log():
    """A random DeepSeek-V3 (hidden 256, 4 layers, kv_lora_rank 64, rope 16) converted by the
    vendored convert_hf_to_gguf.py and loaded by llama-cpp-python 0.3.36 at n_ctx 4096 logged
    "llama_kv_cache: size = 2.50 MiB (4096 cells, 4 layers, 1/1 seqs), K (f16): 2.50 MiB,
    V (f16): 0.00 MiB" = 4 × 80 × 4096 × 2 B; its GGUF held 70 tensors, 27,345,816 elements."""
    tiny = Architecture.from_config({
        "model_type": "deepseek_v3", "vocab_size": 49152, "hidden_size": 256, "intermediate_size": 512,
        "moe_intermediate_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "n_shared_experts": 1,
        "n_routed_experts": 8, "num_experts_per_tok": 2, "first_k_dense_replace": 1, "kv_lora_rank": 64,
        "q_lora_rank": 96, "qk_nope_head_dim": 32, "qk_rope_head_dim": 16, "v_head_dim": 32,
        "num_nextn_predict_layers": 1, "max_position_embeddings": 4096})
    assert kv_cache_bytes(tiny, Workload(context=4096))[0] == int(2.5 * 2**20)
    assert len(tiny.tensors()) == 70
    assert sum(n for _, _, n in tiny.tensors()) == 27_345_816


def test_tiny_llama4_kv_matches_llama_cpp_log():
    """A random Llama 4 text model (hidden 256, 4 layers, 2 KV heads × 64, MoE every 2nd layer)
    converted and loaded the same way at n_ctx 4096 logged a non-SWA cache of 2.00 MiB (1 layer)
    and a full-size SWA cache of 6.00 MiB (3 chunked layers; llama-cpp-python keeps swa_full)."""
    tiny = Architecture.from_config({
        "model_type": "llama4_text", "vocab_size": 49152, "hidden_size": 256, "intermediate_size": 128,
        "intermediate_size_mlp": 512, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 64, "num_local_experts": 4, "num_experts_per_tok": 1,
        "interleave_moe_layer_step": 2, "max_position_embeddings": 4096})
    assert kv_cache_bytes(tiny, Workload(context=4096))[0] == 8 * 2**20
    assert len(tiny.tensors()) == 47                      # as in the converted GGUF
    assert tiny.total_params == 27_726_080                # transformers' count of the same model


def test_legacy_deepseek_gguf_gets_a_per_head_cache_in_llama_cpp():
    """Without key_length_mla the file is not is_mla() (llama-hparams.cpp), so llama-kv-cache.cpp
    allocates K [key_length × n_head_kv] and V [value_length × n_head_kv] per layer:
    27 layers × 16 heads × (192 + 128) × 4096 cells × 2 B for DeepSeek-V2-Lite."""
    legacy = Architecture.from_gguf_metadata(published_configs.LEGACY_DEEPSEEK_V2_LITE_GGUF)
    assert kv_cache_bytes(legacy, Workload(context=4096))[0] == 27 * 16 * (192 + 128) * 4096 * 2
    current = Architecture.from_config(published_configs.DEEPSEEK_V2_LITE)
    assert kv_cache_bytes(current, Workload(context=4096))[0] == 27 * (512 + 64) * 4096 * 2


def test_swa_full_must_be_a_bool():
    import pytest
    from planner.estimator import EstimatorError
    with pytest.raises(EstimatorError, match="swa_full"):
        Workload(swa_full="no")


# bench/moe_mla_ground_truth.py's tiny Llama 4 (config.json as transformers 5.23 saved it, shape keys)
TINY_LLAMA4 = {
    "model_type": "llama4_text", "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 64, "intermediate_size": 128, "intermediate_size_mlp": 512,
    "num_local_experts": 4, "num_experts_per_tok": 1, "interleave_moe_layer_step": 2, "moe_layers": [1, 3],
    "attention_chunk_size": 8192, "no_rope_layers": [1, 1, 1, 0], "vocab_size": 49152,
    "max_position_embeddings": 4096, "tie_word_embeddings": False, "use_qk_norm": True,
    "layer_types": ["chunked_attention", "chunked_attention", "chunked_attention", "full_attention"],
}


def test_llama4_chunked_layers_match_llama_cpp_log():
    """Its Q4_K_M GGUF loaded by llama-cpp-python 0.3.36 at n_ctx 16384 (2026-12-02):
    swa_full off: "non-SWA KV cache, size = 16384 cells … 8.00 MiB (1 layers)" + "SWA KV cache,
    size = 8704 cells … 12.75 MiB (3 layers)"; swa_full on: 8.00 + 24.00 MiB (16384 cells, 3 layers)."""
    arch = Architecture.from_config(TINY_LLAMA4)
    assert arch.swa_layers == (0, 1, 2) and arch.sliding_window == 8192
    assert kv_cache_bytes(arch, Workload(context=16384, swa_full=False))[0] == int((8.00 + 12.75) * 2**20)
    assert kv_cache_bytes(arch, Workload(context=16384, swa_full=True))[0] == int((8.00 + 24.00) * 2**20)
