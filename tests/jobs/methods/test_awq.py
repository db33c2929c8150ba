"""AWQ job method (GPTQModel's AWQ path): validation, estimate, routing (cuda only), and a real
4-bit g64 quantization of a tiny random Llama on the CPU, loaded back and generating."""

import json
from pathlib import Path

import pytest
from django.utils import timezone

from jobs.methods import get_method, method_names
from jobs.methods.base import JobError
from jobs.models import Worker
from jobs.services import job_submit
from tests.jobs.methods.conftest import generate
from tests.jobs.methods.factories import SMOLLM2_CONFIG, make_variant
from tests.support.artifacts import build_tiny_llama, run_method
from tests.support.processes import WIKITEXT

CAL = str(WIKITEXT / "valid.txt")


def test_validate_defaults(db):
    cleaned = get_method("awq").validate({"dataset_path": CAL, "group_size": 64}, make_variant())
    assert cleaned == {"bits": 4, "group_size": 64, "zero_point": True, "dataset_path": CAL,
                       "samples": 16, "seq_len": 256}


def test_validate_names_the_first_layer_the_group_size_does_not_divide(db):
    with pytest.raises(JobError) as err:
        get_method("awq").validate({"dataset_path": CAL}, make_variant())  # default g128, width 576
    assert err.value.errors["group_size"] == (
        "group_size 128 does not divide model.layers.*.self_attn.q_proj input width 576; "
        "try 16 or 32 or 64")
    # hidden 576 takes g64, but an FFN of 1000 feeds mlp.down_proj 1000 columns: 15.6 groups
    odd = make_variant(config={**SMOLLM2_CONFIG, "intermediate_size": 1000}, name="ffn-1000")
    with pytest.raises(JobError) as err:
        get_method("awq").validate({"dataset_path": CAL, "group_size": 64}, odd)
    assert err.value.errors["group_size"].startswith(
        "group_size 64 does not divide model.layers.*.mlp.down_proj input width 1000")


def test_validate_refuses_an_output_width_it_cannot_pack(db):
    odd = make_variant(config={**SMOLLM2_CONFIG, "num_key_value_heads": 1, "head_dim": 60,
                               "num_attention_heads": 16}, name="head-60")  # k_proj 60 wide: not 8-aligned
    with pytest.raises(JobError) as err:
        get_method("awq").validate({"dataset_path": CAL, "group_size": 64}, odd)
    assert "model.layers.*.self_attn.k_proj output width 60 is not a multiple of 8" in err.value.errors["input"]


def test_validate_refuses_rows_the_clipping_search_cannot_batch(db):
    """Found running it: a 64-wide Llama with 2 KV heads of 16 has a 32-wide v_proj, and
    GPTQModel's clip search asserted (its row batch is 64)."""
    tiny = make_variant(config={**SMOLLM2_CONFIG, "hidden_size": 64, "intermediate_size": 128,
                                "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16},
                        name="tiny-64")
    with pytest.raises(JobError) as err:
        get_method("awq").validate({"dataset_path": CAL, "group_size": 64}, tiny)
    assert err.value.errors["input"] == (
        "model.layers.*.self_attn.v_proj output width 32 is not a multiple of 64: AWQ's clipping "
        "search takes its rows 64 at a time")


@pytest.mark.parametrize("params, field", [
    ({"group_size": 256}, "group_size"),
    ({"group_size": -1}, "group_size"),
    ({"bits": 4}, "bits"),  # fixed at 4: not a parameter
    ({"zero_point": "maybe"}, "zero_point"),
    ({"samples": 0}, "samples"),
    ({"seq_len": 8}, "seq_len"),
    ({"dataset_path": ""}, "dataset_path"),
])
def test_validate_refuses_bad_params(db, params, field):
    with pytest.raises(JobError) as err:
        get_method("awq").validate({"dataset_path": CAL, "group_size": 64, **params}, make_variant())
    assert field in err.value.errors


def test_estimate_output_is_the_gemm_layout_by_hand(db):
    """SmolLM2-135M, g64. Per layer (in × out): q, o 576×576; k, v 576×192; gate, up 576×1536;
    down 1536×576. Each linear stores in·out/2 bytes of int32-packed 4-bit weights, and per group
    out/2 bytes of packed zeros + out·2 of fp16 scales: q 165,888 + 9·576·2.5 = 178,848;
    k, v 59,616; gate, up 476,928; down 442,368 + 24·576·2.5 = 476,928 → 1,907,712 × 30 layers
    = 57,231,360; embeddings (tied) 49152·576 and 61 norms of 576 at 2 bytes = 56,693,376.
    The same layers stored by GPTQ measured 114,523,776 bytes: these plus its int32 g_idx
    (599,040 bytes), which AWQ has not."""
    variant = make_variant()
    method = get_method("awq")
    est = method.estimate(method.validate({"dataset_path": CAL, "group_size": 64}, variant), variant)
    assert est["output_bytes"] == 57_231_360 + 56_693_376 == 114_523_776 - 599_040


def test_awq_is_offered_on_cuda_nodes_only():
    assert "awq" in method_names(device="cuda")
    assert "awq" not in method_names(device="cpu")


def _red_variant(teams):
    variant = make_variant()
    variant.model.team = teams["red"]
    variant.model.save(update_fields=["team"])
    return variant


def test_a_cpu_only_pool_refuses_awq_at_submit(db, teams):
    Worker.objects.create(hostname="cpu@awq", queues=["cpu"], device="cpu", memory_bytes=64 * 2**30,
                          methods=method_names(device="cpu"), last_seen=timezone.now())
    variant = _red_variant(teams)
    with pytest.raises(JobError) as err:
        job_submit(team=teams["red"], user=teams["alice"], method="awq",
                   params={"dataset_path": CAL, "group_size": 64}, input_variant=variant)
    assert err.value.errors == {"method": "no worker node can run awq"}


def test_a_cuda_node_takes_awq_on_the_gpu_queue(db, teams):
    Worker.objects.create(hostname="gpu@awq", queues=["gpu"], device="cuda", memory_bytes=80 * 2**30,
                          methods=method_names(device="cuda"), last_seen=timezone.now())
    job = job_submit(team=teams["red"], user=teams["alice"], method="awq",
                     params={"dataset_path": CAL, "group_size": 64}, input_variant=_red_variant(teams))
    assert job.queue == "gpu"


@pytest.fixture(scope="module")
def tiny_llama_128_hf(demo_gguf, tmp_path_factory) -> Path:
    """A 2-layer Llama 128 wide (4 heads of 32, 2 KV heads: v_proj 64 rows), FFN 256."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-128-hf"), demo_gguf,
                            hidden=128, intermediate=256)


@pytest.mark.slow
def test_awq_quantizes_a_tiny_llama_on_the_cpu_and_it_generates(db, tiny_llama_128_hf, tmp_path):
    """run() called directly (the job would go to a cuda node): GPTQModel's AWQ scale search and
    GEMM packing run on the CPU for a 2-layer, 128-wide model in seconds."""
    from gptqmodel import GPTQModel

    tiny_chat_hf = tiny_llama_128_hf

    params = {"bits": 4, "group_size": 64, "zero_point": True, "dataset_path": CAL,
              "samples": 4, "seq_len": 32}
    built = run_method("awq", params, tiny_chat_hf, tmp_path)
    out, folder = built.output, built.folder
    assert (out.format, out.quant_type, out.params["device"]) == ("awq", "4bit-g64", "cpu")
    quant = json.loads((folder / "config.json").read_text())["quantization_config"]
    assert (quant["quant_method"], quant["bits"], quant["group_size"]) == ("awq", 4, 64)
    assert quant["zero_point"] is True and not (folder.parent / "offload").exists()
    assert built.events[0] == (0.0, "load") and built.events[-1] == (1.0, "save")
    assert out.metrics["calibration_tokens"] == 4 * 32

    config = json.loads((Path(tiny_chat_hf) / "config.json").read_text())
    variant = make_variant(config=config, name="tiny-chat")
    estimate = get_method("awq").estimate(params, variant)
    assert estimate["output_bytes"] == out.metrics["saved_tensor_bytes"]

    model = GPTQModel.load(str(folder), device="cpu")
    assert "Awq" in type(model.model.model.layers[0].self_attn.q_proj).__name__
    text = generate(model, model.tokenizer)
    assert text.strip() and text.strip() != "The capital of France is"
