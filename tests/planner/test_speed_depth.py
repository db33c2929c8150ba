"""Decode at context depth: the attention term derived from the node's tg at two depths
(planner/estimator/speed_depth.py) and applied to the planner's decode speed.

Measured on this 2-core machine, 2026-12-07 (load average 6–9 from other sessions, so with ONE thread):

A. llama-bench (build 0c1e570, `-t 1 -p 0 -n 16 -d 0,512 -r 3`) on the node measurement's file,
   llama-1024x16-Q4_K_M.gguf (16 layers × 16 query heads, 4 KV heads × 64), best repetitions:
       flash attention off: 65.0302 tok/s at depth 0, 57.4454 at depth 512
       flash attention on:  74.7007 tok/s at depth 0, 46.6918 at depth 512
   Read rate of that file (bandwidth × Q4_K_M efficiency, the quiet node measurement of 2026-12-07
   09:56 in planner/speed_accuracy.json): 27.87 GB/s × 1.3312 ≈ 37.1 GB/s.
   Hand-worked, flash attention off: 1/57.4454 − 1/65.0302 = 17.40783 − 15.37747 = 2.03036 ms; the
   512 more tokens of f16 KV are 2 × 16 layers × 4 × 64 × 2 B × 512 = 8,388,608 B, 0.22611 ms at
   37.1 GB/s; (2.03036 − 0.22611) ms / (16 × 16 × 64 × 512 = 8,388,608 units) = 215.08 ps.
   Flash attention on: 21.41704 − 13.38677 = 8.03027 ms; − 0.22611 → 7.80417 ms / 8,388,608 = 930.33 ps.

B. llama-cpp-python 0.3.36, flash attention off, 1 thread, the CPU seconds of the process per
   decode step (24 steps after a 0- or 512-token prompt, best of 3 rounds; CPU time because wall time
   on a machine this busy varied ×2), ms per step at depth 0 → 512:
       node file (16 × 16 (4 KV) × 64, Q4_K_M)          10.535 → 12.327
       random Llama 8 × 16 (16 KV) × 64, F16            9.715 → 10.946
       random Llama 8 × 16 (2 KV) × 64, F16             7.044 →  7.759
       random Qwen3-MoE 12 × 16 (4 KV) × 64, Q4_K_M     7.684 →  8.733
       random Llama 1.5 B 22 × 32 (8 KV) × 64, Q4_K_M  50.267 → 54.601
       SmolLM2-135M (demo) 30 × 9 (3 KV) × 64, Q4_1    12.085 → 14.276
   The 16- and 2-KV-head pair differs only in KV bytes (16,777,216 − 2,097,152 B more at 512):
   (1.231 − 0.715) ms for 14,680,064 B → a read rate of 28.4 GB/s at one thread.
"""

import pytest

from planner.estimator import Workload
from planner.estimator.calibration import Calibration
from planner.estimator.hardware import Hardware
from planner.estimator.speed import decode_rate
from planner.estimator.speed_depth import attention_cost, attention_units
from planner.presets import preset_architecture

NODE_FILE = {"file": "llama-1024x16-Q4_K_M.gguf", "n_layers": 16, "n_heads": 16, "n_kv_heads": 4, "head_dim": 64,
             "threads": 1, "repetitions": 3, "n_gen": 16}


def _rows(fa: bool, tg0: float, tg512: float) -> list[dict]:
    return [{"n_depth": 0, "flash_attn": fa, "tg_best_tokens_per_s": tg0, "type_k": "f16"},
            {"n_depth": 512, "flash_attn": fa, "tg_best_tokens_per_s": tg512, "type_k": "f16"}]


def test_term_from_the_llama_bench_runs_on_the_node_file():
    depth = {**NODE_FILE, "rows": _rows(False, 65.0302, 57.4454) + _rows(True, 74.7007, 46.6918)}
    terms, source = attention_cost(depth, 37.1e9)
    assert dict(terms)[False] == pytest.approx(215.08e-12, rel=1e-3)
    assert dict(terms)[True] == pytest.approx(930.33e-12, rel=1e-3)
    assert "65.0302 tok/s at depth 0, 57.4454 at 512" in source and "8,388,608 B more KV" in source


def test_a_deeper_run_no_slower_than_its_kv_reads_gives_no_figure():
    """Noise: 60 → 59.9 tok/s is 0.028 ms, less than the 0.226 ms the extra KV bytes take to read."""
    terms, source = attention_cost({**NODE_FILE, "rows": _rows(False, 60.0, 59.9)}, 37.1e9)
    assert terms == () and "no figure" in source


STEPS_MS = {   # B above: (layers, query heads, KV heads, head_dim) → CPU ms per step at depth 0 and 512
    "16-KV-head Llama": ((8, 16, 16, 64), 9.715, 10.946),
    "2-KV-head Llama": ((8, 16, 2, 64), 7.044, 7.759),
    "Qwen3-MoE": ((12, 16, 4, 64), 7.684, 8.733),
    "Llama 1.5 B": ((22, 32, 8, 64), 50.267, 54.601),
    "SmolLM2-135M": ((30, 9, 3, 64), 12.085, 14.276),
}


def test_the_query_head_unit_transfers_across_models_where_per_layer_token_does_not():
    """The term derived from the node file alone (B: 10.535 → 12.327 ms, KV read at 28.4 GB/s)
    predicts every other model's slowdown at depth 512 (its query-head units × the term + its KV
    bytes at 28.4 GB/s) within 30 %. A term per layer and context token from the same file
    (1.792 ms / (16 × 512) = 218.75 ns) misses the 1.5 B Llama by −43 % and the demo by +53 %."""
    rate = 28.4e9
    terms, _ = attention_cost({**NODE_FILE, "rows": _rows(False, 1 / 10.535e-3, 1 / 12.327e-3)}, rate)
    per_unit = dict(terms)[False]
    per_layer_token = (12.327e-3 - 10.535e-3) / (16 * 512)
    worst_per_layer_token = 0.0
    for name, ((layers, heads, kv_heads, hd), t0, t512) in STEPS_MS.items():
        measured = (t512 - t0) * 1e-3
        kv = 2 * layers * kv_heads * hd * 2 * 512
        predicted = layers * heads * hd * 512 * per_unit + kv / rate
        assert predicted == pytest.approx(measured, rel=0.30), name
        worst_per_layer_token = max(worst_per_layer_token, abs(layers * 512 * per_layer_token / measured - 1))
    assert worst_per_layer_token > 0.4


def _node(attention: tuple, kv_dim: int = 256) -> Hardware:
    """A measured CPU node with round numbers: 10 GB/s, efficiency 1.0, no fixed time per layer."""
    cal = Calibration(source="measured on node t", measured=True, bandwidth_bytes_per_s=10e9,
                      bandwidth_source="copy", decode_efficiency=(("Q4_K_M", 1.0),), prefill_flops=(),
                      attention_seconds=attention, attention_source="node t, test figures", attention_kv_dim=kv_dim)
    return Hardware(key="node:t", name="our nodes: t", kind="cpu", memory_bytes=16 * 2**30,
                    bandwidth_bytes_per_s=10e9, fp16_flops=1e12, calibration=cal)


def test_decode_adds_the_term_at_the_workload_context():
    """SmolLM2-135M (30 layers × 9 heads × 64) at context 1000 with 200 ps per unit: 30 × 9 × 64 ×
    1000 = 17,280,000 units = 3.456 ms on top of 100,000,000 B at 10 GB/s = 10 ms → 1 / 13.456 ms
    = 74.316 tok/s; without a depth measurement 100.0 tok/s."""
    smol = preset_architecture("smollm2-135m")
    wl = Workload(context=1000)
    tps, formula = decode_rate(smol, _node(((False, 200e-12),)), wl, "Q4_K_M", 100_000_000)
    assert tps == pytest.approx(74.316, rel=1e-4)
    assert "30 attention layers × 9 query heads × 64 head_dim × 1,000 tokens × 200.000 ps = 3.456 ms" in formula
    plain, note = decode_rate(smol, _node(()), wl, "Q4_K_M", 100_000_000)
    assert plain == pytest.approx(100.0) and "no tg measured at depth" in note
    # measured with flash attention off only: a workload with it on is not given that figure
    on, note = decode_rate(smol, _node(((False, 200e-12),)), Workload(context=1000, flash_attn=True),
                           "Q4_K_M", 100_000_000)
    assert on == pytest.approx(100.0) and "not measured with flash attention on" in note


def test_the_term_is_not_stretched_to_attention_it_was_not_measured_on():
    smol = preset_architecture("smollm2-135m")
    units, why = attention_units(smol, Workload(context=1000, kv_dtype="q8_0"))
    assert units is None and "f16" in why
    # Llama 3.1 8B has 8 KV heads × 128 = 1024 wide rows, beyond a 256-wide measured file under flash attention
    llama = preset_architecture("llama-3.1-8b")
    units, why = attention_units(llama, Workload(context=1000, flash_attn=True), measured_kv_dim=256)
    assert units is None and "wider" in why
    units, _ = attention_units(llama, Workload(context=1000), measured_kv_dim=256)
    assert units == 32 * 32 * 128 * 1000
    mla = preset_architecture("deepseek-v3")
    assert attention_units(mla, Workload(context=1000))[0] is None


def test_node_calibration_carries_the_term_from_the_stored_measurement():
    """A stored node measurement whose Q4_K_M file reads at 37.1 GB/s (bandwidth 37.1 GB/s, tg 100 tok/s
    × 371,000,000 B per token: efficiency 1.0) and the llama-bench depth rows of A: the same 215.08 ps."""
    from planner.estimator.calibration import node_calibration

    measurement = {
        "bandwidth": {"bytes_per_s": 37.1e9, "method": "copy"},
        "llama_bench": [{"scheme": "Q4_K_M", "tg_tokens_per_s": 100.0, "bytes_per_token": 371_000_000,
                         "n_layers": 16}],
        "decode_depth": {"scheme": "Q4_K_M", **NODE_FILE, "rows": _rows(False, 65.0302, 57.4454)},
        "conditions": {"threads": 1, "cores": 2, "quiet": False, "busy_reason": "load average 6.6"}}
    cal = node_calibration("n1", "2026-12-07 18:35 UTC", measurement)
    assert dict(cal.attention_seconds)[False] == pytest.approx(215.08e-12, rel=1e-3)
    assert cal.attention_kv_dim == 256
    assert "measured on node n1" in cal.attention_source and "NOT quiet: load average 6.6" in cal.attention_source
