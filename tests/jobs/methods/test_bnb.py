"""bitsandbytes int8/NF4 job methods: validation, estimate, and a real quantization of the demo model."""

from pathlib import Path

import pytest

from jobs.methods import get_method
from jobs.methods.base import JobError
from tests.jobs.methods.conftest import generate
from tests.jobs.methods.factories import make_variant


def saved_keys(folder: Path) -> list[str]:
    from safetensors import safe_open

    keys = []
    for path in folder.glob("*.safetensors"):
        with safe_open(str(path), "pt") as f:
            keys += list(f.keys())
    return keys


def test_validate_defaults(db):
    variant = make_variant()
    assert get_method("bnb-nf4").validate({}, variant) == {
        "quant_type": "nf4", "double_quant": True, "compute_dtype": "bfloat16"}
    assert get_method("bnb-int8").validate({}, variant) == {
        "llm_int8_threshold": 6.0, "compute_dtype": "float32"}


@pytest.mark.parametrize("name, params, field", [
    ("bnb-nf4", {"quant_type": "int4"}, "quant_type"),
    ("bnb-nf4", {"double_quant": "maybe"}, "double_quant"),
    ("bnb-nf4", {"compute_dtype": "float8"}, "compute_dtype"),
    ("bnb-int8", {"llm_int8_threshold": 0}, "llm_int8_threshold"),
    ("bnb-int8", {"llm_int8_threshold": "high"}, "llm_int8_threshold"),
    ("bnb-int8", {"bits": 4}, "bits"),
])
def test_validate_refuses_bad_params(db, name, params, field):
    with pytest.raises(JobError) as err:
        get_method(name).validate(params, make_variant())
    assert field in err.value.errors


@pytest.mark.parametrize("name", ["bnb-nf4", "bnb-int8"])
def test_validate_refuses_gguf_input(db, name):
    with pytest.raises(JobError) as err:
        get_method(name).validate({}, make_variant(fmt="gguf"))
    assert "input" in err.value.errors
    assert "HF safetensors variant" in err.value.errors["input"]


DEMO_F32_SAFETENSORS = {"model.safetensors": 538_090_408, "config.json": 800}


def test_estimate_matches_measured_sizes(db):
    variant = make_variant(files=DEMO_F32_SAFETENSORS)
    nf4 = get_method("bnb-nf4")
    est = nf4.estimate(nf4.validate({}, variant), variant)
    # measured: 111,726,673 tensor bytes for SmolLM2-135M NF4 + double quant, bf16 embeddings
    assert est["output_bytes"] == pytest.approx(111_726_673, rel=0.01)
    # measured peak RSS of run() from the float32 demo checkpoint: 1,816,596 KiB
    assert est["peak_memory_bytes"] == pytest.approx(1_816_596 * 1024, rel=0.15)
    int8 = get_method("bnb-int8")
    est = int8.estimate(int8.validate({}, variant), variant)
    # measured: 220,177,362 tensor bytes for int8 with float32 embeddings
    assert est["output_bytes"] == pytest.approx(220_177_362, rel=0.01)
    assert est["peak_memory_bytes"] == pytest.approx(1_822_776 * 1024, rel=0.15)


def test_parse_log_line_reads_transformers_loading_bar():
    nf4 = get_method("bnb-nf4")
    assert nf4.parse_log_line("Loading weights:   0%|  | 0/272\rLoading weights:  50%|█ | 136/272") == (
        pytest.approx(0.45), "quantize")
    assert nf4.parse_log_line("Writing model shards: 100%") is None


@pytest.mark.slow
def test_nf4_quantizes_demo_model(demo_nf4):
    """demo_nf4 (tests/support/artifacts.py): run() with nf4, double quant, bfloat16 compute."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, events, folder = demo_nf4.output, demo_nf4.events, demo_nf4.folder
    assert folder.name == "out"
    assert (out.format, out.quant_type) == ("bnb-nf4", "nf4-dq")
    assert [s for _, s in events][0] == "load" and events[-1] == (1.0, "save")
    keys = saved_keys(folder)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert {q + ".absmax", q + ".quant_map", q + ".nested_absmax", q + ".quant_state.bitsandbytes__nf4"} <= set(keys)
    # 134.5M weights; block linears at 4 + 8/64 + 32/(64·256) bpw; embeddings 28.3M in bf16 → 6.64 total
    assert 6.5 < out.bits_per_weight < 6.8
    assert 4.1 < out.metrics["linear_bits_per_weight"] < 4.2
    assert set(out.tool_versions) >= {"transformers", "bitsandbytes"}

    model = AutoModelForCausalLM.from_pretrained(str(folder), device_map="cpu")
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"
    text = generate(model, AutoTokenizer.from_pretrained(str(folder)))
    assert text.strip() and text.strip() != "The capital of France is"


@pytest.mark.slow
def test_int8_quantizes_demo_model(demo_int8):
    """demo_int8 (tests/support/artifacts.py): run() with threshold 6.0, float32 compute."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, folder = demo_int8.output, demo_int8.folder
    assert (out.format, out.quant_type) == ("bnb-int8", "int8")
    keys = saved_keys(folder)
    assert "model.layers.0.self_attn.q_proj.SCB" in keys
    # block linears int8 + fp32 row scale; embeddings 28.3M in float32 → 13.09 total
    assert 12.9 < out.bits_per_weight < 13.3
    assert 8.0 < out.metrics["linear_bits_per_weight"] < 8.2

    model = AutoModelForCausalLM.from_pretrained(str(folder), device_map="cpu")
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == "Linear8bitLt"
    text = generate(model, AutoTokenizer.from_pretrained(str(folder)))
    assert text.strip()
