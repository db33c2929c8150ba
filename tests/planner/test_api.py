"""GET/POST /api/planner/estimate, /presets, /hardware: JSON shape, 400 naming the field, 401, 404."""

import dataclasses
import json
from typing import get_type_hints

import pytest

from planner.estimator import SCHEME_NAMES, SchemeRow
from planner.schemas import Plan
from planner.schemas import SchemeRow as SchemeRowSchema

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client, teams):
    client.force_login(teams["alice"])
    return client


def test_get_estimate_shape_and_pinned_numbers(alice):
    r = alice.get("/api/planner/estimate?preset=llama-3.1-8b&hardware=rtx-4090&context=8192")
    assert r.status_code == 200
    data = r.json()
    assert set(data) == {"schemes", "model", "hardware", "workload", "fit", "vllm_fit", "speed"}
    assert [s["scheme"] for s in data["schemes"]] == SCHEME_NAMES
    q4 = next(s for s in data["schemes"] if s["scheme"] == "Q4_K_M")
    assert q4["weights_bytes"] == 4_912_898_304 and q4["kv_cache_bytes"] == 2**30 and q4["fits"] is True
    assert "measured" in q4 and "formulas" in q4
    assert data["model"]["total_params"] == 8_030_261_248
    assert data["hardware"]["key"] == "rtx-4090" and data["workload"]["context"] == 8192


def test_post_json_body_matches_get(alice):
    body = {"model": {"preset": "llama-3.1-8b"}, "hardware": {"profile": "rtx-4090"},
            "workload": {"context": 8192, "runtime": "llama.cpp"}}
    posted = alice.post("/api/planner/estimate", json.dumps(body), content_type="application/json").json()
    got = alice.get("/api/planner/estimate?preset=llama-3.1-8b&hardware=rtx-4090&context=8192").json()
    assert posted == got


def test_post_config_params_and_custom_hardware(alice):
    cfg = {"model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
           "intermediate_size": 1536, "vocab_size": 49152, "max_position_embeddings": 8192,
           "tie_word_embeddings": True}
    r = alice.post("/api/planner/estimate", json.dumps({"model": {"config": cfg}, "hardware": {
        "memory_gb": 8, "bandwidth_gbs": 100, "tflops": 10, "kind": "apple"}}), content_type="application/json")
    assert r.status_code == 200
    data = r.json()
    assert data["model"]["total_params"] == 134_515_008 and data["hardware"]["kind"] == "apple"
    r = alice.post("/api/planner/estimate", json.dumps({"model": {"params": "7.3B"},
                                                        "workload": {"runtime": "vllm", "kv_dtype": "fp8"}}),
                   content_type="application/json")
    assert r.status_code == 200 and r.json()["workload"]["runtime"] == "vllm"
    fp16 = next(s for s in r.json()["schemes"] if s["scheme"] == "FP16")
    assert fp16["rule_of_thumb_bytes"] == 14_600_000_000 and fp16["rule_of_thumb_note"].startswith("7.3B × 2 B")
    assert r.json()["model"]["stated_params"] == 7_300_000_000


@pytest.mark.parametrize("body, field", [
    ({"model": {"config": {"model_type": "llama", "hidden_size": -1}}}, "config"),
    ({"model": {"config": "{nope"}}, "config"),
    ({"model": {"preset": "x", "params": "7B"}}, "model"),
    ({"model": {"params": "lots"}}, "params"),
    ({"workload": {"context": -5}}, "context"),
    ({"workload": {"kv_dtype": "fp8"}}, "kv_dtype"),  # llama.cpp has no fp8 KV
    ({"workload": {"warp": 9}}, "workload.warp"),  # types and unknown keys: the JSON path
    ({"hardware": {"profile": "nope"}}, "hardware"),
    ({"workload": {"swa_full": "maybe"}}, "workload.swa_full"),
    ({"workload": {"n_ubatch": 0}}, "n_ubatch"),
    ({"workload": {"gpu_memory_utilization": 1.5, "runtime": "vllm"}}, "gpu_memory_utilization"),
    ({"workload": {"n_seq": 2, "batch": 3}}, "n_seq"),
    ({"hardware": {"memory_gb": -1, "bandwidth_gbs": 1, "tflops": 1}}, "custom_memory_gb"),
    ({"hardware": {"profile": "rtx-4090", "ram_gb": -1}}, "ram_gb"),
    ({"hardware": {"profile": "m2-max-64gb", "ram_gb": 32}}, "ram_gb"),   # Apple: the memory is the RAM
    ({"hardware": {"device_memory_gb": [24, 0], "bandwidth_gbs": 1, "tflops": 1}}, "custom_device_memory_gb"),
    ({"hardware": {"device_memory_gb": [24, 12], "devices": 3, "bandwidth_gbs": 1, "tflops": 1}}, "devices"),
])
def test_post_bad_input_is_400_naming_the_field(alice, body, field):
    r = alice.post("/api/planner/estimate", json.dumps(body), content_type="application/json")
    assert r.status_code == 400, r.content
    assert field in r.json()["errors"], r.json()


def test_get_bad_input_is_400(alice):
    r = alice.get("/api/planner/estimate?context=abc")
    assert r.status_code == 400 and "context" in r.json()["errors"]
    r = alice.post("/api/planner/estimate", b"not json", content_type="application/json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]


def test_catalog_model_by_id_is_team_scoped(client, teams, demo_variant):
    model_id = demo_variant.model_id
    client.force_login(teams["alice"])
    r = client.post("/api/planner/estimate", json.dumps({"model": {"catalog_model": model_id}}),
                    content_type="application/json")
    assert r.status_code == 200 and r.json()["model"]["catalog_model"] == model_id
    assert r.json()["model"]["n_layers"] == 30
    client.force_login(teams["bob"])
    assert client.get(f"/api/planner/estimate?model={model_id}").status_code == 404


def test_presets_and_hardware_lists(alice):
    presets = alice.get("/api/planner/presets").json()["presets"]
    assert {"key": "llama-3.1-8b", "name": "Llama 3.1 8B", "family": "Llama"}.items() <= presets[3].items()
    assert {"key": "gpt-oss-20b", "family": "gpt-oss", "repo": "openai/gpt-oss-20b"}.items() <= next(
        p for p in presets if p["key"] == "gpt-oss-20b").items()
    hardware = alice.get("/api/planner/hardware").json()["hardware"]
    assert {h["kind"] for h in hardware} == {"gpu", "apple", "phone", "cpu"}
    assert next(h for h in hardware if h["key"] == "rtx-4090")["memory_bytes"] == 24 * 2**30


def test_anonymous_gets_401_json(client):
    for url in ("/api/planner/estimate", "/api/planner/presets", "/api/planner/hardware"):
        r = client.get(url)
        assert r.status_code == 401 and r.json() == {"error": "authentication required"}


def test_fit_in_the_json_for_mixtral_on_a_t4(alice):
    """Mixtral 8x7B Q4_K_M on 16 GiB: experts of 16 layers in RAM (derived in test_fit.py)."""
    r = alice.post("/api/planner/estimate", data=json.dumps({"model": {"preset": "mixtral-8x7b"}, "hardware": "t4",
                                                             "workload": {"context": 4096}}),
                   content_type="application/json")
    assert r.status_code == 200
    fit = r.json()["fit"]
    assert fit["scheme"] == "Q4_K_M" and fit["n_cpu_moe"] == 16 and fit["ngl"] == 99
    assert fit["command"] == "llama-server -m <path/to/Mixtral-8x7B-Q4_K_M.gguf> -c 4096 -ngl 99 --n-cpu-moe 16 -fa off"


def test_fit_n_cpu_moe_out_of_range_is_a_400_naming_the_field(alice):
    r = alice.get("/api/planner/estimate?preset=mixtral-8x7b&hardware=t4&n_cpu_moe=33")
    assert r.status_code == 400 and "n_cpu_moe" in json.dumps(r.json())


def test_no_fit_for_vllm(alice):
    assert alice.get("/api/planner/estimate?preset=llama-3.1-8b&runtime=vllm").json()["fit"] is None


def test_every_workload_input_of_the_page_reaches_the_estimate(alice):
    """Gemma 2 9B (42 layers, 21 with a 4,096-token window; 8 kv heads × 256) at context 8,192, Q4_K_M:
    swa_full on: 42 × 8,192 cells × 2 × 8 × 256 × 2 B = 2,818,572,288 B;
    swa_full off, ubatch 512: local layers keep pad(4,096 + 512, 256) = 4,608 cells:
      (21 × 8,192 + 21 × 4,608) × 8,192 B = 2,202,009,600; ubatch 256: 4,352 cells → 2,157,969,408."""
    def kv(**workload):
        body = {"model": {"preset": "gemma-2-9b"}, "hardware": "a100-80gb", "workload": {"context": 8192, **workload}}
        r = alice.post("/api/planner/estimate", json.dumps(body), content_type="application/json")
        assert r.status_code == 200, r.content
        return r.json()["workload"], next(s for s in r.json()["schemes"] if s["scheme"] == "Q4_K_M")["kv_cache_bytes"]

    assert kv()[1] == 2_818_572_288
    assert kv(swa_full=False)[1] == 2_202_009_600
    wl, kv_bytes = kv(swa_full=False, ubatch=256, flash_attn=True, n_seq=1)
    assert kv_bytes == 2_157_969_408 and (wl["swa_full"], wl["n_ubatch"], wl["flash_attn"]) == (False, 256, True)
    got = alice.get("/api/planner/estimate?preset=gemma-2-9b&hardware=a100-80gb&context=8192&swa_full=false"
                    "&n_ubatch=256&flash_attn=on&batch=1").json()
    assert got["workload"]["swa_full"] is False and got["workload"]["n_ubatch"] == 256


def test_vllm_fit_and_its_command_in_the_json(alice):
    """Llama 3.1 8B on an H100 at 0.9, batch 4 from 8,192: --max-model-len 65,536 (derived in test_vllm_fit.py)."""
    r = alice.get("/api/planner/estimate?preset=llama-3.1-8b&hardware=h100-80gb&runtime=vllm&context=8192&batch=4")
    v = r.json()["vllm_fit"]
    assert v["num_gpu_blocks"] == 28_119 and v["max_model_len"] == 65_536
    assert v["command"].startswith("vllm serve meta-llama/Llama-3.1-8B --max-model-len 65536 "
                                   "--gpu-memory-utilization 0.9")
    r = alice.get("/api/planner/estimate?preset=llama-3.1-8b&hardware=h100-80gb&runtime=vllm"
                  "&gpu_memory_utilization=0.5")
    assert "--gpu-memory-utilization 0.5" in r.json()["vllm_fit"]["command"]


def test_llama_4_scout_at_32k_answers_within_the_workload_context_limit(alice):
    """Its 10,485,760 positions are beyond the 10,000,000 tokens a Workload takes (test_cli.py)."""
    r = alice.get("/api/planner/estimate?preset=llama-4-scout&context=32768")
    assert r.status_code == 200
    data = r.json()
    assert data["fit"] and data["vllm_fit"] and all(s["max_context"] <= 10_000_000 for s in data["schemes"])
    r = alice.get("/api/planner/estimate?preset=llama-4-scout&context=32768&hardware=h100-80gb&devices=8&runtime=vllm")
    assert r.status_code == 200 and max(s["max_context"] for s in r.json()["schemes"]) == 10_000_000


def test_a_hybrid_row_carries_the_kv_cache_and_the_recurrent_state_apart(alice):
    """Qwen3-Next at 32,768 (test_recurrent_state.py): KV 805,306,368 B, state 79,036,416 B."""
    r = alice.get("/api/planner/estimate?preset=qwen3-next-80b-a3b&hardware=h200&context=32768")
    q4 = next(s for s in r.json()["schemes"] if s["scheme"] == "Q4_K_M")
    assert (q4["kv_cache_bytes"], q4["recurrent_state_bytes"]) == (805_306_368, 79_036_416)
    assert "805,306,368 KV + 79,036,416 recurrent state + " in q4["formulas"]["total_bytes"]


def test_ram_gb_is_an_input_for_profiles_in_the_query_and_the_body(alice):
    """DeepSeek-V3 on 2 × H100 80 GB with 128 GiB of RAM at 8,192 fits with IQ3_XXS (derived in
    tests/planner/test_fit.py); the same call without ram_gb takes the profile's 2 TiB."""
    got = alice.get("/api/planner/estimate?preset=deepseek-v3&hardware=h100-80gb&devices=2&ram_gb=128"
                    "&context=8192").json()
    body = {"model": {"preset": "deepseek-v3"}, "hardware": {"profile": "h100-80gb", "devices": 2, "ram_gb": 128},
            "workload": {"context": 8192}}
    posted = alice.post("/api/planner/estimate", json.dumps(body), content_type="application/json").json()
    assert got["hardware"]["ram_bytes"] == posted["hardware"]["ram_bytes"] == 128 * 2**30
    assert got["fit"] == posted["fit"] and got["fit"]["fits"] and got["fit"]["scheme"] == "IQ3_XXS"
    assert got["fit"]["command"].startswith("llama-server -m <path/to/DeepSeek-V3-671B-IQ3_XXS.gguf> -c 8192 -ngl 99 --n-cpu-moe ")
    assert got["fit"]["system_ram_bytes"] <= int(128 * 2**30 * 0.9)
    default = alice.get("/api/planner/estimate?preset=llama-3.1-8b&hardware=h100-80gb").json()
    assert default["hardware"]["ram_bytes"] == 2 * 2**40
    r = alice.get("/api/planner/estimate?ram_gb=abc")
    assert r.status_code == 400 and "ram_gb" in r.json()["errors"]
    r = alice.post("/api/planner/estimate", json.dumps({"hardware": {"profile": "rtx-4090", "ram_gb": "lots"}}),
                   content_type="application/json")   # a type error: the JSON path names the field
    assert r.status_code == 400 and any(key.endswith(".ram_gb") for key in r.json()["errors"])


def test_a_custom_box_of_different_devices_with_its_ram(alice):
    """A 24 GiB and a 12 GiB card with 32 GiB of RAM: Llama 3.1 70B Q4_K_M (~42 GB) offloads layers;
    each device stays within its own capacity (memory × 0.95)."""
    body = {"model": {"preset": "llama-3.1-70b"}, "workload": {"fit_scheme": "Q4_K_M"},
            "hardware": {"device_memory_gb": [24, 12], "bandwidth_gbs": 1000, "tflops": 100, "ram_gb": 32}}
    r = alice.post("/api/planner/estimate", json.dumps(body), content_type="application/json")
    assert r.status_code == 200, r.content
    data = r.json()
    assert data["hardware"]["device_memory_bytes"] == [24 * 2**30, 12 * 2**30]
    assert data["hardware"]["ram_bytes"] == 32 * 2**30 and data["hardware"]["device_count"] == 2
    fit = data["fit"]
    assert fit["fits"] and len(fit["devices"]) == 2 and " -ts " in fit["command"]
    assert [d["total_bytes"] <= cap for d, cap in zip(fit["devices"], (int(24 * 2**30 * 0.95), int(12 * 2**30 * 0.95)))] \
        == [True, True]
    assert fit["system_ram_bytes"] <= int(32 * 2**30 * 0.9)



def test_the_api_scheme_row_is_the_estimators_row():
    """The API's SchemeRow is generated from the estimator's dataclass: same names, same types, the
    descriptions carried over; the API adds only the measured error beside it."""
    hints = get_type_hints(SchemeRow)
    api_fields = SchemeRowSchema.model_fields
    assert set(api_fields) == {f.name for f in dataclasses.fields(SchemeRow)} | {"measured"}
    for f in dataclasses.fields(SchemeRow):
        assert api_fields[f.name].annotation == hints[f.name], f.name
        assert api_fields[f.name].description == f.metadata["description"], f.name


def test_an_estimate_response_validates_against_its_documented_schema(alice):
    data = alice.get("/api/planner/estimate?preset=llama-3.1-8b&hardware=h100-80gb&runtime=vllm").json()
    Plan.model_validate(data)
    for row in data["schemes"]:
        assert set(row) == set(SchemeRowSchema.model_fields), row["scheme"]   # nothing undocumented
        SchemeRowSchema.model_validate(row)
    doc = alice.get("/api/openapi.json").json()
    documented = doc["components"]["schemas"]["SchemeRow"]["properties"]
    assert set(documented) == set(SchemeRowSchema.model_fields)
    assert documented["kv_pool_bytes"]["description"].startswith("vLLM: the KV blocks")


def test_a_card_without_a_speed_figure_gives_null_and_the_reason(alice):
    """The H100 SXM has no published llama.cpp figure: every speed is null beside the reason, the Fit's
    too; the RTX 4090's cited Q4_K_M tg512 (130.58 t/s, Llama 3 8B) comes back at context 256."""
    why = "no published llama.cpp figure for NVIDIA H100 80 GB SXM; measure it on a node of ours"
    data = alice.get("/api/planner/estimate?preset=llama-3.1-8b&hardware=h100-80gb&context=256").json()
    for row in data["schemes"]:
        assert row["decode_tokens_per_s"] is None and row["prefill_seconds"] is None, row["scheme"]
        if row["supported"]:
            assert row["decode_withheld"] == row["prefill_withheld"] == why, row["scheme"]
    assert data["fit"]["decode_tokens_per_s"] is None and data["fit"]["decode_withheld"] == why
    assert data["speed"] == {"speed_source": f"not shown: {why}", "speed_error": "", "speed_withheld": why}
    cited = alice.get("/api/planner/estimate?preset=llama-3.1-8b&hardware=rtx-4090&context=256").json()
    q4 = next(r for r in cited["schemes"] if r["scheme"] == "Q4_K_M")
    assert q4["decode_tokens_per_s"] == 130.58 and q4["decode_withheld"] == ""
    assert cited["speed"]["speed_source"] == "cited: published llama-bench on this card"
