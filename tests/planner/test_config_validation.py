"""Hostile or broken configs raise EstimatorError naming the field."""

import pytest

from planner.estimator import Architecture, EstimatorError
from planner.presets import PRESETS

GOOD = PRESETS["smollm2-135m"]["config"]


def _field_of(cfg):
    with pytest.raises(EstimatorError) as info:
        Architecture.from_config(cfg)
    return info.value.field


def test_not_a_dict():
    assert _field_of(["hidden_size", 576]) == "config"
    assert _field_of("{}") == "config"


@pytest.mark.parametrize("field", ["hidden_size", "num_hidden_layers", "num_attention_heads",
                                   "intermediate_size", "vocab_size"])
def test_missing_required_field(field):
    cfg = {k: v for k, v in GOOD.items() if k != field}
    assert _field_of(cfg) == field


@pytest.mark.parametrize("value", ["576", 576.5, 0, -5, True, [576], float("nan")])
def test_non_integer_or_negative_hidden_size(value):
    assert _field_of(dict(GOOD, hidden_size=value)) == "hidden_size"


def test_integral_float_is_accepted():
    assert Architecture.from_config(dict(GOOD, hidden_size=576.0)).hidden_size == 576


@pytest.mark.parametrize("field,value", [("hidden_size", 2_000_000), ("num_hidden_layers", 10_001),
                                         ("vocab_size", 10**9), ("intermediate_size", 10**8)])
def test_absurd_sizes(field, value):
    assert _field_of(dict(GOOD, **{field: value})) == field


def test_params_beyond_1e15():
    cfg = dict(GOOD, hidden_size=1_000_000, num_hidden_layers=2000, num_attention_heads=1000,
               num_key_value_heads=1000, intermediate_size=4_000_000)
    assert _field_of(cfg) == "total_params"


def test_kv_heads_must_divide_heads():
    assert _field_of(dict(GOOD, num_key_value_heads=4)) == "num_key_value_heads"


def test_heads_must_divide_hidden_without_head_dim():
    assert _field_of(dict(GOOD, num_attention_heads=7, num_key_value_heads=7)) == "num_attention_heads"


def test_tie_word_embeddings_must_be_bool():
    assert _field_of(dict(GOOD, tie_word_embeddings="yes")) == "tie_word_embeddings"


def test_moe_needs_experts_per_token_not_above_experts():
    cfg = dict(PRESETS["mixtral-8x7b"]["config"], num_experts_per_tok=9)
    assert _field_of(cfg) == "num_experts_per_tok"


def test_error_is_data():
    err = EstimatorError("hidden_size", "must be an integer")
    assert err.to_dict() == {"field": "hidden_size", "message": "must be an integer"}
    assert str(err) == "hidden_size: must be an integer"


def test_unknown_model_type_is_refused_naming_it_never_read_as_another():
    with pytest.raises(EstimatorError, match="'brand_new_lm': the estimator does not model") as info:
        Architecture.from_config(dict(GOOD, model_type="brand_new_lm"))
    assert info.value.field == "model_type"
    with pytest.raises(EstimatorError, match="model_type: is required"):
        Architecture.from_config({k: v for k, v in GOOD.items() if k != "model_type"})


def test_unknown_multimodal_wrapper_is_refused_even_with_a_known_text_model():
    with pytest.raises(EstimatorError, match="'got_ocr2': a multimodal architecture"):
        Architecture.from_config({"model_type": "got_ocr2", "text_config": dict(GOOD, model_type="qwen2")})


def test_unknown_gguf_architecture_is_refused():
    meta = {"general.architecture": "rwkv7", "rwkv7.block_count": 2, "rwkv7.embedding_length": 64,
            "rwkv7.attention.head_count": 1, "rwkv7.feed_forward_length": 128, "rwkv7.vocab_size": 100}
    with pytest.raises(EstimatorError, match="'rwkv7': the estimator does not model"):
        Architecture.from_gguf_metadata(meta)
    known = dict(meta, **{"general.architecture": "llama"})
    known = {k.replace("rwkv7.", "llama."): v for k, v in known.items()}
    assert not Architecture.from_gguf_metadata(known).notes
