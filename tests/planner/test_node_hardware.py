"""Our worker nodes as planner hardware: offered on the page, the API and the CLI, with speeds from the
node's stored measurement; the fit card, the scheme table and the API give the same decode number.

The stored measurement below is written by hand with round numbers, so the expected speeds can be
derived here without the planner's code:
* bandwidth 10 GB/s; Q4_K_M: tg 100 tok/s over a file read at 100,000,000 B per token → the node
  reads 1e10 B/s in decode, efficiency 1e10 / 1e10 = 1.0;
* Q4_K_M: pp64 at 1,000 tok/s = 0.064 s, of which one pass over the weights (one decode step, 1/100 s)
  is reading: 64 × 200,000,000 FLOP in 0.054 s of compute → 2.370e11 FLOP/s achieved.
SmolLM2-135M (hidden 576, 30 layers, 9 heads × 64, 3 KV heads, vocabulary 49,152, tied embeddings;
134,515,008 parameters) in Q4_K_M holds 103,668,480 B of weights (pinned in test_estimate_shape /
the real file), all read per token (tied: the embedding is the output matrix); its f16 KV cache at
context 512 is 2 × 30 × 3 × 64 × 2 B × 512 = 11,796,480 B. One decode step reads 115,464,960 B:
    decode = 1e10 × 1.0 / 115,464,960 = 86.606 tok/s (memory-bound: its matmuls, 2 × 106,203,456 FLOP
    at 2.37e11 FLOP/s, take 0.9 ms against 11.5 ms of reads).
Prefill of 512 tokens (one ubatch): 2 × 106,203,456 × 512 + 2 × 30 × 512² × 576 = 117,812,035,584 FLOP at
    2.3704e11 FLOP/s = 0.49702 s, + one pass over the 103,668,480 B of weights at 1e10 B/s = 0.01037 s
    → 0.50738 s (106,203,456 = 134,515,008 parameters less the 49,152 × 576 embedding).
"""

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from jobs.models import Worker

pytestmark = pytest.mark.django_db

HOST = "node-a@test"
MEASUREMENT = {
    "version": 1, "status": "done",
    "bandwidth": {"bytes_per_s": 10_000_000_000, "method": "numpy copy of 256 MiB, read + write"},
    "llama_bench": [{"scheme": "Q4_K_M", "file": "bench-Q4_K_M.gguf", "bytes_per_token": 100_000_000,
                     "flops_per_prompt_token": 200_000_000, "tg_tokens_per_s": 100.0, "pp_tokens_per_s": 1000.0,
                     "n_prompt": 64, "n_gen": 16}],
    "conditions": {"threads": 2, "cores": 2, "load_before": 0.12, "load_after": 1.9, "quiet": True,
                   "busy_reason": "", "jobs_running": 0},
}
PLAN = {"preset": "smollm2-135m", "context": 512, "fit_scheme": "Q4_K_M", "hardware": f"node:{HOST}"}
DECODE, PREFILL = 86.61, 0.5074


@pytest.fixture
def node(teams):
    return Worker.objects.create(hostname=HOST, memory_bytes=24 * 2**30, last_seen=timezone.now(),
                                 measurements=MEASUREMENT, measured_at=timezone.now())


@pytest.fixture
def alice(client, teams):
    client.force_login(teams["alice"])
    return client


def test_page_offers_the_node_and_its_measured_speeds_agree_in_table_and_fit_card(alice, node):
    html = alice.get("/planner/", PLAN).content.decode()
    assert f'<option value="node:{HOST}" selected>our nodes: {HOST}</option>' in html
    assert f'id="fit-decode">{DECODE:.1f}<' in html
    row = re.search(r'<tr class="plan-row[^"]*" data-scheme="Q4_K_M".*?</tr>', html, re.S).group(0)
    assert f"<summary>{DECODE:.1f}</summary>" in row
    assert f"measured on node {HOST}" in row  # the formula says which node's measurement
    assert re.search(r'id="table-speed-source">Decode tok/s: measured on this node', html)


def test_api_gives_the_same_decode_in_table_and_fit_and_says_where_it_came_from(alice, node):
    data = alice.get("/api/planner/estimate", {**PLAN, "hardware": f"node:{HOST}"}).json()
    row = next(r for r in data["schemes"] if r["scheme"] == "Q4_K_M")
    assert row["weights_bytes"] == 103_668_480 and row["kv_cache_bytes"] == 11_796_480
    assert row["decode_tokens_per_s"] == data["fit"]["decode_tokens_per_s"] == DECODE
    assert row["prefill_seconds"] == PREFILL
    assert data["hardware"]["memory_bytes"] == 24 * 2**30
    assert data["speed"]["speed_source"] == "measured on this node"
    formula = row["formulas"]["decode_tokens_per_s"]
    assert "10.0 GB/s" in formula and "Efficiency 1.000" in formula and f"measured on node {HOST}" in formula
    listed = alice.get("/api/planner/hardware").json()["hardware"]
    assert listed[0]["key"] == f"node:{HOST}" and listed[0]["name"] == f"our nodes: {HOST}"


def test_cli_plans_on_the_node(node):
    out = StringIO()
    call_command("estimate", "--preset", "smollm2-135m", "--hardware", f"node:{HOST}", "--context", "512",
                 "--scheme", "Q4_K_M", "--fit-scheme", "Q4_K_M", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["schemes"][0]["decode_tokens_per_s"] == data["fit"]["decode_tokens_per_s"] == DECODE


def test_a_silent_or_unmeasured_node_is_not_offered(alice, node):
    node.last_seen = timezone.now() - timedelta(minutes=5)
    node.save()
    r = alice.get("/api/planner/estimate", PLAN)
    assert r.status_code == 400 and "hardware" in r.json()["errors"]
    node.last_seen, node.measured_at, node.measurements = timezone.now(), None, {}
    node.save()
    assert f"node:{HOST}" not in alice.get("/planner/").content.decode()


def test_unmeasured_scheme_borrows_the_nearest_and_says_so(alice, node):
    data = alice.get("/api/planner/estimate", {**PLAN, "fit_scheme": "Q5_K_M"}).json()
    row = next(r for r in data["schemes"] if r["scheme"] == "Q5_K_M")
    assert "Q4_K_M's (Q5_K_M was not measured" in row["formulas"]["decode_tokens_per_s"]


def test_a_measured_fixed_time_per_layer_is_used_only_from_a_quiet_measurement(alice, node):
    """The stored bench model has 16 layers; a fixed 100 µs per layer leaves 10 ms − 1.6 ms = 8.4 ms of
    each tg step to reading 1e8 B: efficiency 1e8 / (8.4e-3 × 1e10) = 1.190476. SmolLM2's step:
    115,464,960 B / 1.190476e10 B/s = 9.699 ms + 30 layers × 100 µs = 12.699 ms → 78.75 tok/s. From a
    measurement that was not quiet the fixed time is not used: 86.61 tok/s as above."""
    bench_row = {**MEASUREMENT["llama_bench"][0], "n_layers": 16}
    fixed = {"scheme": "Q4_K_M", "seconds_per_layer": 100e-6, "raw_seconds_per_layer": 100e-6, "layers": [16, 4],
             "tg_best_tokens_per_s": [100.0, 300.0], "bytes_per_token": [100_000_000, 40_000_000]}
    node.measurements = {**MEASUREMENT, "llama_bench": [bench_row], "fixed_cost": fixed}
    node.save()
    row = next(r for r in alice.get("/api/planner/estimate", PLAN).json()["schemes"] if r["scheme"] == "Q4_K_M")
    assert row["decode_tokens_per_s"] == 78.75
    assert "30 layers × 100 µs" in row["formulas"]["decode_tokens_per_s"]
    node.measurements = {**node.measurements, "conditions": {**MEASUREMENT["conditions"], "quiet": False,
                                                             "busy_reason": "load average 3.0 before"}}
    node.save()
    row = next(r for r in alice.get("/api/planner/estimate", PLAN).json()["schemes"] if r["scheme"] == "Q4_K_M")
    assert row["decode_tokens_per_s"] == DECODE
    assert "not used: the measurement was not quiet" in row["formulas"]["decode_tokens_per_s"]


def test_a_measured_moe_adds_its_layer_time_and_its_experts_prefill_rate_to_a_moe_model(alice, node):
    """The dense file as in the test above (16 layers, 100 µs fixed per layer: efficiency 1.190476, so
    reads go at 1.190476e10 B/s; prefill 1.28e10 FLOP in 0.054 s = 2.370370e11 FLOP/s). The small MoE
    beside it: 8 MoE layers, 5e7 B read per token, tg 160 tok/s = 6.25 ms a step, of which reading
    5e7 / 1.190476e10 = 4.2 ms and 8 × 100 µs fixed: 1.25 ms / 8 = 156.25 µs per MoE layer. Its pp64 at
    800 tok/s = 80 ms: reading 119,047,619 B = 10 ms, its 64 × 4e7 non-expert FLOP at the dense rate
    10.8 ms, leaving 59.2 ms for 64 × 6e7 expert FLOP: 6.486486e10 FLOP/s, 0.273649 × the dense rate.
    Qwen3-30B-A3B has 48 MoE layers: each decode step takes 48 × 156.25 µs = 7.5 ms more. Its routed
    experts multiply 48 × 8 × 3 × 2048 × 768 = 1,811,939,328 weights per token: a 512-token prompt's
    1,855,425,871,872 expert FLOP take 28.6045 s instead of 7.8276 s, 20.7769 s more."""
    bench_row = {**MEASUREMENT["llama_bench"][0], "n_layers": 16}
    fixed = {"scheme": "Q4_K_M", "seconds_per_layer": 100e-6, "raw_seconds_per_layer": 100e-6, "layers": [16, 4],
             "tg_best_tokens_per_s": [100.0, 300.0], "bytes_per_token": [100_000_000, 40_000_000]}
    moe = {"scheme": "Q4_K_M", "file": "moe.gguf", "n_layers": 8, "moe_layers": 8, "experts": 16,
           "experts_per_token": 4, "bytes_per_token": 50_000_000, "bytes_per_prompt": 119_047_619,
           "flops_per_prompt_token": 100_000_000, "expert_flops_per_prompt_token": 60_000_000, "n_prompt": 64,
           "tg_tokens_per_s": 160.0, "tg_best_tokens_per_s": 160.0, "pp_tokens_per_s": 800.0,
           "pp_best_tokens_per_s": 800.0}
    plan = {**PLAN, "preset": "qwen3-30b-a3b"}

    def row_with(measurements):
        node.measurements = measurements
        node.save()
        data = alice.get("/api/planner/estimate", plan).json()
        return next(r for r in data["schemes"] if r["scheme"] == "Q4_K_M")

    without = row_with({**MEASUREMENT, "llama_bench": [bench_row], "fixed_cost": fixed})
    with_moe = row_with({**MEASUREMENT, "llama_bench": [bench_row], "fixed_cost": fixed, "moe": moe})
    step = 1 / with_moe["decode_tokens_per_s"] - 1 / without["decode_tokens_per_s"]
    # the API rounds tok/s to 2 decimals: at ~5.7 tok/s that moves 1 / tok/s by up to 1.6e-4 s each
    assert step == pytest.approx(7.5e-3, abs=3.2e-4)
    assert "48 MoE layers × 156 µs" in with_moe["formulas"]["decode_tokens_per_s"]
    assert "no time per MoE layer beyond its bytes" in without["formulas"]["decode_tokens_per_s"]
    assert with_moe["prefill_seconds"] - without["prefill_seconds"] == pytest.approx(20.7769, rel=1e-3)
    assert "at 0.274 × that rate" in with_moe["formulas"]["prefill_seconds"]
    # from a busy node neither term is used (nor the fixed time they are read against)
    busy = {**MEASUREMENT["conditions"], "quiet": False, "busy_reason": "load average 3.0 before"}
    busy_row = row_with({**MEASUREMENT, "llama_bench": [bench_row], "fixed_cost": fixed, "moe": moe,
                         "conditions": busy})
    assert "no time per MoE layer beyond its bytes" in busy_row["formulas"]["decode_tokens_per_s"]
    assert "routed experts' 1,855,425,871,872 at the same rate" in busy_row["formulas"]["prefill_seconds"]


def test_a_gpu_node_plans_with_its_gpu_memory_and_the_host_ram_beside_it(alice, teams):
    """A cuda worker's memory_bytes is its GPU's (80 GiB); the heartbeat's ram_bytes (128 GiB) is what
    llama.cpp can offload to, so the node's hardware carries both, and the RAM input replaces it."""
    Worker.objects.create(hostname="gpu-a@test", device="cuda", device_name="NVIDIA H100 80GB HBM3",
                          memory_bytes=80 * 2**30, ram_bytes=128 * 2**30, last_seen=timezone.now(),
                          measurements=MEASUREMENT, measured_at=timezone.now())
    plan = {**PLAN, "hardware": "node:gpu-a@test"}
    hardware = alice.get("/api/planner/estimate", plan).json()["hardware"]
    assert (hardware["kind"], hardware["memory_bytes"], hardware["ram_bytes"]) == ("gpu", 80 * 2**30, 128 * 2**30)
    hardware = alice.get("/api/planner/estimate", {**plan, "ram_gb": 64}).json()["hardware"]
    assert hardware["ram_bytes"] == 64 * 2**30
