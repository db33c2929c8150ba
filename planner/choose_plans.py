"""The planner's side of Choose: for each variant of a model, whether and how it runs on one
machine at one context (planner.estimator's rows, fit solver and commands, never re-derived here),
and the planner's time for what a sweep would score when nothing is measured yet."""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import TYPE_CHECKING

from catalog.models import Variant
from jobs import sweep_params
from planner.estimator import (HARDWARE_PROFILES, Architecture, Estimate, EstimatorError, Hardware, Workload,
                               estimate)
from planner.estimator.fit import command as llama_server_command
from planner.estimator.fit import fit, model_file, placement_kind
from planner.estimator.repack import CPU_ISA
from planner.estimator.speed import prefill_seconds
from planner.estimator.vllm_fit import VLLM_SCHEMES, model_placeholder, vllm_fit
from planner.nodes import live_measured_nodes, node_hardware

if TYPE_CHECKING:
    from planner.choose import Candidate

GiB = 2**30
# What a sweep makes and how it evaluates each candidate (the jobs app's sweep), and the profile the
# time is given for when no node of ours has measured itself: the dev box the evaluate job plans on.
SWEEP_TYPES = sweep_params.DEFAULT_TYPES
SWEEP_CHUNKS, SWEEP_CONTEXT, SWEEP_HARDWARE = sweep_params.DEFAULT_CHUNKS, sweep_params.DEFAULT_CONTEXT, "cpu-2core-24gb"
SWEEP_MEASURES = ["mean KLD ± its uncertainty, against the reference", "99.9 % KLD",
                  "PPL(Q)/PPL(base) ±", "same top ±", "perplexity",
                  "decode and prefill tok/s", "peak memory served at the context"]
# Non-GGUF formats -> the planner's scheme (transformers runtime).
HF_SCHEMES = {("hf", "F32"): "FP32", ("hf", "F16"): "FP16", ("hf", "BF16"): "BF16",
              ("bnb-int8", ""): "INT8", ("bnb-nf4", "NF4"): "NF4", ("bnb-nf4", "NF4-DQ"): "NF4-DQ"}


def gib(n: int | None) -> str:
    return "?" if n is None else f"{n / GiB:.2f} GiB"


# ---- the planner's fit --------------------------------------------------------------------------
class Plans:
    """The planner's figures for each variant on one machine at one context: one estimate() per
    runtime (every scheme's row at the context), the fit solver's placement and command."""

    def __init__(self, arch: Architecture, hw: Hardware, wl: Workload):
        self.arch, self.hw, self.wl = arch, hw, wl
        self._estimates: dict[str, Estimate] = {}

    def estimate(self, runtime: str) -> Estimate:
        if runtime not in self._estimates:
            self._estimates[runtime] = estimate(self.arch, self.hw, replace(self.wl, runtime=runtime))
        return self._estimates[runtime]

    def place(self, c: Candidate) -> None:
        v = c.variant
        try:
            if v.format == Variant.Format.GGUF:
                self._gguf(c, (v.quant_type or "").strip().upper())
            elif (scheme := HF_SCHEMES.get((v.format, (v.quant_type or "").strip().upper()))
                  or HF_SCHEMES.get((v.format, ""))):
                self._transformers(c, scheme)
            else:
                c.fit_note = f"the planner has no scheme for {v.label} variants"
        except EstimatorError as exc:
            c.fit, c.fit_note = "refused", f"the planner refused it: {exc}"

    def _row(self, runtime: str, scheme: str, family: str):
        row = next((r for r in self.estimate(runtime).rows if r.scheme == scheme), None)
        if row is None and scheme:
            # A scheme the planner's table leaves out by default (Q4_1, Q5_1, IQ4_NL...) is still
            # planned when a variant is one.
            try:
                row = estimate(self.arch, self.hw, replace(self.wl, runtime=runtime), [scheme]).rows[0]
            except EstimatorError:
                return None
        if row is None or (family and row.family != family):
            return None
        return row

    def _gguf(self, c: Candidate, scheme: str) -> None:
        row = self._row("llama.cpp", scheme, "gguf")
        if row is None:
            c.fit_note = f"the planner has no GGUF scheme {scheme or '(none)'}: not planned"
            return
        arch, hw, wl = self.arch, self.hw, self.wl
        c.memory_bytes = row.total_bytes
        if row.fits:
            c.fit, c.headroom_bytes = "device", row.headroom_bytes
        elif hw.kind not in CPU_ISA and placement_kind(arch, hw, wl, scheme) == "offload":
            c.fit = "offload"
        else:
            c.fit = "none"
        solved = fit(arch, hw, wl, scheme)
        if c.fit == "device":
            c.tokens_per_s, c.speed_note = row.decode_tokens_per_s, row.formulas.get("decode_tokens_per_s", "")
            # The solver grows the context to the largest that fits; the command is for the one asked.
            solved = replace(solved, context=wl.context)
            c.fit_note = (f"{gib(row.total_bytes)} of the {gib(row.capacity_bytes)} the planner fills, "
                          f"{gib(row.headroom_bytes)} left")
        elif c.fit == "offload":
            c.tokens_per_s = solved.decode_tokens_per_s
            c.speed_note = next((r for r in solved.reasons if r.startswith("decode")), "")
            c.fit_note = (f"-ngl {solved.ngl}: {solved.gpu_layers} of {solved.n_layers} layers on the device, "
                          f"{solved.system_ram_bytes / GiB:.2f} GiB in system RAM")
        else:
            c.fit_note = next((r for r in solved.reasons if r.startswith("doesn't fit")),
                              f"needs {gib(row.total_bytes)}, over the {gib(row.capacity_bytes)} the planner fills")
            return
        command = llama_server_command(arch, wl, solved)
        gguf = next((f.path for f in c.variant.files.all() if f.path.lower().endswith(".gguf")), None)
        if gguf:  # the variant's own file in place of the planner's generic name
            command = command.replace(model_file(arch, scheme), shlex.quote(gguf.rsplit("/", 1)[-1]), 1)
        else:
            c.command_note = f"replace {model_file(arch, scheme)} with the variant's .gguf file"
        c.command = command

    def _transformers(self, c: Candidate, scheme: str) -> None:
        row = self._row("transformers", scheme, "")
        if row is None:
            c.fit_note = f"the planner has no {scheme} scheme for this model"
            return
        c.memory_bytes = row.total_bytes
        c.fit = "device" if row.fits else "none"
        if row.fits:
            c.headroom_bytes = row.headroom_bytes
        c.tokens_per_s, c.speed_note = (row.decode_tokens_per_s,
                                        row.formulas.get("decode_tokens_per_s", "")) if row.fits else (None, "")
        c.fit_note = (f"transformers: {gib(row.total_bytes)} of the {gib(row.capacity_bytes)} the planner "
                      "fills (the fit solver's offload plans llama.cpp only)")
        vllm_scheme = "BF16" if scheme in ("FP16", "BF16") else scheme
        if row.fits and self.hw.kind == "gpu" and vllm_scheme in VLLM_SCHEMES:
            # no id: the variant is this catalog's files, not a Hub repo, so vllm_fit writes a
            # flagged folder placeholder
            served = vllm_fit(self.arch, self.hw, replace(self.wl, runtime="vllm"), vllm_scheme, "")
            if served.fits:
                c.command = served.command
                c.command_note = (f"replace {model_placeholder(self.arch)} with the folder of this variant's "
                                  "downloaded files")
                return
        c.command_note = "the planner writes llama-server commands for GGUF files and vllm serve commands on GPUs"


# ---- nothing measured yet -----------------------------------------------------------------------
def sweep(arch: Architecture | None, candidates: list[Candidate], reference: Variant | None) -> dict:
    """What a sweep ("Measure quants") would make and measure for this model, and the planner's
    time for its scoring: SWEEP_CHUNKS × SWEEP_CONTEXT tokens for each of the SWEEP_TYPES and the
    reference's once (the KL reference: the one the evaluations used, else the lineage root, the
    base a sweep starts from), each chunk one prefill (planner.estimator.speed.prefill_seconds) on
    the node that would run it: the first live measured node of ours, else the dev-box profile.
    Quantizing, the importance matrix, loading and the speed runs are not in the figure: the
    planner has no model of them."""
    roots = [c for c in candidates if c.variant.parent_id is None]
    ref = next((c for c in candidates if c.variant == reference), None) or (roots[0] if roots else None)
    nodes = live_measured_nodes()
    hw = node_hardware(nodes[0]) if nodes else HARDWARE_PROFILES[SWEEP_HARDWARE]
    out = {"measures": SWEEP_MEASURES, "types": list(SWEEP_TYPES), "reference": ref.variant.pk if ref else None,
           "unevaluated": [c.variant.pk for c in candidates if not c.usable and c is not ref],
           "chunks": SWEEP_CHUNKS, "context": SWEEP_CONTEXT, "hardware": hw.name, "seconds": None,
           "type_seconds": {}, "reference_seconds": None, "seconds_note": "",
           "not_counted": "quantizing, the importance matrix, loading each variant and the speed runs"}
    if arch is None:
        out["seconds_note"] = "the planner can't plan this model, so it gives no time"
        return out
    if ref is None or ref.variant.format != Variant.Format.GGUF:
        out["seconds_note"] = ("the reference is not a GGUF file, whose scoring the planner times" if ref else
                               "the model has no variant to start a sweep from")
        return out
    wl = Workload(runtime="llama.cpp", context=SWEEP_CONTEXT)
    rows = {r.scheme: r for r in estimate(arch, hw, wl).rows if r.family == "gguf"}
    seconds: dict[str, float] = {}
    for scheme in dict.fromkeys([*SWEEP_TYPES, (ref.variant.quant_type or "").upper()]):
        if scheme not in rows:
            out["seconds_note"] = f"the planner has no GGUF scheme {scheme or '(none)'} to time"
            return out
        chunk, why = prefill_seconds(arch, hw, wl, scheme, rows[scheme].weights_bytes)
        if chunk is None:
            out["seconds_note"] = why
            return out
        seconds[scheme] = chunk * SWEEP_CHUNKS
    ref_seconds = seconds[(ref.variant.quant_type or "").upper()]
    out["type_seconds"] = {t: round(seconds[t], 1) for t in SWEEP_TYPES}
    out["reference_seconds"] = round(ref_seconds, 1)
    out["seconds"] = round(sum(seconds[t] for t in SWEEP_TYPES) + ref_seconds, 1)
    return out
