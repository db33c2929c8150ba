"""Recording evaluation results: one Evaluation row per measurement, and the variant's headline
numbers (Variant.metrics, which the catalog pages read) updated in the same transaction.

The planner's estimate for the same configuration (computed at submit time into
job.estimate["planner"] by the evaluate method, handed over by the job runner) is stored beside
the measured peak memory and decode speed, so `Evaluation.objects.filter(kind="memory")` is the
planner's measured-error record: metrics["peak_rss_bytes"] vs metrics["planner_total_bytes"],
method["planner"] = the scheme, runtime, hardware profile, context, batch, KV type, flash
attention, ubatch and threads it estimated. Only like is set against like: the memory evaluation
must have measured what the plan is for ("served at context N", method["what"] equal to the
plan's) under the conditions the plan assumed (method["conditions"], as llama.cpp reported them);
otherwise metrics["planner_not_compared"] says why and no planner figure or error is stored.

A "kl" evaluation whose tokenizers differ has metrics {"skipped": <why>} and no numbers; the
variant's headline then says kl_skipped instead of keeping an older KL. The KL headline keys are
the statistics llama.cpp perplexity --kl-divergence prints (HEADLINE["kl"]).
"""

from __future__ import annotations

from django.db import transaction

from catalog.models import Evaluation, Variant

# Evaluation kind → {metric in the Evaluation: key in Variant.metrics}.
HEADLINE = {
    "perplexity": {"perplexity": "perplexity"},
    # The KL headline: mean KL (± kl_mean_unc), its 99.9th percentile, PPL(Q)/PPL(base) ±, RMS Δp
    # and "same top" (fractions), as llama.cpp perplexity --kl-divergence prints them; the
    # other percentiles stay in the Evaluation (the comparison page's details list them).
    "kl": {"kl_mean": "kl_divergence", "kl_mean_unc": "kl_mean_unc", "kl_p99_9": "kl_p99_9",
           "ppl_ratio": "ppl_ratio", "ppl_ratio_unc": "ppl_ratio_unc", "dp_rms": "dp_rms",
           "same_top": "same_top", "top1_agreement": "top1_agreement",
           "delta_perplexity": "delta_perplexity"},
    "speed": {"decode_tokens_per_s": "tokens_per_second",
              "prefill_tokens_per_s": "prefill_tokens_per_second"},
    "memory": {"peak_rss_bytes": "peak_memory_bytes", "planner_total_bytes": "planner_memory_bytes"},
}


def plan_mismatch(planner: dict, method: dict) -> str | None:
    """Why a memory evaluation's measured figure is not the thing `planner` estimated (another
    process, or the same process under other conditions), or None when they compare."""
    if planner.get("refused"):
        return planner["refused"]
    if not planner.get("total_bytes"):
        return "no planner estimate was made for this job"
    if planner.get("what") != method.get("what"):
        return (f"the planner estimated the variant {planner.get('what') or '?'}; this figure is the "
                f"{method.get('what') or 'evaluation process'}")
    ran = method.get("conditions") or {}
    if not ran:
        return "the measurement recorded no conditions"
    context = planner.get("context")
    checks = [("context", context, ran.get("n_ctx")), ("threads", planner.get("threads"), ran.get("threads")),
              ("K cache type", planner.get("kv_dtype"), ran.get("type_k")),
              ("V cache type", planner.get("kv_dtype"), ran.get("type_v")),
              ("flash attention", planner.get("flash_attn"), ran.get("flash_attn")),
              ("ubatch", min(planner.get("n_ubatch") or 0, context or 0), ran.get("n_ubatch"))]
    diffs = [f"{name} {want} planned, {got} measured" for name, want, got in checks if want != got]
    if ran.get("cpu_isa") != planner.get("cpu_isa"):
        diffs.append(f"planned for an {planner.get('cpu_isa')} CPU, measured on {ran.get('cpu_isa')}")
    return "; ".join(diffs) or None


def _with_planner(planner: dict | None, kind: str, metrics: dict, method: dict) -> tuple[dict, dict]:
    if kind == "memory" and planner and metrics.get("peak_rss_bytes"):
        if reason := plan_mismatch(planner, method):
            return {**metrics, "planner_not_compared": reason}, method
        measured = metrics["peak_rss_bytes"]
        metrics = {**metrics, "planner_total_bytes": planner["total_bytes"],
                   "planner_error_pct": round(100 * (planner["total_bytes"] - measured) / measured, 2)}
        return metrics, {**method, "planner": planner}
    if kind == "speed" and planner and planner.get("decode_tokens_per_s"):
        metrics = {**metrics, "planner_decode_tokens_per_s": planner["decode_tokens_per_s"]}
        method = {**method, "planner": planner}
    return metrics, method


def evaluation_record(*, planner: dict | None, variant: Variant, kind: str, metrics: dict,
                      method: dict) -> Evaluation:
    """Stores one measurement of `variant` and refreshes its headline numbers in Variant.metrics
    (the latest evaluation of each kind wins). `planner` is the planner's estimate for the same
    configuration (the evaluate job's estimate["planner"]), or None.

    Called by the job runner inside the transaction that marks the job succeeded; the runner links
    the row to its job (Job.evaluations: jobs points at catalog, never the other way round)."""
    metrics, method = _with_planner(planner, kind, dict(metrics), dict(method))
    with transaction.atomic():
        evaluation = Evaluation.objects.create(variant=variant, kind=kind, metrics=metrics,
                                               method=method)
        locked = Variant.objects.select_for_update().get(pk=variant.pk)
        current = dict(locked.metrics or {})
        for source, target in HEADLINE.get(kind, {}).items():
            # The newest evaluation of a kind replaces all of that kind's headline numbers: a
            # key it lacks is dropped, not left over from an older one beside the new ones.
            if metrics.get(source) is not None:
                current[target] = metrics[source]
            else:
                current.pop(target, None)
        if kind == "kl":
            _kl_skipped(current, metrics.get("skipped"))
        if kind == "perplexity":
            current["perplexity_method"] = {k: method.get(k) for k in (
                "context", "chunks", "tokens_sha256", "mode")} | {
                "dataset": (method.get("dataset") or {}).get("sha256")}
        current.setdefault("evaluations", {})[kind] = evaluation.pk
        locked.metrics = current
        locked.save(update_fields=["metrics"])
        variant.metrics = current
    return evaluation


def _kl_skipped(headline: dict, reason: str | None) -> None:
    """A skipped KL replaces the variant's KL numbers by its reason (no older KL stays beside
    it); a measured one removes an older reason."""
    headline.pop("kl_skipped", None)
    if reason:
        for key in HEADLINE["kl"].values():
            headline.pop(key, None)
        headline["kl_skipped"] = reason


def latest_evaluations(variants) -> dict[int, dict[str, Evaluation]]:
    """{variant id: {kind: its newest Evaluation}} for the given variants, in one query."""
    out: dict[int, dict[str, Evaluation]] = {}
    for e in Evaluation.objects.filter(variant__in=list(variants)).order_by("created_at", "pk"):
        out.setdefault(e.variant_id, {})[e.kind] = e
    return out
