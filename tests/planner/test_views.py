"""The planner page: inputs from the query string, hostile configs as form errors, htmx partial."""

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from planner.estimator import HARDWARE_PROFILES, Workload, estimate
from planner.presentation import human_bytes
from planner.presets import preset_architecture

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client, teams):
    client.force_login(teams["alice"])
    return client


def row_html(html: str, scheme: str) -> str:
    match = re.search(rf'<tr class="plan-row[^"]*" data-scheme="{re.escape(scheme)}".*?</tr>', html, re.S)
    assert match, f"no row for {scheme}"
    return match.group(0)


def test_default_page_renders_every_scheme_and_both_charts(alice):
    html = alice.get("/planner/").content.decode()
    assert html.count('class="plan-row') == 34
    assert '<svg class="chart bars"' in html and '<svg class="chart context"' in html
    assert html.count('<polyline class="series"') == 4  # F16, Q8_0, Q4_K_M, Q2_K for llama.cpp
    assert "GeForce RTX 4090 24 GB" in html


def test_query_string_drives_the_numbers_and_formulas(alice):
    r = alice.get("/planner/?preset=llama-3.1-8b&hardware=rtx-4090&context=8192")
    row = row_html(r.content.decode(), "Q4_K_M")
    assert 'class="plan-row fits"' in row
    assert human_bytes(4_912_898_304) in row  # weights pinned in tests/planner/test_estimate_shape.py
    assert "4,912,898,304" in row  # the formula with the user's numbers, inside <details>
    assert "<details" in row and "1,073,741,824" in row  # KV cache: 2^30 at 8k context


def test_status_classes_fit_offload_and_nofit(alice):
    html = alice.get("/planner/?preset=llama-3.1-70b&hardware=rtx-4090&context=4096").content.decode()
    assert 'class="plan-row nofit' in row_html(html, "F16")  # 140 GB F16 exceeds GPU + 64 GiB host RAM
    assert 'class="plan-row offload' in row_html(html, "Q4_K_M")
    html = alice.get("/planner/?preset=smollm2-135m&hardware=rtx-4090").content.decode()
    assert 'class="plan-row fits' in row_html(html, "Q4_K_M")


def test_shareable_url_round_trip_renders_the_same_numbers(alice):
    query = ("preset=qwen2.5-7b&hardware=a100-80gb&devices=2&runtime=vllm&context=32768&batch=4&kv_dtype=fp8"
             "&mode=inference&group_size=64&exl2_bpw=5.0")
    partial = alice.get(f"/planner/?{query}", HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and "<html" not in partial.content.decode()
    full = alice.get(f"/planner/?{query}").content.decode()
    est = estimate(preset_architecture("qwen2.5-7b"), HARDWARE_PROFILES["a100-80gb"].with_devices(2),
                   Workload(runtime="vllm", context=32768, batch=4, kv_dtype="fp8", group_size=64, exl2_bpw=5.0))
    for html in (partial.content.decode(), full):
        for scheme in ("FP16", "AWQ-4bit-g64", "EXL2-5.0bpw"):
            assert f'data-total-bytes="{est.row(scheme).total_bytes}"' in row_html(html, scheme)
    assert 'value="32768"' in full and 'value="a100-80gb" selected' in full  # the form shows the inputs back
    assert "/planner/?preset=qwen2.5-7b&amp;hardware=a100-80gb" in full  # share link


def test_params_quick_mode(alice):
    html = alice.get("/planner/?source=params&params=7.3B&hardware=rtx-4090").content.decode()
    assert "~7.3B (modelled on Mistral 7B v0.3)" in html and html.count('class="plan-row') == 34
    int4 = row_html(html, "INT4")  # the rule of thumb under the total: 7.3B × 0.5 B = 3.65 GB
    assert '<small class="thumb" title="7.3B × 0.5 B = 3.65 GB; the estimate: ' in int4
    assert ">rule 3.65 GB</small>" in int4
    assert ">rule 29.2 GB</small>" in row_html(html, "FP32")


def test_params_in_scientific_notation(alice):
    html = alice.get("/planner/?source=params&params=1.5T&hardware=h100-80gb").content.decode()
    assert "~1.5T (modelled on Llama 3.1 405B)" in html and "e+03" not in html


def test_training_mode_adds_the_training_column(alice):
    html = alice.get("/planner/?preset=llama-3.1-8b&hardware=a100-80gb&runtime=transformers&mode=qlora"
                     "&lora_rank=64&lora_targets=q&lora_targets=v").content.decode()
    assert "<th class=\"num\">training</th>" in html
    assert "QLoRA means" in row_html(html, "FP16")  # unsupported rows say why


def test_a_hybrid_shows_the_kv_cache_and_the_recurrent_state_as_two_columns(alice):
    """Qwen3-Next at 32,768 (test_recurrent_state.py): KV 805,306,368 B, state 79,036,416 B."""
    html = alice.get("/planner/?preset=qwen3-next-80b-a3b&hardware=h200&context=32768").content.decode()
    assert '<th class="num">KV cache</th><th class="num">recurrent state</th>' in html
    row = row_html(html, "Q4_K_M")
    assert f"<summary>{human_bytes(805_306_368)}</summary>" in row
    assert f"<summary>{human_bytes(79_036_416)}</summary>" in row
    assert "is its own column, and the total adds both" in html and "Q4_K_M recurrent state: " in html  # note, bar
    dense = alice.get("/planner/?preset=llama-3.1-8b&hardware=rtx-4090").content.decode()
    assert "recurrent state" not in dense


CONFIG_OK = {"model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9,
             "num_key_value_heads": 3, "intermediate_size": 1536, "vocab_size": 49152,
             "max_position_embeddings": 8192, "tie_word_embeddings": True}


def test_a_field_the_config_json_leaves_out_takes_the_config_class_default_as_transformers_reads_it(alice):
    # LlamaConfig's num_hidden_layers default is 32: the model transformers builds from this file
    cfg = json.dumps({k: v for k, v in CONFIG_OK.items() if k != "num_hidden_layers"})
    r = alice.get("/api/planner/estimate", {"source": "config", "config": cfg})
    assert r.status_code == 200 and r.json()["model"]["n_layers"] == 32


@pytest.mark.parametrize("config, field, words", [
    ("{not json", "config", "not valid JSON"),
    ("[1, 2]", "config", "JSON object"),
    (json.dumps({**CONFIG_OK, "hidden_size": -4096}), "config", "hidden_size"),
    (json.dumps({**CONFIG_OK, "hidden_size": 10**9, "num_hidden_layers": 10**6}), "config", ""),
    (json.dumps({**CONFIG_OK, "vocab_size": "many"}), "config", "vocab_size"),
    ("", "config", "paste a config.json"),
])
def test_hostile_pasted_config_is_a_form_error_naming_the_field(alice, config, field, words):
    r = alice.get("/planner/", {"source": "config", "config": config})
    assert r.status_code == 200
    html = r.content.decode()
    match = re.search(r'<li data-field="([^"]+)">([^<]+)</li>', html)
    assert match, html[:2000]
    assert match.group(1) == field and words in match.group(2)
    assert 'class="plan-row' not in html


def test_pasted_config_estimates_like_the_preset(alice):
    html = alice.get("/planner/", {"source": "config", "config": json.dumps(CONFIG_OK),
                                   "hardware": "cpu-2core-24gb"}).content.decode()
    smol = estimate(preset_architecture("smollm2-135m"), HARDWARE_PROFILES["cpu-2core-24gb"], Workload())
    assert f'data-total-bytes="{smol.row("Q4_K_M").total_bytes}"' in row_html(html, "Q4_K_M")


def test_uploaded_config_and_the_1mb_limit(alice):
    ok = SimpleUploadedFile("config.json", json.dumps(CONFIG_OK).encode(), "application/json")
    r = alice.post("/planner/", {"source": "config", "config_file": ok})
    assert r.status_code == 200 and r.content.decode().count('class="plan-row') == 34
    big = SimpleUploadedFile("config.json", b"{" + b" " * (1024 * 1024) + b"}", "application/json")
    html = alice.post("/planner/", {"source": "config", "config_file": big}).content.decode()
    assert re.search(r'data-field="config_file">config_file: [^<]*1 MiB', html)
    binary = SimpleUploadedFile("config.json", b"\xff\xfe\x00garbage", "application/json")
    html = alice.post("/planner/", {"source": "config", "config_file": binary}).content.decode()
    assert 'data-field="config_file">config_file: ' in html


def test_pasted_config_over_1mb(alice):
    r = alice.post("/planner/", {"source": "config", "config": "{" + " " * (1024 * 1024 + 10) + "}"})
    assert r.status_code == 200 and 'data-field="config"' in r.content.decode()


@pytest.mark.parametrize("query, field", [
    ("context=0", "context"), ("context=abc", "context"), ("batch=-1", "batch"), ("devices=999", "devices"),
    ("runtime=tgi", "runtime"), ("kv_dtype=fp8", "kv_dtype"), ("hardware=nope", "hardware"),
    ("exl2_bpw=9", "exl2_bpw"), ("preset=nope", "preset"), ("source=params&params=lots", "params"),
    ("hardware=custom&custom_memory_gb=-3", "custom_memory_gb"), ("lora_targets=zz", "lora_targets"),
])
def test_bad_workload_and_hardware_inputs_name_the_field(alice, query, field):
    r = alice.get(f"/planner/?{query}")
    assert r.status_code == 200
    assert f'<li data-field="{field}">{field}: ' in r.content.decode()


def test_custom_hardware_inline(alice):
    html = alice.get("/planner/?preset=llama-3.1-8b&hardware=custom&custom_memory_gb=12&custom_bandwidth_gbs=500"
                     "&custom_tflops=50&custom_kind=gpu").content.decode()
    assert "capacity <span id=\"plan-capacity\">11.40 GiB</span>" in html  # 12 GiB × 0.95


def test_catalog_model_prefill_and_team_scoping(client, teams, demo_variant):
    model = demo_variant.model
    client.force_login(teams["alice"])
    html = client.get(f"/planner/?model={model.pk}").content.decode()
    assert f'<option value="{model.pk}" selected>' in html
    assert 'id="plan-model">SmolLM2' in html and html.count('class="plan-row') == 34
    assert 'value="catalog" selected' in html
    client.force_login(teams["bob"])
    assert client.get(f"/planner/?model={model.pk}").status_code == 404
    assert client.get(f"/planner/?model={model.pk}", HTTP_HX_REQUEST="true").status_code == 404
    assert model.name not in client.get("/planner/models?q=Smol").content.decode()
    client.force_login(teams["carol"])
    assert model.name in client.get("/planner/models?q=smol").content.decode()
    assert client.get(f"/planner/?model={model.pk}").status_code == 200


def test_catalog_page_links_to_the_planner(client, teams, demo_variant):
    client.force_login(teams["alice"])
    html = client.get(f"/catalog/models/{demo_variant.model_id}/").content.decode()
    assert f'href="/planner/?model={demo_variant.model_id}"' in html


def test_anonymous_is_sent_to_login(client):
    r = client.get("/planner/")
    assert r.status_code == 302 and "/login/" in r["Location"]


def test_fit_card_renders_the_reasons_and_the_command(alice):
    """Mixtral 8x7B Q4_K_M on a 16 GiB T4 → --n-cpu-moe 16 (derived in tests/planner/test_fit.py)."""
    html = alice.get("/planner/?preset=mixtral-8x7b&hardware=t4&context=4096").content.decode()
    card = re.search(r'<div class="card fit-card.*?</div>\s*</div>', html, re.S).group(0)
    assert 'data-scheme="Q4_K_M"' in card
    assert ('<code id="fit-command">llama-server -m &lt;path/to/Mixtral-8x7B-Q4_K_M.gguf&gt; -c 4096 -ngl 99 '
            '--n-cpu-moe 16 -fa off</code>') in card
    assert 'data-copy="#fit-command"' in card and "first 16 of 32 layers" in card
    assert card.index('class="card fit-card') < html.index('id="plan-table"')


def test_n_cpu_moe_override_and_its_error_beside_the_field(alice):
    html = alice.get("/planner/?preset=mixtral-8x7b&hardware=t4&n_cpu_moe=24").content.decode()
    assert "--n-cpu-moe 24 -fa off</code>" in html and "--n-cpu-moe 24: set by hand" in html
    assert "--n-cpu-moe 32 -fa off</code>" in alice.get("/planner/?preset=mixtral-8x7b&hardware=t4&n_cpu_moe=32").content.decode()
    html = alice.get("/planner/?preset=mixtral-8x7b&hardware=t4&n_cpu_moe=33").content.decode()
    assert '<span class="error field-error" id="n_cpu_moe-error">must be an integer from 0 to 32</span>' in html
    html = alice.get("/planner/?preset=mixtral-8x7b&hardware=t4&n_cpu_moe=-1").content.decode()
    assert 'id="n_cpu_moe-error"' in html and "fit-card" not in html
    html = alice.get("/planner/?preset=mixtral-8x7b&hardware=t4&fit_scheme=NF4").content.decode()
    assert '<span class="error field-error" id="fit_scheme-error">&#x27;NF4&#x27; is not a GGUF scheme of this plan</span>' in html


def test_no_fit_card_for_transformers(alice):
    assert "fit-card" not in alice.get("/planner/?runtime=transformers").content.decode()


def test_sliding_window_cache_choice_on_the_page(alice):
    """Gemma 3 27B at 32k, f16 KV: 62 layers × 16 KV heads × 128 × 2 (K, V) × 2 B = 8192 B per layer
    and token. swa_full (llama-cpp-python's default) keeps 32,768 cells on every layer; window only
    (llama-server) keeps 1024 + ubatch 512 = 1536 cells on the 52 local layers (llama.cpp
    llama-kv-cache-iswa.cpp; measured in bench/swa_ground_truth.py)."""
    base = "/planner/?preset=gemma-3-27b&hardware=h100-80gb&runtime=llama.cpp&context=32768"
    full = alice.get(base + "&swa_full=true").content.decode()
    window = alice.get(base + "&swa_full=false").content.decode()
    assert "16,642,998,272" in row_html(full, "Q4_K_M")
    assert f"{52 * 1536 * 8192 + 10 * 32768 * 8192:,}" in row_html(window, "Q4_K_M")
    assert '<option value="false" selected>' in window and '<option value="true" selected>' in full


def test_a_vllm_fit_that_fails_is_folded_on_a_llama_cpp_plan(alice):
    """Mixtral 8x7B (46.7 B) can't be held by one 16 GB T4 in any vLLM format; on a llama.cpp plan that
    card is folded into one line, on a vLLM plan it is the plan and stays open."""
    llama = alice.get("/planner/?preset=mixtral-8x7b&hardware=t4&context=4096").content.decode()
    assert '<details id="vllm-fit-folded"><summary>vLLM doesn\'t fit these GPUs' in llama
    vllm = alice.get("/planner/?preset=mixtral-8x7b&hardware=t4&context=4096&runtime=vllm").content.decode()
    assert 'id="vllm-fit-card"' in vllm and "vllm-fit-folded" not in vllm
    fits = alice.get("/planner/?preset=llama-3.1-8b&hardware=h100-80gb").content.decode()
    assert 'id="vllm-fit-card"' in fits and "vllm-fit-folded" not in fits


def test_system_ram_is_a_page_input_defaulting_from_the_profile(alice):
    """The header shows the RAM the plan uses: the profile's (a desktop 4090: 64 GiB) or the one typed;
    DeepSeek-V3 on 2 × H100 with 128 GiB at 8,192 fits (test_fit.py)."""
    html = alice.get("/planner/?preset=llama-3.1-8b&hardware=rtx-4090").content.decode()
    assert '<span id="plan-ram">64.0\xa0GiB</span>' in html and 'name="ram_gb"' in html
    html = alice.get("/planner/?preset=deepseek-v3&hardware=h100-80gb&devices=2&ram_gb=128&context=8192").content.decode()
    assert '<span id="plan-ram">128.0\xa0GiB</span>' in html
    card = html[html.index('<div class="card fit-card'):html.index('id="vllm-fit-card"')]   # the llama.cpp card
    assert "fit-card offload" in card and "IQ3_XXS.gguf&gt; -c 8192 -ngl 99 --n-cpu-moe" in card and "doesn't fit" not in card
    html = alice.get("/planner/?preset=llama-3.1-8b&hardware=rtx-4090&ram_gb=-4").content.decode()
    assert '<li data-field="ram_gb">ram_gb: ' in html and 'id="ram_gb-error">must be a number' in html
    html = alice.get("/planner/?preset=llama-3.1-8b&hardware=custom&custom_device_memory_gb=24,12&ram_gb=32"
                     "&custom_bandwidth_gbs=500&custom_tflops=50").content.decode()
    assert "(24.0\xa0GiB + 12.0\xa0GiB)" in html and '<span id="plan-ram">32.0\xa0GiB</span>' in html



def test_a_card_without_a_speed_figure_shows_a_dash_and_the_reason(alice):
    """The table's decode cells and the Fit card show no number on the H200 (no published llama.cpp
    figure) and say why; the RTX 4090 (cited) shows its figure and where it comes from."""
    why = "no published llama.cpp figure for NVIDIA H200 141 GB; measure it on a node of ours"
    html = alice.get("/planner/?preset=llama-3.1-8b&hardware=h200&context=4096").content.decode()
    assert f"Decode tok/s: not shown: {why}</p>" in html
    assert (f'<span id="fit-decode">—</span> <small class="speed-withheld" id="fit-decode-withheld">'
            f'(not shown: {why})') in html
    assert f'<details class="formula" data-key="decode_tokens_per_s"><summary>—</summary><code>{why}</code>' in html
    assert "assumed" not in html
    cited = alice.get("/planner/?preset=llama-3.1-8b&hardware=rtx-4090&context=4096").content.decode()
    assert "Decode tok/s: cited: published llama-bench on this card" in cited
    assert 'id="fit-decode-withheld"' not in cited and '<summary>—</summary><code>no published' not in cited
