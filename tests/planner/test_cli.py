"""manage.py estimate: --json numbers, the readable table, errors naming the field."""

import json

import pytest
from django.core.management import CommandError, call_command


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("estimate", *args, stdout=out)
    return out.getvalue()


def test_json_for_a_preset_pins_the_estimator_numbers():
    data = json.loads(run("--preset", "llama-3.1-8b", "--hardware", "rtx-4090", "--context", "8192", "--json"))
    rows = {r["scheme"]: r for r in data["schemes"]}
    q4 = rows["Q4_K_M"]
    assert q4["weights_bytes"] == 4_912_898_304  # as tests/planner/test_estimate_shape.py
    assert q4["kv_cache_bytes"] == 2**30 and q4["fits"] is True
    assert q4["total_bytes"] == q4["weights_bytes"] + q4["kv_cache_bytes"] + q4["compute_bytes"] + q4["overhead_bytes"]
    assert {"scheme", "bits_per_weight", "weights_bytes", "kv_cache_bytes", "compute_bytes", "overhead_bytes",
            "total_bytes", "fits"} <= set(q4)
    assert rows["FP32"]["fits"] is False
    assert data["workload"]["context"] == 8192


def test_runtime_batch_and_kv_dtype_reach_the_workload():
    data = json.loads(run("--preset", "llama-3.1-8b", "--runtime", "vllm", "--batch", "4", "--kv-dtype", "fp8",
                          "--json", "--scheme", "FP16"))
    assert [r["scheme"] for r in data["schemes"]] == ["FP16"]
    assert (data["workload"]["runtime"], data["workload"]["batch"], data["workload"]["kv_dtype"]) == ("vllm", 4, "fp8")
    assert data["schemes"][0]["kv_cache_bytes"] == 4 * 4096 * 32 * 2 * 1024  # batch × ctx × layers × K+V × kv_dim × 1 B


def test_readable_table():
    text = run("--params", "7.3B", "--hardware", "m2-max-32gb")
    assert "~7.3B (modelled on Mistral 7B v0.3)" in text and "Q4_K_M" in text
    assert text.splitlines()[1].startswith("scheme") and "thumb" in text.splitlines()[1]
    fp16 = next(line for line in text.splitlines() if line.startswith("FP16 "))
    assert " 14.6 GB " in fp16  # 7.3B × 2 B


def test_json_has_the_rule_of_thumb():
    rows = json.loads(run("--params", "7e9", "--json", "--scheme", "FP32", "--scheme", "INT4"))["schemes"]
    assert [r["rule_of_thumb_bytes"] for r in rows] == [28 * 10**9, 35 * 10**8]  # 7B × 4 B, × 0.5 B
    assert rows[1]["rule_of_thumb_note"].startswith("7B × 0.5 B = 3.5 GB; the estimate: ")


def test_config_file_and_its_errors(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9,
                                "num_key_value_heads": 3, "intermediate_size": 1536, "vocab_size": 49152,
                                "tie_word_embeddings": True}))
    assert json.loads(run("--config", str(path), "--json"))["model"]["total_params"] == 134_515_008
    path.write_text('{"model_type": "llama", "hidden_size": -1}')
    with pytest.raises(CommandError, match="hidden_size: must be >= 1"):
        run("--config", str(path))
    path.write_text("{nope")
    with pytest.raises(CommandError, match="config: is not valid JSON"):
        run("--config", str(path))
    with pytest.raises(CommandError, match="context: must be between"):
        run("--preset", "llama-3.1-8b", "--context", "0")


def test_json_and_text_carry_the_fit_command():
    """Llama 3.1 70B Q4_K_M on one 4090: 41 layers on the GPU → -ngl 42 (derived in test_fit.py)."""
    data = json.loads(run("--preset", "llama-3.1-70b", "--hardware", "rtx-4090", "--fit-scheme", "Q4_K_M", "--json"))
    assert data["fit"]["ngl"] == 42 and data["fit"]["gpu_layers"] == 41
    text = run("--preset", "mixtral-8x7b", "--hardware", "t4", "--n-cpu-moe", "20")
    assert "fit (Q4_K_M): llama-server -m <path/to/Mixtral-8x7B-Q4_K_M.gguf> -c 4096 -ngl 99 --n-cpu-moe 20 -fa off" in text
    with pytest.raises(CommandError, match="n_cpu_moe"):
        run("--preset", "mixtral-8x7b", "--n-cpu-moe", "99")


def test_every_workload_flag_reaches_the_workload():
    """Same Gemma 2 9B numbers as tests/planner/test_api.py (swa_full off, ubatch 256)."""
    data = json.loads(run("--preset", "gemma-2-9b", "--hardware", "a100-80gb", "--context", "8192", "--no-swa-full",
                          "--ubatch", "256", "--flash-attn", "--n-seq", "1", "--scheme", "Q4_K_M", "--json"))
    wl = data["workload"]
    assert (wl["swa_full"], wl["n_ubatch"], wl["flash_attn"], wl["batch"]) == (False, 256, True, 1)
    assert data["schemes"][0]["kv_cache_bytes"] == 2_157_969_408
    with pytest.raises(CommandError, match="n_ubatch: must be between"):
        run("--preset", "llama-3.1-8b", "--ubatch", "0")
    with pytest.raises(CommandError, match="gpu_memory_utilization"):
        run("--preset", "llama-3.1-8b", "--runtime", "vllm", "--gpu-memory-utilization", "1.5")


def test_vllm_command_in_text_and_json():
    text = run("--preset", "llama-3.1-8b", "--hardware", "h100-80gb", "--runtime", "vllm", "--context", "8192",
               "--batch", "4", "--scheme", "BF16")
    assert ("vLLM (BF16): vllm serve meta-llama/Llama-3.1-8B --max-model-len 65536 --gpu-memory-utilization 0.9 "
            "--tensor-parallel-size 1 --max-num-seqs 4") in text
    data = json.loads(run("--preset", "llama-3.1-8b", "--hardware", "rtx-4090", "--json", "--scheme", "Q4_K_M"))
    assert data["vllm_fit"]["command"].startswith("vllm serve meta-llama/Llama-3.1-8B")


def test_llama_4_scout_at_32k_plans_within_the_workload_context_limit():
    """Its 10,485,760 positions are beyond the 10,000,000 tokens a Workload takes: every search
    (the rows' max context, the llama.cpp fit, the vLLM fit beside it) stops there."""
    data = json.loads(run("--preset", "llama-4-scout", "--context", "32768", "--json"))
    assert data["workload"]["context"] == 32768 and data["fit"] and data["vllm_fit"]
    assert all(r["max_context"] <= 10_000_000 for r in data["schemes"])
    assert any("10,485,760 positions are beyond the longest context" in n for n in data["workload"]["notes"])
    # vLLM on 8 H100s: the smallest schemes' KV would fit past 10,000,000 tokens
    wide = json.loads(run("--preset", "llama-4-scout", "--context", "32768", "--hardware", "h100-80gb",
                          "--devices", "8", "--runtime", "vllm", "--json"))
    longest = max(wide["schemes"], key=lambda r: r["max_context"])
    assert longest["max_context"] == 10_000_000
    assert "10,485,760 positions are beyond the longest context" in longest["formulas"]["max_context"]
    assert 32768 <= wide["vllm_fit"]["max_model_len"] <= 10_000_000
    assert "fit (" in run("--preset", "llama-4-scout", "--context", "32768")


@pytest.mark.parametrize("layout", ["layer_types", "layers_block_type", None])
def test_granite_4_h_small_config_file_plans(tmp_path, layout):
    """The published config plans through the CLI with its layout under either name transformers
    reads, or none (all Mamba-2: no KV cache, no vLLM fit); the KV cache and the recurrent state are
    two columns and two JSON figures."""
    from tests.planner.hybrid_configs import GRANITE_4_H_SMALL

    cfg = {k: v for k, v in GRANITE_4_H_SMALL.items() if k != "layer_types"}
    if layout:
        cfg[layout] = GRANITE_4_H_SMALL["layer_types"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    data = json.loads(run("--config", str(path), "--context", "32768", "--json"))
    q4 = next(r for r in data["schemes"] if r["scheme"] == "Q4_K_M")
    # 4 attention layers × 2 × 8 kv_heads × 128 × 32,768 × 2 B;
    # 36 Mamba-2 layers (40 without a layout) × (R 3 × 8,448 + S 128 × 8,192) × 4 B
    assert q4["kv_cache_bytes"] == (4 * 2 * 8 * 128 * 32768 * 2 if layout else 0)
    assert q4["recurrent_state_bytes"] == (36 if layout else 40) * (3 * 8448 + 128 * 8192) * 4
    assert data["fit"] is not None and (data["vllm_fit"] is None) == (layout is None)
    text = run("--config", str(path), "--context", "32768", "--scheme", "Q4_K_M")
    assert text.splitlines()[1].split()[:6] == ["scheme", "bpw", "weights", "KV", "state", "compute"]


def test_ram_gb_and_a_custom_box():
    """--ram-gb sets the host RAM (DeepSeek-V3 on 2 × H100 with 128 GiB at 8,192 fits: test_fit.py);
    --hardware custom --device-memory-gb describes devices of different sizes."""
    data = json.loads(run("--preset", "deepseek-v3", "--hardware", "h100-80gb", "--devices", "2", "--ram-gb", "128",
                          "--context", "8192", "--json"))
    assert data["hardware"]["ram_bytes"] == 128 * 2**30 and data["fit"]["fits"] and data["fit"]["scheme"] == "IQ3_XXS"
    text = run("--preset", "llama-3.1-8b", "--hardware", "rtx-4090", "--ram-gb", "32")
    assert "GeForce RTX 4090 24 GB × 1 · system RAM 32.00 GiB · llama.cpp" in text
    data = json.loads(run("--preset", "llama-3.1-70b", "--hardware", "custom", "--device-memory-gb", "24,12",
                          "--ram-gb", "32", "--fit-scheme", "Q4_K_M", "--json"))
    assert data["hardware"]["device_memory_bytes"] == [24 * 2**30, 12 * 2**30] and len(data["fit"]["devices"]) == 2
    with pytest.raises(CommandError, match="ram_gb: must be a number between 0 and 65536"):
        run("--preset", "llama-3.1-8b", "--ram-gb", "-1")
    with pytest.raises(CommandError, match="ram_gb: system RAM is an input for GPU machines"):
        run("--preset", "llama-3.1-8b", "--hardware", "m2-max-64gb", "--ram-gb", "16")
    with pytest.raises(CommandError, match="device_memory_gb: must be sizes in GiB"):
        run("--preset", "llama-3.1-8b", "--hardware", "custom", "--device-memory-gb", "24,x")

