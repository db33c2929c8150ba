"""Every text-generation model type of the pinned transformers, with its default config and with a
randomized variant: the planner's parameter count equals what transformers builds on the meta
device (total, vision/audio apart, and per layer), or the planner refuses naming the architecture
and why. No silent mismatch, no crash."""

import pytest

from planner.estimator import Architecture
from planner.model_definition import causal_lm_model_types, gguf_refusal, model_definition, undeclared_tensors
from tests.planner.architecture_sweep import default_config, randomized_config, seed_of, verdict

MODEL_TYPES = causal_lm_model_types()


def _assert_exact_or_refused(model_type: str, cfg: dict) -> None:
    v = verdict(cfg)
    assert v.status in ("exact", "refused"), f"{model_type}: {v.status}: {v.reason}"
    if v.status == "refused":
        # the refusal names the architecture (model type or transformers' class) and what is wrong
        assert model_type in v.reason or (v.class_name and v.class_name in v.reason), v


def test_the_sweep_covers_every_text_generation_model_type():
    assert len(MODEL_TYPES) > 150
    assert {"llama", "qwen3_next", "deepseek_v3", "gpt_oss", "gemma3_text", "granitemoehybrid"} <= set(MODEL_TYPES)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_default_config_is_exact_or_refused(model_type):
    _assert_exact_or_refused(model_type, default_config(model_type))


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_randomized_config_is_exact_or_refused(model_type):
    _assert_exact_or_refused(model_type, randomized_config(default_config(model_type), seed_of(model_type)))


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_gguf_tensor_names_are_the_ones_llama_cpp_declares_for_the_architecture(model_type):
    cfg = default_config(model_type)
    if verdict(cfg).status != "exact":
        pytest.skip("refused: no plan")
    definition = model_definition(cfg)
    arch = Architecture.from_config(definition.config)
    if arch.gguf_unsupported or gguf_refusal(definition, cfg):
        pytest.skip("no GGUF rows")
    assert undeclared_tensors(arch) == []
