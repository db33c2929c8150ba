"""Weight bytes and effective bits per weight for each scheme family.

Expected numbers are derived by hand in each docstring from the published layouts (llama.cpp
ggml-common.h, bitsandbytes, GPTQModel, AutoAWQ) or measured from the real tools (bottom of file).
Llama-2-7B: 6,738,415,616 parameters (HF safetensors); its block linears are 32 layers ×
(4 × 4096×4096 + 2 × 4096→11008 + 11008→4096) = 6,476,005,376 weights; the other 262,410,240
(two 32000×4096 embeddings + 65 norms × 4096) stay 16-bit = 524,820,480 B in every non-GGUF scheme.
"""

import pytest

from planner.estimator import Architecture, EstimatorError
from planner.estimator.ggml_types import bits_per_weight, tensor_bytes
from planner.estimator.schemes import parse_scheme, weights_bytes_and_formula
from planner.presets import preset_architecture

LLAMA2_7B = preset_architecture("llama-2-7b")


def weights(name, arch=LLAMA2_7B):
    return weights_bytes_and_formula(arch, parse_scheme(name))[0]


def square_layer(width, heads):
    """One Llama layer whose seven block linears are all width×width, with a 1-token tied embedding:
    the only non-linear weights are 4 × width (embedding, output norm, two layer norms)."""
    return Architecture.from_config({"model_type": "llama", "hidden_size": width, "num_hidden_layers": 1, "num_attention_heads": heads,
                                     "intermediate_size": width, "vocab_size": 1, "tie_word_embeddings": True})


@pytest.mark.parametrize("t,bpw", [("Q4_0", 4.5), ("Q4_1", 5.0), ("Q5_0", 5.5), ("Q5_1", 6.0), ("Q8_0", 8.5),
                                   ("Q2_K", 2.625), ("Q3_K", 3.4375), ("Q4_K", 4.5), ("Q5_K", 5.5),
                                   ("Q6_K", 6.5625), ("IQ4_XS", 4.25), ("IQ4_NL", 4.5), ("IQ3_XXS", 3.0625),
                                   ("IQ3_S", 3.4375), ("IQ2_XS", 2.3125), ("IQ2_XXS", 2.0625)])
def test_ggml_type_bits_per_weight(t, bpw):
    # llama.cpp ggml.c type_traits: 8 × type_size / blck_size
    assert bits_per_weight(t) == bpw


def test_q6_k_tensor_bytes():
    """Q6_K block_q6_k is 256 weights in 210 B (ggml-common.h static_assert): a 4096×4096 tensor
    is 4096 rows × 16 blocks × 210 B = 13,762,560 B."""
    assert tensor_bytes("Q6_K", (4096, 4096)) == 13_762_560


def test_float_schemes():
    """2 or 4 bytes per parameter of Llama-2-7B's 6,738,415,616."""
    assert weights("FP32") == 26_953_662_464
    assert weights("FP16") == weights("BF16") == 13_476_831_232


def test_nf4_is_4_5_bits_on_linears():
    """bitsandbytes quantize_4bit(blocksize=64): 4-bit codes + one fp32 absmax per 64 weights.
    Linears: 6,476,005,376 / 2 = 3,238,002,688 B codes + 6,476,005,376 / 64 × 4 = 404,750,336 B absmax
    (4.5 bpw); + 524,820,480 B 16-bit rest = 4,167,573,504 B. FP4 (INT4) has the same layout."""
    assert weights("NF4") == 4_167_573_504
    assert weights("INT4") == 4_167_573_504


def test_nf4_double_quant_bits():
    """QLoRA double quant: absmax stored as uint8 (1 B per 64 weights = 101,187,584 B) plus one
    fp32 second-level absmax per 256 of those (every linear has a multiple of 64 × 256 weights:
    395,264 × 4 = 1,581,056 B); codes 3,238,002,688 B. Linears = 3,340,771,328 B
    = 4 + 8/64 + 32/(64·256) ≈ 4.127 bpw."""
    assert weights("NF4-DQ") - 524_820_480 == 3_340_771_328


def test_llm_int8_adds_fp32_row_scales():
    """LLM.int8: 1 B per linear weight (6,476,005,376) + fp32 SCB per output row: 32 layers ×
    (4 × 4096 + 2 × 11008 + 4096) = 1,359,872 rows × 4 = 5,439,488 B; + 524,820,480 B = 7,006,265,344 B."""
    assert weights("INT8") == 7_006_265_344


def test_gptq_4bit_g128_single_matrix_layout():
    """GPTQModel 4-bit g128 buffers of one 4096×4096 linear: qweight 4096·4096·4/8 = 8,388,608 B,
    qzeros 32 groups × 4096 × 4/8 = 65,536 B, scales 32 × 4096 × 2 B (fp16) = 262,144 B,
    g_idx 4096 × 4 B (int32) = 16,384 B → 8,732,672 B = 4.1640625 bpw.
    The layer below has seven such linears: 7 × 8,732,672 + 4 × 4096 × 2 B = 61,161,472 B."""
    layer = square_layer(4096, 32)
    assert weights("GPTQ-4bit-g128", layer) == 61_161_472
    assert (weights("GPTQ-4bit-g128", layer) - 4 * 4096 * 2) * 8 / (7 * 4096 * 4096) == 4.1640625


def test_gptq_groups_round_up_for_width_576():
    """SmolLM2's width 576 is 4.5 groups of 128 → 5 groups (GPTQModel: ceil(in / group_size)).
    576×576 at 4 bit: qweight 72 × 576 int32 = 165,888 B, qzeros 5 × 72 int32 = 1,440 B,
    scales 5 × 576 fp16 = 5,760 B, g_idx 576 int32 = 2,304 B → 175,392 B (4 groups would give 174,816).
    Seven of them + 4 × 576 × 2 B = 1,232,352 B."""
    assert weights("GPTQ-4bit-g128", square_layer(576, 9)) == 1_232_352


def test_gptq_and_awq_totals_for_llama2_7b():
    """Per layer, (4096×4096, 4096→11008, 11008→4096; ⌈in/128⌉ = 32, 32, 86 groups):
      GPTQ 4-bit: 8,732,672 / 23,441,408 / 23,469,056 B → 4× + 2× + 1× = 105,282,560 B
      GPTQ 8-bit: 17,186,816 / 46,161,920 / 46,189,568 B → 207,260,672 B
      GPTQ 3-bit (qweight ⌈in·3/32⌉ rows, qzeros ⌈out·3/32⌉ cols): 6,619,136 / 17,761,280 /
                  17,788,928 B → 79,788,032 B
      AWQ 4-bit (GPTQ 4-bit without g_idx): 8,716,288 / 23,425,024 / 23,425,024 B → 105,140,224 B
    × 32 layers + 524,820,480 B. AWQ linears: 4 + (4 + 16) / 128 = 4.15625 bpw exactly."""
    assert weights("GPTQ-4bit-g128") == 3_893_862_400
    assert weights("GPTQ-8bit-g128") == 7_157_161_984
    assert weights("GPTQ-3bit-g128") == 3_078_037_504
    assert weights("AWQ-4bit-g128") == 3_889_307_648
    assert (weights("AWQ-4bit-g128") - 524_820_480) * 8 / 6_476_005_376 == 4.15625


def test_exl2_head_at_6_bits():
    """EXL2 4.0 bpw: linears 6,476,005,376 × 4/8 = 3,238,002,688 B; lm_head 32000 × 4096 at 6 bpw
    = 98,304,000 B; embedding + norms 131,338,240 × 2 B = 262,676,480 B → 3,598,983,168 B."""
    assert weights("EXL2-4.0bpw") == 3_598_983_168


def test_fp8_per_channel_scales():
    """FP8 E4M3: 1 B per linear weight + fp32 scale per output channel: the same bytes as LLM.int8."""
    assert weights("FP8") == 7_006_265_344


def test_unknown_scheme_names_the_field():
    for bad in ("Q4_K_X", "GPTQ-5bit-g128", "AWQ-3bit-g128", "EXL2-9.0bpw", "GPTQ-4bit-g100"):
        with pytest.raises(EstimatorError) as info:
            parse_scheme(bad)
        assert info.value.field == "schemes"


# transformers 5.23 + bitsandbytes 0.50.2 on CPU, a randomly initialised SmolLM2-135M-shaped
# LlamaForCausalLM loaded with BitsAndBytesConfig: bytes of parameters + buffers + quant_state absmax
# (+ state2.absmax) + SCB. Includes 256 B of rotary inv_freq buffers that are not weights.
# (model.get_memory_footprint() leaves the absmax/SCB statistics out.)
MEASURED_BNB_SMOLLM2 = {"NF4": 116_413_312, "NF4-DQ": 111_462_832, "INT8": 163_484_032}


def test_bitsandbytes_bytes_match_transformers_for_smollm2():
    smol = preset_architecture("smollm2-135m")
    for name, measured in MEASURED_BNB_SMOLLM2.items():
        assert weights_bytes_and_formula(smol, parse_scheme(name))[0] == measured - 256, name


# GPTQModel 7.7.0 TorchLinear(bits, group_size=128, desc_act=False) buffers (qweight, qzeros, scales,
# g_idx) summed over SmolLM2-135M's 30 × 7 block linears, + 16-bit embeddings and norms.
MEASURED_GPTQ_SMOLLM2 = {2: 85_856_256, 3: 99_239_616, 4: 112_622_976, 8: 166_156_416}


def test_gptq_bytes_match_gptqmodel_buffers_for_smollm2():
    smol = preset_architecture("smollm2-135m")
    for bits, measured in MEASURED_GPTQ_SMOLLM2.items():
        assert weights_bytes_and_formula(smol, parse_scheme(f"GPTQ-{bits}bit-g128"))[0] == measured
