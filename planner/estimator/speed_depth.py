"""Decode's attention over the context already in the cache, measured on the node.

A decode step at depth n attends, in every attention layer and for every query head, over the n
cached tokens: a head_dim dot product with each key, a softmax, a head_dim weighted sum of the
values. On a CPU this costs far more than reading the KV bytes at the node's bandwidth, and the
rest follows the query heads rather than the KV heads (the query heads of a GQA group re-read the
same keys and values from cache). So the node measures llama-bench tg at two depths (jobs/node_bench.py,
`decode_depth`) and the term is

    seconds per unit = (1 / tg(d1) − 1 / tg(d0) − extra KV bytes / read rate)
                       / (layers × query heads × head_dim × (d1 − d0))

per flash-attention mode (llama.cpp's CPU kernels differ), and a decode step at context c adds
units(arch, c) × that on top of reading its KV bytes (which the speed model counts with the
weights). The unit was chosen by measurement (docs/benchmarks.md, "Decode at context depth").

The term is applied where it was measured: llama.cpp on a measured node, the workload's
flash-attention mode, an f16 KV cache, and plain multi-head / grouped-query attention layers
(sliding-window layers attend over their window; a hybrid's recurrent layers over nothing); with
flash attention on, KV rows no wider than the measured file's. Elsewhere (MLA, per-layer KV
layouts, other KV types, cited hardware) only the KV bytes are read at the bandwidth, and the
formula says why.
"""

from __future__ import annotations

from typing import Any

from .architecture import Architecture
from .workload import Workload

F16_BYTES = 2   # the KV cache type the depth runs use (llama-bench's default -ctk/-ctv f16)


def attention_cost(depth: dict[str, Any], read_bytes_per_s: float) -> tuple[tuple[tuple[bool, float], ...], str]:
    """((flash_attn, seconds per unit), ...) and where they came from, from a node measurement's
    `decode_depth` (jobs/node_bench.py). `read_bytes_per_s` is the rate the node decodes that file's
    bytes at (bandwidth × its scheme's decode efficiency): the deeper run's extra KV bytes, read at
    that rate as the speed model reads them, are taken out first, so the term is what attending
    costs beyond reading. A mode whose deeper run was not slower than that (noise) yields no figure,
    and the text says so."""
    rows = depth.get("rows") or []
    unit = depth["n_layers"] * depth["n_heads"] * depth["head_dim"]
    kv_per_token = 2 * depth["n_layers"] * depth["n_kv_heads"] * depth["head_dim"] * F16_BYTES
    out, notes = [], []
    for fa in (False, True):
        mine = {r["n_depth"]: r for r in rows if r["flash_attn"] is fa and r.get("type_k", "f16") == "f16"}
        if len(mine) < 2:
            continue
        d0, d1 = min(mine), max(mine)
        t0, t1 = 1 / mine[d0]["tg_best_tokens_per_s"], 1 / mine[d1]["tg_best_tokens_per_s"]
        t_kv = kv_per_token * (d1 - d0) / read_bytes_per_s
        what = (f"flash attention {'on' if fa else 'off'}: tg{depth['n_gen']} {mine[d0]['tg_best_tokens_per_s']} "
                f"tok/s at depth {d0}, {mine[d1]['tg_best_tokens_per_s']} at {d1}, less {t_kv * 1e3:.3f} ms reading "
                f"{kv_per_token * (d1 - d0):,} B more KV")
        if t1 - t0 <= t_kv:
            notes.append(f"{what} — no slower than that: no figure")
            continue
        seconds = (t1 - t0 - t_kv) / (unit * (d1 - d0))
        out.append((fa, seconds))
        notes.append(f"{what} → {seconds * 1e12:.3f} ps per (layer × query head × head_dim × token)")
    shape = (f"{depth.get('file', 'the bench file')}: {depth['n_layers']} layers × {depth['n_heads']} query heads "
             f"({depth['n_kv_heads']} KV) × {depth['head_dim']} head_dim, {depth.get('threads')} threads, best of "
             f"{depth.get('repetitions')}")
    return tuple(out), f"{shape}; " + "; ".join(notes)


def attention_units(arch: Architecture, wl: Workload, measured_kv_dim: int = 0) -> tuple[int | None, str]:
    """Layers × query heads × head_dim × tokens attended, summed over the attention layers and the
    batch's sequences, for one decode step at the workload's full context; None with the reason
    where the measured term does not describe this model's attention. `measured_kv_dim`: the KV width
    (KV heads × head_dim) of the file the flash-attention term was measured on."""
    if wl.flash_attn and measured_kv_dim and arch.kv_dim > measured_kv_dim:
        # llama.cpp's CPU flash-attention kernel walks each head's keys and values at a stride of the
        # whole KV row; with wide KV rows that costs more than the measured term (16 KV heads × 64
        # measured 2.7× the term from 4 KV heads: docs/benchmarks.md), so it is not extrapolated
        return None, (f"flash attention with {arch.n_kv_heads} KV heads × {arch.head_dim} is wider than the measured "
                      f"{measured_kv_dim}-wide KV rows, where the CPU kernel was measured slower than this term")
    if arch.is_mla:
        return None, "MLA attends over a compressed latent, not the measured per-head keys and values"
    if arch.kv_layout:
        return None, "layers differ in KV shape; the term was measured on uniform attention layers"
    if wl.kv_dtype != "f16":
        return None, f"the term was measured with an f16 KV cache, not {wl.kv_dtype}"
    per_layer = arch.n_heads * arch.head_dim
    c = wl.context
    swa = set(arch.swa_layers) if arch.sliding_window and arch.swa_in_llama_cpp else set()
    layers = arch.hybrid.attention_layers if arch.hybrid else range(arch.n_layers)
    tokens = sum(min(c, arch.sliding_window) if i in swa else c for i in layers)
    units = per_layer * tokens * wl.batch
    n = len(layers)
    where = (f"{n} attention layers × {arch.n_heads} query heads × {arch.head_dim} head_dim × {c:,} tokens"
             if not swa else f"{arch.n_heads} query heads × {arch.head_dim} head_dim × {tokens:,} layer-tokens "
             f"({len(swa)} of {n} layers see a {arch.sliding_window:,}-token window)")
    return units, where + (f" × {wl.batch} seqs" if wl.batch > 1 else "")
