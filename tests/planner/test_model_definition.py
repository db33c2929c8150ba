"""A config's plan is checked against what transformers builds from it on the meta device: exact,
or refused naming the architecture and the two numbers; never read as another architecture."""

from dataclasses import replace

import pytest

from planner.estimator import Architecture, EstimatorError, HARDWARE_PROFILES, Workload, estimate
from planner.model_definition import (Definition, architecture_for_config, check_architecture, gguf_refusal,
                                      llama_cpp_convertible, model_definition)
from planner.presets import PRESETS

SMOLLM2 = {**PRESETS["smollm2-135m"]["config"], "architectures": ["LlamaForCausalLM"]}
SMOLLM2_TOTAL = 134_515_008   # HuggingFaceTB/SmolLM2-135M-Instruct, safetensors metadata


def test_a_known_config_is_planned_with_transformers_count_and_says_it_was_checked():
    definition = model_definition(SMOLLM2)
    assert (definition.class_name, definition.total_params, definition.non_text_params) == (
        "LlamaForCausalLM", SMOLLM2_TOTAL, 0)
    arch = architecture_for_config(SMOLLM2, name="SmolLM2")
    assert arch.total_params == SMOLLM2_TOTAL
    assert any("checked against transformers' LlamaForCausalLM" in n for n in arch.notes)
    assert arch.gguf_unsupported == ""


def test_a_repeat_plan_reuses_the_built_definition():
    assert model_definition(dict(SMOLLM2)) is model_definition(dict(SMOLLM2))


def test_defaults_a_config_json_leaves_out_are_the_config_class_defaults():
    # save_pretrained writes only what differs from the class defaults: Gemma's tied embedding
    # (GemmaConfig tie_word_embeddings=True) is not in such a file, and must not be counted twice
    cfg = {"model_type": "gemma", "hidden_size": 2048, "num_hidden_layers": 2, "num_attention_heads": 8,
           "num_key_value_heads": 1, "head_dim": 256, "intermediate_size": 16384, "vocab_size": 256000}
    definition = model_definition(cfg)
    assert definition.config["tie_word_embeddings"] is True
    assert architecture_for_config(cfg).total_params == definition.total_params


def test_an_unknown_model_type_is_refused_and_remote_code_never_runs():
    with pytest.raises(EstimatorError, match="'my_lab_lm' is not an architecture transformers .* knows"):
        architecture_for_config({"model_type": "my_lab_lm", "auto_map": {"AutoModelForCausalLM": "x.Y"},
                                 "hidden_size": 64})
    with pytest.raises(EstimatorError, match="model_type: is required"):
        architecture_for_config({"hidden_size": 64})


def test_an_architecture_transformers_builds_but_the_estimator_does_not_model_is_refused_with_its_count():
    cfg = {"model_type": "opt", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "ffn_dim": 128,
           "word_embed_proj_dim": 64, "vocab_size": 1000}
    with pytest.raises(EstimatorError, match="'opt': the estimator does not model") as info:
        architecture_for_config(cfg)
    assert "OPTForCausalLM has 262,272 parameters" in info.value.message


def test_a_count_that_differs_from_transformers_is_refused_naming_both():
    other = model_definition({**SMOLLM2, "vocab_size": 49_000})
    with pytest.raises(EstimatorError, match=r"counts 134,515,008 parameters where transformers' "
                                             r"LlamaForCausalLM has 134,427,456"):
        check_architecture(Architecture.from_config(SMOLLM2), other)


def test_a_layer_that_differs_is_refused_naming_it():
    # same total, parameters moved between layers: per-layer equality is checked too
    definition = model_definition(SMOLLM2)
    moved = list(definition.tensors)
    i = next(k for k, (name, _) in enumerate(moved) if name == "model.layers.0.input_layernorm.weight")
    j = next(k for k, (name, _) in enumerate(moved) if name == "model.layers.1.input_layernorm.weight")
    moved[i] = (moved[i][0], (575,))
    moved[j] = (moved[j][0], (577,))
    shifted = Definition("llama", "LlamaForCausalLM", tuple(moved), definition.config, 0.0)
    with pytest.raises(EstimatorError, match="layer 0: the estimator counts"):
        check_architecture(Architecture.from_config(SMOLLM2), shifted)


def test_an_invalid_value_is_named_by_field():
    with pytest.raises(EstimatorError, match="hidden_size: must be >= 1"):
        architecture_for_config({**SMOLLM2, "hidden_size": -1})
    with pytest.raises(EstimatorError, match="num_hidden_layers: 5,000 layers of 'llama' is beyond 1,024"):
        model_definition({**SMOLLM2, "num_hidden_layers": 5000})


def test_gguf_rows_are_refused_for_a_class_llama_cpp_cannot_convert():
    registered = llama_cpp_convertible()
    assert {"LlamaForCausalLM", "Qwen3NextForCausalLM", "GptOssForCausalLM"} <= registered
    assert "HeliumForCausalLM" not in registered      # llama.cpp of llama-cpp-python 0.3.36
    helium = Definition("helium", "HeliumForCausalLM", (), {}, 0.0)
    why = gguf_refusal(helium, {"architectures": ["HeliumForCausalLM"]})
    assert why == "llama.cpp cannot convert HeliumForCausalLM: its converter does not register that class"
    arch = replace(Architecture.from_config(SMOLLM2), gguf_unsupported=why)
    rows = {r.scheme: r for r in estimate(arch, HARDWARE_PROFILES["rtx-4090"], Workload(runtime="llama.cpp"),
                                             ["Q4_K_M", "FP16"]).rows}
    assert rows["Q4_K_M"].supported is False and rows["Q4_K_M"].note == why


def test_llama_cpp_sources_are_read_by_one_thread_at_a_time():
    # Two requests arriving together must not parse the converter at the same moment (CPython
    # 3.11's ast.parse can raise SystemError in two threads at once): the second waits.
    import threading
    from planner import model_definition as md

    md.llama_cpp_convertible.cache_clear()
    got = []
    with md._SOURCES_LOCK:
        reader = threading.Thread(target=lambda: got.append(md.llama_cpp_convertible()))
        reader.start()
        reader.join(0.3)
        assert reader.is_alive() and got == []
    reader.join(60)
    assert got and "LlamaForCausalLM" in got[0]
