"""Where a speed estimate's constants come from: a measurement on one of our nodes, or a published
llama.cpp measurement on the same card (speed.CITED); without either no speed is shown.

A `Calibration` holds, per GGUF scheme, llama.cpp's decode efficiency (achieved bytes read per
second ÷ the memory bandwidth it is relative to) and its prefill rate (achieved FLOP/s), with the
text saying where each came from. `node_calibration()` derives one from a worker's node measurement
(jobs/node_bench.py writes it on the Worker row):

    decode efficiency(scheme) = bytes read per token / ((1 / tg − n_layers × fixed time per layer) × bandwidth)
    prefill FLOP/s(scheme)     = n_prompt × FLOP per prompt token / (n_prompt / pp tokens/s − weight read time)

and, from a small MoE measured beside the dense file (its experts' tensors counted apart):

    seconds per MoE layer and step = (1 / tg − bytes read per token / (bandwidth × efficiency)
                                      − n_layers × fixed time per layer) / MoE layers
    expert matmul rate ÷ dense rate = expert FLOP / (n_prompt / pp − ubatch read
                                      − other FLOP / dense FLOP/s) / dense FLOP/s

where the bytes read per token and the FLOP per prompt token are those of the measured file, counted
from its own tensor headers by the node measurement, and the weight read time is one pass over the
file's weights at the decode rate just derived (a prompt of one ubatch streams every weight once,
speed.prefill_seconds). The tok/s used are llama-bench's best repetition (the least disturbed by
other work); its mean and deviation are stored beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .speed_depth import attention_cost

# Precision order of the GGUF schemes (schemes.GGUF_SCHEMES); a scheme that was not measured takes
# the efficiency of the measured scheme nearest in this order, and the reason says so.
PRECISION_ORDER = ("F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_1",
                   "Q4_0", "MXFP4_MOE", "IQ4_XS", "Q3_K_L", "Q3_K_M", "Q3_K_S", "IQ3_XXS", "Q2_K", "IQ2_XS")


MAX_FIXED_SHARE = 0.5


@dataclass(frozen=True)
class Calibration:
    source: str                                   # "measured on node X at T (…)" or "cited: …"
    measured: bool                                # measured on this very machine
    bandwidth_bytes_per_s: float                  # the bandwidth the decode efficiencies are relative to
    bandwidth_source: str
    decode_efficiency: tuple[tuple[str, float], ...]      # (scheme, efficiency)
    prefill_flops: tuple[tuple[str, float], ...] = ()     # (scheme, achieved FLOP/s)
    fixed_seconds_per_layer: float = 0.0          # per decode step and layer (graph walk, launches)
    fixed_source: str = ""
    error_note: str = ""                          # the speed model's measured error, where recorded
    # decode's attention over the context: (flash_attn, seconds per layer × query head × head_dim ×
    # token), measured at two depths on the node (speed_depth.py); () where none was measured
    attention_seconds: tuple[tuple[bool, float], ...] = ()
    attention_source: str = ""
    attention_kv_dim: int = 0                     # KV heads × head_dim of the file it was measured on
    # a MoE layer's time per decode step beyond reading its chosen experts, and the experts' matmul
    # rate in prefill as a fraction of the dense rate (0: not measured: experts at the dense rate)
    moe_seconds_per_layer: float = 0.0
    expert_prefill_ratio: float = 0.0
    moe_source: str = ""

    def efficiency(self, scheme: str) -> tuple[float, str]:
        """(efficiency, where it came from) for a scheme: its own, else the nearest measured one."""
        return _nearest(self.decode_efficiency, scheme, "decode efficiency")

    def prefill(self, scheme: str) -> tuple[float, str] | None:
        if not self.prefill_flops:
            return None
        return _nearest(self.prefill_flops, scheme, "prefill FLOP/s")


def _nearest(table: tuple[tuple[str, float], ...], scheme: str, what: str) -> tuple[float, str]:
    values = dict(table)
    if scheme in values:
        return values[scheme], f"{scheme}'s own"
    if "*" in values:
        return values["*"], "one figure for every scheme"
    order = {s: i for i, s in enumerate(PRECISION_ORDER)}
    here = order.get(scheme, order["Q4_K_M"])
    best = min(values, key=lambda s: (abs(order.get(s, here) - here), order.get(s, 99)))
    return values[best], f"{best}'s ({scheme} was not measured: the nearest measured scheme in precision)"


def node_calibration(hostname: str, measured_at: str, measurement: dict[str, Any]) -> Calibration | None:
    """A node's Calibration from its stored measurement (jobs/node_bench.py); None when it holds no
    usable figure (no bandwidth, or no llama-bench row)."""
    bandwidth = measurement.get("bandwidth", {}).get("bytes_per_s")
    rows = [r for r in measurement.get("llama_bench", []) if r.get("tg_tokens_per_s") and r.get("bytes_per_token")]
    if not bandwidth or not rows:
        return None
    cond = measurement.get("conditions", {})
    quiet = "quiet" if cond.get("quiet") else "NOT quiet: " + str(cond.get("busy_reason", "the node was busy"))
    source = (f"measured on node {hostname} at {measured_at} (llama-bench, {cond.get('threads')} threads of "
              f"{cond.get('cores')} cores, load {cond.get('load_before')} → {cond.get('load_after')}, {quiet})")

    def best(r: dict, kind: str) -> float:
        return r.get(f"{kind}_best_tokens_per_s") or r[f"{kind}_tokens_per_s"]

    fixed = measurement.get("fixed_cost") or {}
    per_layer = float(fixed.get("seconds_per_layer") or 0.0)
    # A two-point fit amplifies noise: the fixed time is used only from a quiet measurement, and only
    # while it leaves most of the dense bench file's step to reading (MAX_FIXED_SHARE); else 0, and said.
    fixed_note = ""
    if per_layer and not cond.get("quiet"):
        per_layer, fixed_note = 0.0, " — not used: the measurement was not quiet"
    elif per_layer and _fixed_share(per_layer, fixed["scheme"], rows, best) > MAX_FIXED_SHARE:
        per_layer, fixed_note = 0.0, f" — not used: over {MAX_FIXED_SHARE:.0%} of the bench model's step, noise"

    def efficiency(r: dict) -> float:   # the time left for reading once the fixed per-layer time is out
        reading = 1 / best(r, "tg") - per_layer * r.get("n_layers", 0)
        if reading <= 0:
            return best(r, "tg") * r["bytes_per_token"] / bandwidth
        return r["bytes_per_token"] / (reading * bandwidth)

    decode = tuple((r["scheme"], efficiency(r)) for r in rows)
    prefill = []
    for r in rows:
        if not (r.get("pp_tokens_per_s") and r.get("flops_per_prompt_token") and r.get("n_prompt")):
            continue
        read = 1 / best(r, "tg")   # one pass over the file's weights: one decode step
        compute = r["n_prompt"] / best(r, "pp") - read
        if compute > 0:
            prefill.append((r["scheme"], r["n_prompt"] * r["flops_per_prompt_token"] / compute))
    attention, attention_source = (), ""
    depth = measurement.get("decode_depth")
    if depth and depth.get("rows"):
        eff = dict(decode).get(depth.get("scheme"), 0.0)
        attention, attention_source = attention_cost(depth, bandwidth * eff) if eff else ((), "")
        attention_source = f"measured on node {hostname}, {attention_source}"
        if not cond.get("quiet"):
            attention_source += f" ({quiet})"
    moe_layer, expert_ratio, moe_source = _moe_terms(measurement.get("moe") or {}, bandwidth, dict(decode),
                                                     dict(prefill), per_layer, fixed_note)
    if moe_source:
        moe_source = f"measured on node {hostname}: {moe_source}"
    bw = measurement["bandwidth"]
    fixed_source = (f"measured on node {hostname}: {fixed['scheme']} at {fixed['layers'][0]} and {fixed['layers'][1]} "
                    f"layers decoded at {fixed['tg_best_tokens_per_s'][0]} and {fixed['tg_best_tokens_per_s'][1]} tok/s"
                    f" → {fixed['raw_seconds_per_layer'] * 1e6:.1f} µs per layer{fixed_note}"
                    if fixed else "not measured: 0")
    return Calibration(source=source, measured=True, bandwidth_bytes_per_s=float(bandwidth),
                       bandwidth_source=f"measured on node {hostname}: {bw.get('method', 'copy')}",
                       decode_efficiency=decode, prefill_flops=tuple(prefill), fixed_seconds_per_layer=per_layer,
                       fixed_source=fixed_source, attention_seconds=attention, attention_source=attention_source,
                       attention_kv_dim=int(depth["n_kv_heads"] * depth["head_dim"]) if attention else 0,
                       moe_seconds_per_layer=moe_layer, expert_prefill_ratio=expert_ratio, moe_source=moe_source)


def _fixed_share(per_layer: float, scheme: str, rows: list[dict], best) -> float:
    """The fixed time's share of a decode step of the dense bench file in that scheme (the file whose
    reading rate it is taken out of)."""
    row = next((r for r in rows if r["scheme"] == scheme and r.get("n_layers")), None)
    return per_layer * row["n_layers"] * best(row, "tg") if row else 1.0


def _moe_terms(moe: dict[str, Any], bandwidth: float, decode: dict[str, float], prefill: dict[str, float],
               per_layer: float, fixed_note: str) -> tuple[float, float, str]:
    """(seconds per MoE layer and step, expert prefill rate ÷ dense rate, where they came from) from the
    node's small MoE (jobs/node_bench.py BENCH_MOE_SHAPE), read against the dense file's figures of
    the same scheme. Like the fixed time per layer these are differences of measurements: used only
    where the dense fixed time could be (a quiet node), and a difference below zero is noise: 0."""
    if not (moe.get("tg_best_tokens_per_s") and moe.get("moe_layers") and moe.get("scheme") in decode):
        return 0.0, 0.0, ""
    shape = (f"{moe['file']}: {moe['n_layers']} layers of {moe['experts']} experts, {moe['experts_per_token']} per "
             f"token, tg {moe['tg_best_tokens_per_s']} tok/s, pp{moe.get('n_prompt')} {moe.get('pp_best_tokens_per_s')}")
    if fixed_note:
        return 0.0, 0.0, f"{shape} — not used: the dense fixed time per layer was not ({fixed_note.strip(' —')})"
    rate = bandwidth * decode[moe["scheme"]]
    step = 1 / moe["tg_best_tokens_per_s"] - moe["bytes_per_token"] / rate - per_layer * moe["n_layers"]
    layer = max(0.0, step / moe["moe_layers"])
    ratio, ratio_note = 0.0, "no prefill figure"
    dense_flops = prefill.get(moe["scheme"])
    if dense_flops and moe.get("pp_best_tokens_per_s") and moe.get("bytes_per_prompt"):
        n = moe["n_prompt"]
        expert_flop = moe["expert_flops_per_prompt_token"] * n
        other = (moe["flops_per_prompt_token"] * n - expert_flop) / dense_flops
        spent = n / moe["pp_best_tokens_per_s"] - moe["bytes_per_prompt"] / rate - other
        if spent > 0:
            ratio = expert_flop / spent / dense_flops
            ratio_note = f"experts' matmuls at {ratio:.3f} × the dense rate"
        else:
            ratio_note = "experts' matmul time below zero (noise): experts at the dense rate"
    return layer, ratio, f"{shape} → {step / moe['moe_layers'] * 1e6:.1f} µs per MoE layer and step; {ratio_note}"
