"""The shape of estimate().to_dict(): what views, API and CLI rely on."""

import dataclasses
import json
import time

import pytest

from planner.estimator import (HARDWARE_PROFILES, SCHEME_NAMES, Architecture, Estimate, Workload, estimate,
                               scheme_names)
from planner.presets import preset_architecture

ROW_KEYS = {"scheme", "family", "bits_per_weight", "weights_bytes", "kv_cache_bytes", "compute_bytes",
            "overhead_bytes", "training_bytes", "total_bytes", "capacity_bytes", "fits", "headroom_bytes",
            "max_context", "gpu_layers", "n_layers", "decode_tokens_per_s", "prefill_seconds", "engines",
            "high_precision_tensors", "supported", "note", "formulas", "rule_of_thumb_bytes", "rule_of_thumb_note"}
NUMERIC = {"weights_bytes", "kv_cache_bytes", "compute_bytes", "overhead_bytes", "training_bytes", "total_bytes",
           "capacity_bytes", "headroom_bytes", "bits_per_weight", "max_context", "gpu_layers",
           "decode_tokens_per_s", "prefill_seconds"}


def test_scheme_names_cover_the_required_list():
    required = ["FP32", "FP16", "BF16", "FP8", "INT8", "INT4", "NF4", "NF4-DQ", "GPTQ-2bit-g128", "GPTQ-3bit-g128",
                "GPTQ-4bit-g128", "GPTQ-8bit-g128", "AWQ-4bit-g128", "EXL2-4.0bpw", "FP8-128x128", "MXFP4", "NVFP4",
                "F16", "Q8_0", "Q6_K", "Q5_K_M",
                "Q5_K_S", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_0", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K", "IQ4_XS",
                "IQ3_XXS", "IQ2_XS", "MXFP4_MOE"]
    assert SCHEME_NAMES == required
    assert scheme_names(64, 5.0)[8:14] == ["GPTQ-2bit-g64", "GPTQ-3bit-g64", "GPTQ-4bit-g64", "GPTQ-8bit-g64",
                                           "AWQ-4bit-g64", "EXL2-5.0bpw"]


def test_to_dict_is_json_and_has_every_scheme_and_key():
    est = estimate(preset_architecture("llama-3.1-8b"), HARDWARE_PROFILES["rtx-4090"], Workload(context=8192))
    assert isinstance(est, Estimate)
    data = json.loads(json.dumps(est.to_dict()))
    assert set(data) == {"model", "hardware", "workload", "schemes"}
    assert data["model"]["total_params"] == 8_030_261_248
    assert data["hardware"]["key"] == "rtx-4090"
    assert data["workload"]["context"] == 8192
    assert [r["scheme"] for r in data["schemes"]] == SCHEME_NAMES
    for row in data["schemes"]:
        assert ROW_KEYS <= set(row), row["scheme"]
        assert NUMERIC <= set(row["formulas"]), row["scheme"]
        assert row["total_bytes"] == (row["weights_bytes"] + row["repack_bytes"] + row["kv_cache_bytes"]
                                      + row["recurrent_state_bytes"] + row["compute_resident_bytes"]
                                      + row["overhead_bytes"] + row["training_bytes"])
        assert row["recurrent_state_bytes"] == 0   # no recurrent layers
        assert row["repack_bytes"] == 0 and row["compute_resident_bytes"] == row["compute_bytes"]  # a GPU
        assert row["headroom_bytes"] == row["capacity_bytes"] - row["total_bytes"]
        assert row["fits"] == (row["headroom_bytes"] >= 0)
        assert f"{row['total_bytes']:,}" in row["formulas"]["total_bytes"]
        assert isinstance(row["rule_of_thumb_bytes"], int) and isinstance(row["rule_of_thumb_note"], str)


def test_llama31_8b_on_4090_row_values():
    rows = {r.scheme: r for r in estimate(preset_architecture("llama-3.1-8b"), HARDWARE_PROFILES["rtx-4090"],
                                             Workload(context=8192)).rows}
    q4 = rows["Q4_K_M"]
    assert q4.weights_bytes == 4_912_898_304  # includes the 256 B rope_freqs tensor
    assert q4.kv_cache_bytes == 2**30
    assert q4.fits and q4.gpu_layers == 32 and q4.supported
    assert 8192 < q4.max_context < 131072 and q4.max_context % 256 == 0  # KV cells come in 256s
    assert rows["FP32"].fits is False and rows["FP32"].max_context == 0
    assert rows["FP16"].supported is False  # llama.cpp runtime loads GGUF only
    assert "llama.cpp/Ollama" in q4.engines
    assert "output.weight: 1×Q6_K" in q4.high_precision_tensors


def test_gguf_on_vllm_is_unsupported_but_computed():
    row = estimate(preset_architecture("qwen2.5-7b"), HARDWARE_PROFILES["a100-80gb"], Workload(runtime="vllm"),
                   ["Q4_K_M", "AWQ-4bit-g128"]).rows
    gguf, awq = row
    assert gguf.supported is False and "experimental" in gguf.note and gguf.weights_bytes > 0
    assert awq.supported is True and awq.gpu_layers is None
    assert gguf.capacity_bytes == int(80 * 2**30 * 0.9)  # gpu_memory_utilization
    assert awq.kv_pool_bytes == awq.capacity_bytes - awq.weights_bytes - awq.compute_bytes - awq.overhead_bytes
    assert awq.kv_pool_bytes > awq.kv_cache_bytes and awq.fits


def test_max_context_is_the_largest_that_fits():
    arch = preset_architecture("llama-3.1-8b")
    hw = HARDWARE_PROFILES["rtx-3060"]
    row = estimate(arch, hw, Workload(context=4096), ["Q4_K_M"]).rows[0]
    n = row.max_context
    assert 4096 < n < 131072
    assert estimate(arch, hw, Workload(context=n), ["Q4_K_M"]).rows[0].fits
    assert not estimate(arch, hw, Workload(context=n + 1), ["Q4_K_M"]).rows[0].fits


def test_full_estimate_is_fast():
    arch = preset_architecture("llama-3.1-70b")
    estimate(arch, HARDWARE_PROFILES["rtx-4090"], Workload())  # warm caches
    start = time.perf_counter()
    for _ in range(5):
        estimate(arch, HARDWARE_PROFILES["rtx-4090"], Workload(context=4096 + _))
    assert (time.perf_counter() - start) / 5 < 0.05  # 20 ms target; slack for slow CI


def test_param_count_architecture_estimates_too():
    est = estimate(Architecture.from_param_count("7B"), HARDWARE_PROFILES["t4"], Workload())
    assert len(est.rows) == len(SCHEME_NAMES)


def test_rows_describe_the_scheme_and_training_notes_the_runtime():
    est = estimate(preset_architecture("smollm2-135m"), HARDWARE_PROFILES["t4"], Workload(mode="lora"))
    descriptions = {r.scheme: r.description for r in est.rows}
    assert "4.5 bpw" in descriptions["NF4"] and "llama-quantize" in descriptions["Q4_K_M"]
    assert any("transformers + peft" in n for n in est.to_dict()["workload"]["notes"])
    assert all(r.gpu_layers is None and r.kv_cache_bytes == 0 for r in est.rows)


def test_awq_needs_in_features_divisible_by_group_size():
    smol = estimate(preset_architecture("smollm2-135m"), HARDWARE_PROFILES["t4"], Workload(runtime="vllm"),
                    ["AWQ-4bit-g128", "AWQ-4bit-g64"]).rows
    assert smol[0].supported is False and "divisible by 128" in smol[0].note  # 576 = 4.5 × 128
    assert smol[1].supported is True                                             # 576 = 9 × 64


def test_a_row_is_frozen():
    row = estimate(preset_architecture("smollm2-135m"), HARDWARE_PROFILES["t4"], Workload(), ["Q4_K_M"]).rows[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.fits = not row.fits
