"""GPTQ job method (GPTQModel): validation, estimate, progress, and a real 4-bit g64 quantization."""

from pathlib import Path

import pytest

from jobs.methods import get_method
from jobs.methods.base import JobError
from tests.jobs.methods.conftest import generate
from tests.jobs.methods.factories import make_variant
from tests.support.processes import WIKITEXT

CAL = str(WIKITEXT / "valid.txt")


def test_validate_defaults(db):
    cleaned = get_method("gptq").validate({"dataset_path": CAL, "group_size": 64}, make_variant())
    assert cleaned == {"bits": 4, "group_size": 64, "desc_act": False, "sym": True, "damp_percent": 0.05,
                       "dataset_path": CAL, "samples": 16, "seq_len": 256}


def test_validate_refuses_group_size_that_does_not_divide_a_layer(db):
    with pytest.raises(JobError) as err:
        get_method("gptq").validate({"dataset_path": CAL}, make_variant())  # default g128
    message = err.value.errors["group_size"]
    assert "group_size 128 does not divide model.layers.*.self_attn.q_proj input width 576" in message
    assert "try 64 or 192" in message


def test_validate_accepts_per_row_groups(db):
    assert get_method("gptq").validate({"dataset_path": CAL, "group_size": -1}, make_variant())["group_size"] == -1


def test_validate_refuses_gguf_input(db):
    with pytest.raises(JobError) as err:
        get_method("gptq").validate({"dataset_path": CAL, "group_size": 64}, make_variant(fmt="gguf"))
    assert "make an HF safetensors variant" in err.value.errors["input"]


@pytest.mark.parametrize("params, field", [
    ({"bits": 5}, "bits"),
    ({"bits": "four"}, "bits"),
    ({"group_size": 0}, "group_size"),
    ({"group_size": -2}, "group_size"),
    ({"samples": 0}, "samples"),
    ({"samples": 1025}, "samples"),
    ({"seq_len": 8}, "seq_len"),
    ({"damp_percent": 1.0}, "damp_percent"),
    ({"desc_act": "sometimes"}, "desc_act"),
    ({"dataset_path": ""}, "dataset_path"),
    ({"trust_remote_code": True}, "trust_remote_code"),
])
def test_validate_refuses_bad_params(db, params, field):
    with pytest.raises(JobError) as err:
        get_method("gptq").validate({"dataset_path": CAL, "group_size": 64, **params}, make_variant())
    assert field in err.value.errors


def test_estimate_matches_measured_size(db):
    variant = make_variant()
    method = get_method("gptq")
    params = {"dataset_path": CAL, "group_size": 64, "samples": 8, "seq_len": 64}
    est = method.estimate(method.validate(params, variant), variant)
    # measured: 114,523,776 tensor bytes and 1,627,556 KiB peak RSS for SmolLM2-135M 4-bit g64, 8 × 64 tokens
    assert est["output_bytes"] == pytest.approx(114_523_776, rel=0.01)
    assert est["peak_memory_bytes"] == pytest.approx(1_627_556 * 1024, rel=0.15)
    per_row = method.estimate(method.validate({"dataset_path": CAL, "group_size": -1}, variant), variant)
    assert per_row["output_bytes"] < est["output_bytes"]


def test_child_env_sets_cpu_workers():
    assert get_method("gptq").child_env == {"GPTQMODEL_CPU_WORKERS": "2"}


@pytest.mark.slow
def test_gptq_4bit_g64_quantizes_demo_model(demo_gptq):
    """demo_gptq (tests/support/artifacts.py): run() with 4 bits, g64, 8 × 64 calibration tokens."""
    from gptqmodel import GPTQModel

    out, events = demo_gptq.output, demo_gptq.events
    folder = Path(out.directory)
    assert (out.format, out.quant_type) == ("gptq", "4bit-g64")
    assert (folder / "quantize_config.json").exists() and not (folder.parent / "offload").exists()
    # per-layer progress: 30 decoder layers → ≥ 30 increasing "quantize" points
    quantize = [f for f, s in events if s == "quantize"]
    assert len(quantize) >= 30 and quantize == sorted(quantize)
    assert events[0] == (0.0, "load") and events[-1] == (1.0, "save")
    # block linears 4 + 16/64 (fp16 scale) + 4/64 (zero) + 32/in (g_idx) ≈ 4.36 bpw; 16-bit embeddings → 6.81
    assert 4.3 < out.metrics["linear_bits_per_weight"] < 4.4
    assert 6.7 < out.bits_per_weight < 6.9
    assert out.metrics["calibration_tokens"] == 8 * 64
    assert set(out.tool_versions) >= {"gptqmodel", "transformers"}

    model = GPTQModel.load(str(folder), device="cpu")
    text = generate(model, model.tokenizer)
    assert text.strip() and text.strip() != "The capital of France is"
