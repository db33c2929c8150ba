"""MXFP4, FP8 with 128×128 block scales and NVFP4; which tensors each method leaves in 16 bit;
bits per weight over the quantized weights and over the whole model.

Expected numbers are the published checkpoint sizes, hand derivations from the published block
layouts (in each docstring), or measured with the real tools (bench/bnb_moe_ground_truth.py).
"""

import pytest

from planner.estimator import HARDWARE_PROFILES, Architecture, Workload, estimate
from planner.estimator.quantized_tensors import kept_roles, quantized_matrices
from planner.estimator.schemes import bits_per_weight, high_precision_tensors, parse_scheme, weights_bytes_and_formula
from planner.presets import preset_architecture

GiB = 2**30
LLAMA2_7B = preset_architecture("llama-2-7b")
GPT_OSS_20B = preset_architecture("gpt-oss-20b")


def weights(name, arch=LLAMA2_7B):
    return weights_bytes_and_formula(arch, parse_scheme(name))[0]


def square_layer(width, heads):
    """One Llama layer of seven width×width linears and a 1-token tied embedding (4 × width other weights)."""
    return Architecture.from_config({"model_type": "llama", "hidden_size": width, "num_hidden_layers": 1, "num_attention_heads": heads,
                                     "intermediate_size": width, "vocab_size": 1, "tie_word_embeddings": True})


def test_mxfp4_is_the_gpt_oss_checkpoint():
    """gpt-oss model card (arXiv:2508.10925) Table 1, checkpoint size: 12.8 GiB (20b), 60.8 GiB (120b):
    MXFP4 experts (17 B per 32 weights), everything else BF16."""
    assert round(weights("MXFP4", GPT_OSS_20B) / GiB, 1) == 12.8
    assert round(weights("MXFP4", preset_architecture("gpt-oss-120b")) / GiB, 1) == 60.8
    assert bits_per_weight(GPT_OSS_20B, parse_scheme("MXFP4")).quantized == 4.25


def test_fp8_block_scales_one_fp32_per_128x128_tile():
    """A 4096×4096 linear: 16,777,216 B of E4M3 + 32 × 32 tiles × 4 B = 16,781,312 B;
    seven of them + 4 × 4096 × 2 B = 117,501,952 B = 8 + 32/16384 bpw on the linears."""
    layer = square_layer(4096, 32)
    assert weights("FP8-128x128", layer) == 117_501_952
    assert bits_per_weight(layer, parse_scheme("FP8-128x128")).quantized == 8 + 32 / 16384


def test_deepseek_kv_b_is_scaled_as_one_matrix():
    """DeepSeek-V3 stores kv_b_proj as one 512 → 128 × (128 + 128) matrix (4 × 256 tiles), not as
    the GGUF's per-head attn_k_b / attn_v_b halves."""
    mats = {(r, i, o) for r, i, o, _ in quantized_matrices(preset_architecture("deepseek-v3"), "fp8-block")}
    assert ("attn_kv_b.weight", 512, 32768) in mats and not any("attn_k_b" in m[0] for m in mats)


def test_nvfp4_is_4_5_bits_plus_two_fp32_per_matrix():
    """4096×4096: 8,388,608 B codes + 4096 × 256 FP8 scales (1,048,576 B) + 2 fp32 tensor scales
    = 9,437,192 B; seven + 32,768 B = 66,093,112 B."""
    assert weights("NVFP4", square_layer(4096, 32)) == 66_093_112


# transformers 5.23 + bitsandbytes 0.50.2 on CPU, a random 2-layer Qwen3-MoE (8 experts) loaded
# with BitsAndBytesConfig: parameters + absmax (+ nested absmax) + SCB, less 256 B of rotary
# buffers (bench/bnb_moe_ground_truth.py). Experts and router stay BF16.
MEASURED_BNB_TINY_MOE = {"NF4": 4_427_008 - 256, "NF4-DQ": 4_408_672 - 256, "INT8": 4_605_184 - 256}
TINY_MOE = dict(model_type="qwen3_moe", hidden_size=256, intermediate_size=512, moe_intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=64, num_experts=8,
                num_experts_per_tok=2, vocab_size=1024, max_position_embeddings=512, tie_word_embeddings=False)


@pytest.mark.parametrize("name", sorted(MEASURED_BNB_TINY_MOE))
def test_bitsandbytes_leaves_fused_experts_in_bf16(name):
    assert weights(name, Architecture.from_config(TINY_MOE)) == MEASURED_BNB_TINY_MOE[name]


EXPERTS = ("ffn_down_exps", "ffn_gate_exps", "ffn_up_exps")


@pytest.mark.parametrize("key,method,kept", [
    ("gpt-oss-20b", "bnb", {*EXPERTS, "ffn_gate_inp"}),
    ("gpt-oss-20b", "gptq", {"ffn_gate_inp"}),
    ("gpt-oss-20b", "mxfp4", {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate_inp"}),
    ("deepseek-v3", "fp8-block", {"ffn_gate_inp"}),
    ("qwen3-next-80b-a3b", "gptq", {"ffn_gate_inp", "ffn_gate_inp_shexp", "ssm_ba"}),
    ("qwen3-next-80b-a3b", "nvfp4", {"ffn_gate_inp", "ffn_gate_inp_shexp"}),
    ("qwen3-next-80b-a3b", "bnb", {*EXPERTS, "ffn_gate_inp"}),
    ("granite-4.0-h-tiny", "awq", {"ffn_gate_inp"}),
    ("llama-4-scout", "fp8", {"ffn_gate_inp"}),
    ("llama-3.1-8b", "bnb", set()),
])
def test_layer_weights_each_method_keeps_in_16_bit(key, method, kept):
    assert set(kept_roles(preset_architecture(key), method)) == kept


def test_kept_tensors_are_named_in_the_row():
    kept = high_precision_tensors(GPT_OSS_20B, parse_scheme("NF4"))
    assert "routed experts: 16-bit" in kept and "router: 16-bit" in kept
    assert "attention: 16-bit" in high_precision_tensors(GPT_OSS_20B, parse_scheme("MXFP4"))


@pytest.mark.parametrize("name,per_weight", [
    ("NF4", 4.5),                                # 4 + 32/64
    ("INT4", 4.5),
    ("NF4-DQ", 3_340_771_328 * 8 / 6_476_005_376),  # 4 + 8/64 + 32/(64·256) ≈ 4.127 (test_bits_per_weight)
    ("AWQ-4bit-g64", 4 + (16 + 4) / 64),         # fp16 scale + 4-bit packed zero per 64
    ("MXFP4", 4.25),                             # dense model: every block linear
    ("Q8_0", 8.5),                               # 34 B per 32 (output and token_embd are Q8_0 too)
    ("FP16", 16.0),
])
def test_bits_per_quantized_weight(name, per_weight):
    bits = bits_per_weight(LLAMA2_7B, parse_scheme(name))
    assert bits.quantized == pytest.approx(per_weight, abs=1e-12)
    assert bits.model == weights(name) * 8 / 6_738_415_616


def test_whole_model_bits_count_the_16_bit_tensors():
    """NF4 on Llama-2-7B: 4.5 on its 6,476,005,376 linear weights, 4,167,573,504 B × 8 /
    6,738,415,616 = 4.948 over the model (embeddings, lm_head and norms in 16 bit)."""
    bits = bits_per_weight(LLAMA2_7B, parse_scheme("NF4"))
    assert (bits.quantized_params, round(bits.model, 3)) == (6_476_005_376, 4.948)
    assert round(bits_per_weight(GPT_OSS_20B, parse_scheme("NF4")).model, 2) == 15.65  # experts stay BF16


def test_rows_carry_both_numbers():
    est = estimate(GPT_OSS_20B, HARDWARE_PROFILES["rtx-4090"], Workload(runtime="vllm"), ["MXFP4", "NF4"])
    mx, nf4 = est.rows
    assert (mx.bits_per_quantized_weight, round(mx.bits_per_weight, 2)) == (4.25, 5.26)
    assert nf4.bits_per_quantized_weight == 4.5
    assert "quantized weights" in nf4.formulas["bits_per_quantized_weight"]


def test_rule_of_thumb_explains_the_bf16_experts():
    est = estimate(GPT_OSS_20B, HARDWARE_PROFILES["a100-80gb"], Workload(runtime="transformers"), ["NF4"])
    assert "routed experts, router and norms at 16-bit" in est.rows[0].rule_of_thumb_note
