"""Parameter counts computed from configs must equal the published safetensors totals."""

import pytest

from planner.estimator import Architecture
from planner.presets import PRESETS, preset_architecture

# Totals as shown by the Hugging Face safetensors metadata of each repo.
PUBLISHED_TOTALS = {
    "llama-2-7b": 6_738_415_616,
    "llama-2-13b": 13_015_864_320,
    "llama-2-70b": 68_976_648_192,
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.1-405b": 405_853_388_800,
    "llama-3.2-1b": 1_235_814_400,
    "llama-3.2-3b": 3_212_749_824,
    "mistral-7b-v0.3": 7_248_023_552,
    "mistral-nemo-12b": 12_247_782_400,
    "mixtral-8x7b": 46_702_792_704,
    "qwen2.5-0.5b": 494_032_768,
    "qwen2.5-1.5b": 1_543_714_304,
    "qwen2.5-3b": 3_085_938_688,
    "qwen2.5-7b": 7_615_616_512,
    "qwen2.5-14b": 14_770_033_664,
    "qwen2.5-32b": 32_763_876_352,
    "qwen2.5-72b": 72_706_203_648,
    "gemma-2-2b": 2_614_341_888,
    "gemma-2-9b": 9_241_705_984,
    "gemma-2-27b": 27_227_128_320,
    "phi-3-mini": 3_821_079_552,
    "smollm2-135m": 134_515_008,
    "smollm2-360m": 361_821_120,
    "smollm2-1.7b": 1_711_376_384,
}


@pytest.mark.parametrize("key,expected", sorted(PUBLISHED_TOTALS.items()))
def test_preset_total_matches_published_count(key, expected):
    assert preset_architecture(key).total_params == expected


def test_every_preset_builds_and_has_a_name():
    for key, preset in PRESETS.items():
        arch = preset_architecture(key)
        assert arch.name == preset["name"]
        assert arch.total_params > 100_000_000


def test_mixtral_8x7b_active_params_are_two_of_eight_experts():
    arch = preset_architecture("mixtral-8x7b")
    # 32 layers × (attention 41,943,040 + 2 experts × 176,160,768 + router 32,768 + norms 8,192)
    # + 2 × 131,072,000 embeddings + 4,096 final norm
    assert arch.active_params == 12_879_925_248
    assert arch.expert_params == 32 * 8 * 3 * 4096 * 14336


def test_qwen2_counts_qkv_bias_but_no_o_bias():
    names = {name for name, _, _ in preset_architecture("qwen2.5-7b").tensors()}
    assert {"blk.0.attn_q.bias", "blk.0.attn_k.bias", "blk.0.attn_v.bias"} <= names
    assert "blk.0.attn_output.bias" not in names


def test_gemma2_head_dim_is_not_hidden_over_heads():
    arch = preset_architecture("gemma-2-9b")
    shapes = {name: shape for name, shape, _ in arch.tensors()}
    assert shapes["blk.0.attn_q.weight"] == (3584, 16 * 256)
    assert shapes["blk.0.attn_output.weight"] == (4096, 3584)
    assert "output.weight" not in shapes  # tied embeddings


def test_smollm2_tensor_list_matches_gguf_layout():
    tensors = preset_architecture("smollm2-135m").tensors()
    assert len(tensors) == 272  # as in SmolLM2-135M-Instruct.Q4_1.gguf
    shapes = {name: shape for name, shape, _ in tensors}
    assert shapes["token_embd.weight"] == (576, 49152)
    assert shapes["blk.0.attn_k.weight"] == (576, 192)
    assert shapes["blk.0.ffn_down.weight"] == (1536, 576)
    assert shapes["blk.29.ffn_norm.weight"] == (576,)


def test_llama_attention_bias_adds_o_bias():
    cfg = dict(PRESETS["llama-2-7b"]["config"], attention_bias=True)
    with_bias = Architecture.from_config(cfg).total_params
    assert with_bias - 6_738_415_616 == 32 * 4 * 4096


def test_llama31_rope_freqs_is_in_gguf_but_not_in_param_count():
    arch = preset_architecture("llama-3.1-8b")
    rope = [t for t in arch.tensors() if t[0] == "rope_freqs.weight"]
    assert rope == [("rope_freqs.weight", (64,), 64)]
    assert arch.total_params == 8_030_261_248


def test_qwen2_moe_with_shared_expert_matches_published_total():
    # Qwen/Qwen1.5-MoE-A2.7B config.json (shape fields); published total 14,315,784,192
    cfg = {"model_type": "qwen2_moe", "hidden_size": 2048, "num_hidden_layers": 24, "num_attention_heads": 16,
           "num_key_value_heads": 16, "intermediate_size": 5632, "moe_intermediate_size": 1408,
           "shared_expert_intermediate_size": 5632, "num_experts": 60, "num_experts_per_tok": 4,
           "vocab_size": 151936, "max_position_embeddings": 8192, "tie_word_embeddings": False}
    arch = Architecture.from_config(cfg)
    assert arch.arch == "qwen2moe"
    assert arch.total_params == 14_315_784_192
    # 56 of 60 routed experts idle per token: 24 layers × 56 × 3 × 2048 × 1408
    assert arch.total_params - arch.active_params == 24 * 56 * 3 * 2048 * 1408
