"""Sampling parameters: one schema for /v1 and the playground; left-out fields keep the engines'
defaults, each bad field is named in its error."""

import pytest
from pydantic import ValidationError

from engines.base import SamplingParams
from runtime.openai_api import ChatRequest, CompletionRequest
from runtime.params import SamplingFields, sampling_params
from runtime.playground_api import PlaygroundSampling


def test_left_out_fields_keep_the_engine_defaults():
    params = sampling_params(SamplingFields(max_tokens=32))
    assert params.max_tokens == 32 and params.temperature == SamplingParams().temperature and params.seed is None
    assert sampling_params(SamplingFields(), max_tokens_default=64).max_tokens == 64
    assert sampling_params(SamplingFields(max_tokens=5), max_tokens=9).max_tokens == 9   # max_completion_tokens


def test_stop_is_one_string_or_a_list():
    assert sampling_params(SamplingFields(stop="\n")).stop == ("\n",)   # a newline is a stop sequence
    assert sampling_params(SamplingFields(stop=["x", "END"])).stop == ("x", "END")
    assert sampling_params(SamplingFields(stop="")).stop == ()


def test_logit_bias_becomes_token_id_pairs():
    assert sampling_params(SamplingFields(logit_bias={"5": -100, "17": 2.5})).logit_bias == ((5, -100.0), (17, 2.5))


@pytest.mark.parametrize("field,value", [
    ("temperature", 3), ("top_p", -0.1), ("top_k", 1.5), ("max_tokens", 0), ("seed", "abc"), ("seed", 2**32),
    ("repeat_penalty", True), ("stop", [1]), ("stop", ["a", "b", "c", "d", "e"]), ("stop", [""]),
    ("logit_bias", {"x": 1}), ("logit_bias", {"1": 101}), ("logit_bias", {"1": True}),
])
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValidationError) as info:
        SamplingFields(**{field: value})
    assert [e["loc"] for e in info.value.errors()] == [(field,)]


@pytest.mark.parametrize("schema", [ChatRequest, CompletionRequest, PlaygroundSampling])
def test_every_route_takes_the_same_sampling_fields_and_bounds(schema):
    for name, shared in SamplingFields.model_fields.items():
        if schema is CompletionRequest and name == "max_tokens":
            continue   # completions may score a prompt: max_tokens 0 with echo
        assert schema.model_fields[name].metadata == shared.metadata, name


def test_the_playground_asks_for_up_to_20_alternatives():
    assert PlaygroundSampling(logprobs=20).logprobs == 20
    with pytest.raises(ValidationError):
        PlaygroundSampling(logprobs=21)
    with pytest.raises(ValidationError):
        PlaygroundSampling(warp=9)   # an unknown parameter is refused, not ignored
