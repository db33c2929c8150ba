"""Weight bytes and effective bits per weight for each scheme family."""

import pytest

from planner.estimator.ggml_types import GGML_TYPE_SIZES, bits_per_weight, tensor_bytes
from planner.estimator.schemes import parse_scheme, weights_bytes_and_formula
from planner.presets import preset_architecture

LLAMA2_7B = preset_architecture("llama-2-7b")
P = 6_738_415_616
# block linears: 32 layers × (4 × 4096² + 3 × 4096 × 11008)
Q = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008)
R = P - Q  # embeddings, lm_head, norms stay 16-bit
ROWS = 32 * (4 * 4096 + 2 * 11008 + 4096)  # output rows of the block linears


def weights(name):
    return weights_bytes_and_formula(LLAMA2_7B, parse_scheme(name))[0]


@pytest.mark.parametrize("t,bpw", [("Q4_0", 4.5), ("Q4_1", 5.0), ("Q5_0", 5.5), ("Q5_1", 6.0), ("Q8_0", 8.5),
                                   ("Q2_K", 2.625), ("Q3_K", 3.4375), ("Q4_K", 4.5), ("Q5_K", 5.5),
                                   ("Q6_K", 6.5625), ("IQ4_XS", 4.25), ("IQ4_NL", 4.5), ("IQ3_XXS", 3.0625),
                                   ("IQ3_S", 3.4375), ("IQ2_XS", 2.3125), ("IQ2_XXS", 2.0625)])
def test_ggml_type_bits_per_weight(t, bpw):
    # llama.cpp ggml.c type_traits: 8 × type_size / blck_size
    assert bits_per_weight(t) == bpw


def test_ggml_block_sizes_from_ggml_common():
    assert GGML_TYPE_SIZES["Q4_K"] == (256, 144)
    assert GGML_TYPE_SIZES["Q8_0"] == (32, 34)
    assert tensor_bytes("Q6_K", (4096, 4096)) == 4096 * 16 * 210


def test_float_schemes():
    assert weights("FP32") == 4 * P
    assert weights("FP16") == weights("BF16") == 2 * P


def test_nf4_is_4_5_bits_on_linears():
    # bitsandbytes: 4-bit codes + fp32 absmax per block of 64
    assert weights("NF4") == Q // 2 + Q // 64 * 4 + 2 * R
    assert (weights("NF4") - 2 * R) * 8 / Q == 4.5
    assert weights("INT4") == weights("NF4")  # FP4 has the same layout


def test_nf4_double_quant_bits():
    linear = weights("NF4-DQ") - 2 * R
    assert linear == Q // 2 + Q // 64 + (Q // 64 // 256) * 4
    assert linear * 8 / Q == pytest.approx(4 + 8 / 64 + 32 / (64 * 256), abs=1e-6)


def test_llm_int8_adds_fp32_row_scales():
    assert weights("INT8") == Q + ROWS * 4 + 2 * R


def test_gptq_4bit_g128_single_matrix_layout():
    # one 4096×4096 linear: qweight 4096·4096·4/8, qzeros+scales 32 groups × 4096 × (0.5 + 2) B, g_idx 4096 × 4
    per = 4096 * 4096 // 2 + 32 * 4096 * 4 // 8 + 32 * 4096 * 2 + 4096 * 4
    assert per == 8_732_672
    assert per * 8 / (4096 * 4096) == 4.1640625


def test_gptq_and_awq_totals_for_llama2_7b():
    def gptq(bits, group, g_idx):
        total = 2 * R
        for din, dout in [(4096, 4096)] * 4 + [(4096, 11008)] * 2 + [(11008, 4096)]:
            groups = -(-din // group)
            total += 32 * (din * dout * bits // 8 + groups * dout * bits // 8 + groups * dout * 2 + (din * 4 if g_idx else 0))
        return total
    assert weights("GPTQ-4bit-g128") == gptq(4, 128, True)
    assert weights("GPTQ-8bit-g128") == gptq(8, 128, True)
    assert weights("GPTQ-3bit-g128") == gptq(3, 128, True)
    assert weights("AWQ-4bit-g128") == gptq(4, 128, False)
    # AWQ on linears: 4 + (4 + 16) / 128 bits
    assert (weights("AWQ-4bit-g128") - 2 * R) * 8 / Q == pytest.approx(4 + 20 / 128, rel=1e-3)


def test_exl2_head_at_6_bits():
    head = 4096 * 32000
    assert weights("EXL2-4.0bpw") == Q * 4 // 8 + head * 6 // 8 + (R - head) * 2


def test_fp8_per_channel_scales():
    assert weights("FP8") == Q + ROWS * 4 + 2 * R


def test_unknown_scheme_names_the_field():
    from planner.estimator import EstimatorError
    for bad in ("Q4_K_X", "GPTQ-5bit-g128", "AWQ-3bit-g128", "EXL2-9.0bpw", "GPTQ-4bit-g100"):
        with pytest.raises(EstimatorError) as info:
            parse_scheme(bad)
        assert info.value.field == "schemes"


def test_gptq_groups_round_up_for_width_576():
    # SmolLM2-135M: in = 576 is 4.5 groups of 128 -> 5 groups (GPTQModel uses ceil(in / group_size))
    smol = preset_architecture("smollm2-135m")
    # attn_q 576×576 at 4 bit: qweight 72×576 int32, qzeros 5×72 int32, scales 5×576 fp16, g_idx 576 int32
    assert 72 * 576 * 4 + 5 * 72 * 4 + 5 * 576 * 2 + 576 * 4 == 175_392
    mats = [(576, 576), (576, 192), (576, 192), (576, 576), (576, 1536), (576, 1536), (1536, 576)]
    expected = 2 * (49152 * 576 + 576 + 30 * 2 * 576)  # embeddings + norms in fp16
    for din, dout in mats:
        groups = -(-din // 128)
        expected += 30 * (din * 4 // 32 * dout * 4 + groups * (dout * 4 // 32) * 4 + groups * dout * 2 + din * 4)
    got = weights_bytes_and_formula(smol, parse_scheme("GPTQ-4bit-g128"))[0]
    assert got == expected


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
