"""The `evaluate` job method: what quantization cost a variant — perplexity on a text, KL divergence
and top-1 agreement against a reference variant, prefill/decode speed and peak memory — each
returned as an Evaluation with the method (dataset, tokens, context, engine, threads) beside it.

The engine follows the input's format and is loaded by `engines.open_engine`, the same load chat
and /v1 serve the variant through, so the speed and quality measured are those of what is served;
the scoring is the same for every engine (evaluate_common.py, llama.cpp's perplexity scheme). One job evaluates the target and,
for KL, the reference over the same token ids in one child process:

1. tokenize with the target's own tokenizer, cut the chunks;
2. memory (GGUF): before anything is loaded here, a fresh process serves the target through the
   runtime's llama.cpp engine at this context and reports its peak RSS (evaluate_memory.py), the
   figure the planner estimates (job.estimate["planner"], "served at context N"); other formats
   keep this process's peak RSS, labelled as the evaluation process and not set against the plan;
3. target: speed, then the perplexity pass;
4. reference (default: the lineage root; none when the input is the root): its logits over the
   same chunks give per-token KL(ref ‖ target). KL needs both tokenizers to give the same ids;
   where they don't (another vocabulary, BOS, pre-tokenizer...), the "kl" Evaluation says
   {"skipped": <why>} and the job still succeeds with its perplexity, speed and memory.
   The reference's log-probs are kept as llama.cpp's --kl-divergence-base file (16 bits per
   vocabulary entry per scored token: 127 × 49,156 × 2 bytes = 12.5 MB per 256-token chunk of
   SmolLM2) in the worker's cache folder (ctx.base_logits_dir), so the next variant compared with
   the same reference, text, context and chunks reads them instead of loading the reference; the
   statistics are llama-perplexity --kl-divergence's (evaluate_common.kl_statistics), computed
   from the rows as stored, hit or not.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from formats import llama_kld
from formats.digest import file_sha256
from jobs.methods import evaluate_common as common
from jobs.methods import evaluate_memory as served
from jobs.methods import hf_common
from jobs.methods.base import Evaluation, JobError, Method, RunContext

MODES = {"quick": {"context": 256, "chunks": 4}, "full": {"context": 512, "chunks": 0}}
_PARAMS = {"mode", "context", "chunks", "reference", "speed", "speed_seconds", "prompt_tokens", "gen_tokens",
           "threads", "dataset_path", "hub_dataset"}
FORMATS = ("gguf", "hf", "bnb-nf4", "bnb-int8", "gptq")
PLANNER_HARDWARE = served.PLANNER_HARDWARE
# Target log-probs kept in memory between the perplexity and KL passes up to this size; above
# it the KL pass evaluates the target again instead.
CACHE_LIMIT_BYTES = 512 * 1024**2
# KL runs only where the reference tokenizes this much of the dataset to the target's ids.
TOKENS_CHECK_CHARS = 20_000


def planner_scheme(variant) -> str | None:
    """The planner's scheme name (planner/estimator/schemes.py) for a catalog variant."""
    qt = (variant.quant_type or "").strip()
    if variant.format == "gguf":
        return {"F32": "FP32"}.get(qt.upper(), qt.upper())
    if variant.format == "hf":
        return {"F32": "FP32", "F16": "FP16", "BF16": "BF16"}.get(qt.upper())
    if variant.format == "bnb-nf4":
        return {"nf4-dq": "NF4-DQ", "nf4": "NF4"}.get(qt.lower(), "INT4")
    if variant.format == "bnb-int8":
        return "INT8"
    if variant.format == "gptq":
        return "GPTQ-" + qt.replace("-act", "")
    return None


def planner_memory(variant, context: int) -> dict | None:
    """The planner's estimate of a process holding the variant at `context` in its runtime, on
    the CPU profile (for routing the job: the evaluation process holds at least that). None when
    the planner can't say."""
    try:
        from planner.estimator import HARDWARE_PROFILES, Architecture, Workload, estimate

        scheme = planner_scheme(variant)
        runtime = "llama.cpp" if variant.format == "gguf" else "transformers"
        row = estimate(Architecture.from_config(hf_common.model_config(variant)),
                       HARDWARE_PROFILES[PLANNER_HARDWARE], Workload(runtime=runtime, context=context),
                       [scheme]).rows[0]
    except Exception:  # EstimatorError, an unknown scheme, a config without the shape
        return None
    return {"scheme": scheme, "runtime": runtime, "hardware": PLANNER_HARDWARE, "context": context,
            "total_bytes": int(row.total_bytes), "weights_bytes": int(row.weights_bytes),
            "decode_tokens_per_s": row.decode_tokens_per_s, "supported": row.supported}


def lineage_root(variant):
    seen = set()
    while variant.parent_id and variant.pk not in seen:
        seen.add(variant.pk)
        variant = variant.parent
    return variant


class EvaluateMethod(Method):
    name = "evaluate"
    kind = "evaluate"
    devices = ("cpu", "cuda")
    input_formats = FORMATS
    soft_time_limit = 4 * 3600
    hard_time_limit = 6 * 3600
    child_env = {"GPTQMODEL_CPU_WORKERS": "2"}

    # ---- web process ----
    def validate(self, params: dict, variant) -> dict:
        params = dict(params or {})
        hf_common.reject_unknown(params, _PARAMS)
        mode = hf_common.clean_choice(params, "mode", tuple(MODES), "quick")
        context = hf_common.clean_number(params, "context", MODES[mode]["context"], kind=int,
                                         low=16, high=32768)
        if context % 2:
            raise JobError.field("context", f"must be even (half of it is scored); got {context}")
        cleaned = {
            "mode": mode, "context": context,
            "chunks": hf_common.clean_number(params, "chunks", MODES[mode]["chunks"], kind=int,
                                             low=0, high=100_000),
            "speed": hf_common.clean_bool(params, "speed", True),
            "prompt_tokens": hf_common.clean_number(params, "prompt_tokens", 128, kind=int, low=1, high=8192),
            "gen_tokens": hf_common.clean_number(params, "gen_tokens", 32, kind=int, low=1, high=2048),
            "threads": hf_common.clean_number(params, "threads", 2, kind=int, low=1, high=256),
            # The time the speed repeats may take (evaluate_speed.StopRule.max_seconds).
            "speed_seconds": hf_common.clean_number(params, "speed_seconds", 30.0, kind=float,
                                                    low=1.0, high=600.0),
        }
        cleaned.update(self._clean_text(params))
        cleaned.update(self._clean_reference(params.get("reference"), variant))
        return cleaned

    @staticmethod
    def _clean_text(params: dict) -> dict:
        path, hub = params.get("dataset_path"), params.get("hub_dataset")
        if hub:
            return {"hub_dataset": str(hub).strip(), **_hub_text_file(str(hub).strip())}
        if not isinstance(path, str) or not path.strip():
            raise JobError.field("dataset", "choose a text dataset (a catalog .txt dataset or a "
                                 "server path), or a Hub dataset id in hub_dataset")
        # Existence is checked in run(): the file lives on the worker, not necessarily here.
        return {"dataset_path": path.strip()}

    @staticmethod
    def _clean_reference(value, variant) -> dict:
        """KL reference: the lineage root by default, a chosen variant id, or "none"."""
        from catalog.models import Variant

        if value in ("none", "off", False):
            return {"reference": None}
        if value in (None, "", "root"):
            ref = lineage_root(variant)
        else:
            try:
                ref = Variant.objects.select_related("model").filter(pk=int(value)).first()
            except (TypeError, ValueError):
                raise JobError.field("reference", f"must be a variant id, 'root' or 'none'; got {value!r}")
            if ref is None or ref.model.team_id != variant.model.team_id:
                raise JobError.field("reference", f"no variant {value} in this team")
        if ref.pk == variant.pk:
            return {"reference": None}
        if ref.format not in FORMATS:
            raise JobError.field("reference", f"can't evaluate a {ref.get_format_display()} reference")
        vocab = (ref.model.config or {}).get("vocab_size"), (variant.model.config or {}).get("vocab_size")
        if ref.model_id != variant.model_id and (None in vocab or vocab[0] != vocab[1]):
            raise JobError.field("reference", f"{ref} has a different tokenizer/vocabulary "
                                 f"({vocab[0]} vs {vocab[1]} tokens); KL needs the same tokens")
        return {"reference": ref.pk, "reference_format": ref.format,
                "reference_label": ref.label, "reference_dir": str(ref.directory),
                "reference_files": [str(f.absolute_path) for f in ref.files.all()],
                "reference_sha256": [f.sha256 for f in ref.files.all()]}

    def estimate(self, params: dict, variant) -> dict:
        """peak_memory_bytes (what routing reserves for the job): the planner's total for the
        target at this context, plus the reference's when KL is measured (both are loaded in the
        KL pass), plus the cached log-probs; output_bytes 0 (an evaluation writes no variant).
        "planner" is the planner's figure for what the memory evaluation measures — the variant
        served at this context (evaluate_memory.served_plan) — recorded beside the measured peak
        and shown on the job page as the same number."""
        from catalog.models import Variant

        context = params["context"]
        routing = planner_memory(variant, context)
        fallback = variant.total_bytes + hf_common.RUNTIME_OVERHEAD_BYTES
        peak = routing["total_bytes"] if routing else fallback
        if params.get("reference"):
            ref = Variant.objects.select_related("model").get(pk=params["reference"])
            ref_plan = planner_memory(ref, context)
            peak += ref_plan["weights_bytes"] if ref_plan else ref.total_bytes
            peak += CACHE_LIMIT_BYTES
        return {"peak_memory_bytes": int(peak), "output_bytes": 0,
                "planner": self.served_plan(params, variant)}

    @staticmethod
    def served_plan(params: dict, variant) -> dict:
        """The planner's estimate for the memory evaluation's served process; {"refused": why}
        where that is not what the evaluation measures."""
        if variant.format != "gguf":
            return {"what": served.served_label(params["context"]), "context": params["context"],
                    "refused": f"a {variant.get_format_display()} variant's memory is measured as "
                               "the evaluation process, not as served; the planner estimates a "
                               "served process, so the two are not compared"}
        try:
            config = hf_common.model_config(variant)
        except JobError as exc:
            return {"what": served.served_label(params["context"]), "context": params["context"],
                    "refused": str(exc)}
        return served.served_plan(config=config, scheme=planner_scheme(variant),
                                  context=params["context"], threads=params["threads"])

    # ---- child process ----
    def run(self, ctx: RunContext) -> list[Evaluation]:
        from engines import open_engine
        from jobs.methods.gpu_placement import placement_for

        p = ctx.params
        text_path = _text_file(p, Path(ctx.workdir))
        served_memory = None
        if ctx.input_format == "gguf":  # before this process loads anything (own memory apart)
            ctx.progress(0.0, "memory")
            served_memory = self._served_memory(ctx, text_path)
        ctx.progress(0.01, "load")
        started = time.monotonic()
        files = [Path(f.path) for f in ctx.input_files]
        target = open_engine(ctx.input_format, files, n_ctx=p["context"], threads=p["threads"],
                             device=ctx.device, node=ctx.node,
                             placement=placement_for(ctx.input_format, files, n_ctx=p["context"],
                                                     device=ctx.device, node=ctx.node))
        ctx.progress(0.02, "tokenize")
        needed = p["chunks"] * p["context"] + 1 if p["chunks"] else 0
        ids, _ = common.tokenize_enough(target.tokenize, text_path, max(needed, p["prompt_tokens"] + 1))
        chunks = common.make_chunks(ids, context=p["context"], chunks=p["chunks"], bos_id=target.bos_id)
        ctx.log(f"{len(chunks.tokens)} chunks x {chunks.context} tokens, "
                f"{chunks.scored_tokens} scored, tokens sha256 {chunks.sha256[:12]}")
        shared = {
            "dataset": {"id": p.get("dataset"), "path": str(text_path), "name": text_path.name,
                        "sha256": file_sha256(text_path), "hub": p.get("hub_dataset")},
            "tokenizer": target.tokenizer_info, "tokens_sha256": chunks.sha256,
        }
        results = []
        has_ref = bool(p.get("reference"))
        if p["speed"]:
            ctx.progress(0.04, "speed")
            from jobs.methods.evaluate_speed import StopRule, measure

            prompt = ids[:p["prompt_tokens"]]
            with target.speed_runner(prompt, p["gen_tokens"]) as run_once:
                speed, about = measure(run_once, prompt_tokens=len(prompt),
                                       gen_tokens=p["gen_tokens"], engine_info=target.info,
                                       rule=StopRule(max_seconds=p.get("speed_seconds", 30.0)))
            if about["conditions"]["warning"]:
                ctx.log(f"speed: {about['conditions']['warning']}")
            results.append(Evaluation("speed", speed, {
                **target.info, "prompt_tokens": len(prompt), "gen_tokens": p["gen_tokens"],
                "decoding": "greedy, batch 1, one token per step with the KV cache",
                "figures": "medians of the runs after one discarded warm-up", **about,
                "dataset": shared["dataset"]}))
        cache_ok = has_ref and chunks.scored_tokens * target.vocab * 8 <= CACHE_LIMIT_BYTES
        nll, cached = [], []
        span = 0.45 if has_ref else 0.9
        for i, window in enumerate(chunks.tokens):
            log_probs = common.scored_log_probs(target.logits(window), chunks)
            nll.append(common.chunk_nll(log_probs, window, chunks))
            if cache_ok:
                cached.append(log_probs)
            ctx.progress(0.08 + span * (i + 1) / len(chunks.tokens), "perplexity")
        import numpy as np

        ppl = common.perplexity_summary(np.concatenate(nll))
        ppl["seconds"] = round(time.monotonic() - started, 2)
        method = {"scheme": common.SCHEME, "context": chunks.context, "chunks": len(chunks.tokens),
                  "scored_per_chunk": chunks.scored_per_chunk, "mode": p["mode"], **shared,
                  "engine": target.info}
        results.insert(0, Evaluation("perplexity", ppl, method))
        if served_memory is not None:
            results.append(served_memory)
        else:
            memory = {"peak_rss_bytes": common.peak_rss_bytes()}
            if (device_peak := target.peak_device_bytes()) is not None:
                memory["cuda_max_allocated_bytes"] = device_peak
            results.append(Evaluation("memory", memory, {
                "what": f"evaluation process at context {chunks.context}",
                "measured": "peak RSS (VmHWM) of the job's child process after loading the target, "
                            "the speed run and the perplexity pass (before any reference is loaded)"
                            + ("; torch.cuda.max_memory_allocated on the GPU" if device_peak else ""),
                "context": chunks.context, "prompt_tokens": p["prompt_tokens"],
                "gen_tokens": p["gen_tokens"], **target.info}))
        if has_ref:
            results.append(self._kl(ctx, target, chunks, cached, ppl, shared, method))
        ctx.progress(1.0, "done")
        return results

    @staticmethod
    def _served_memory(ctx: RunContext, text_path: Path) -> Evaluation:
        """The "memory" Evaluation: peak RSS of the variant served at the evaluation's context
        (evaluate_memory.py), or {"skipped": why} when that process failed."""
        p = ctx.params
        method = {"what": served.served_label(p["context"]), "measured": served.WHAT,
                  "context": p["context"], "threads": p["threads"], "engine": "llama.cpp",
                  "prompt": f"{p['context'] - 1} tokens of {text_path.name}, then 1 generated token"}
        try:
            report = served.measure_served(gguf=ctx.input_path(".gguf"), text_path=text_path,
                                           context=p["context"], threads=p["threads"],
                                           workdir=Path(ctx.workdir))
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            ctx.log(f"memory: {exc}")
            return Evaluation("memory", {"skipped": str(exc)[-500:]}, method)
        conditions = report.pop("conditions")
        ctx.log(f"memory: served at context {p['context']}: peak RSS {report['peak_rss_bytes']:,} B")
        return Evaluation("memory", report, {**method, "conditions": conditions})

    def _kl(self, ctx, target, chunks, cached, ppl, shared, method) -> Evaluation:
        """KL(reference ‖ target) and the other statistics of `llama-perplexity --kl-divergence`,
        from the reference's log-probs in llama.cpp's 16-bit --kl-divergence-base format: read
        from the worker's cache when an earlier evaluation stored them for the same reference,
        text, context and chunks (the reference is then not loaded), else computed, stored and
        used as stored."""
        from engines import open_engine
        from jobs.methods.gpu_placement import placement_for

        p = ctx.params
        about = {**{k: method[k] for k in ("scheme", "context", "chunks", "scored_per_chunk", "mode")},
                 **shared, "reference_variant": p["reference"],
                 "reference_label": p.get("reference_label"), "engine": target.info,
                 "divergence": "KL(reference ‖ target) per scored token, natural log",
                 "statistics": common.KL_STATISTICS}
        store = common.BaseLogitsStore(
            folder=ctx.base_logits_dir, max_bytes=ctx.base_logits_max_bytes, chunks=chunks,
            n_vocab=target.vocab, key=common.base_logits_key(
                reference=p["reference"], files_sha256=_reference_sha256(p),
                dataset_sha256=shared["dataset"]["sha256"], chunks=chunks))
        ctx.progress(0.55, "load reference")
        if store.hit(ctx.log):
            about.update(reference_engine="not loaded: its log-probs were read from the cache",
                         tokens_check="done when the cached file was stored; the file's token "
                                      "ids equal this evaluation's")
            rows = store.read
        else:
            ref_files = [Path(f) for f in p["reference_files"]]
            # planned after the target loaded: the GPU's free memory then leaves it out
            ref = open_engine(p["reference_format"], ref_files, n_ctx=p["context"],
                              threads=p["threads"], device=ctx.device, node=ctx.node,
                              placement=placement_for(p["reference_format"], ref_files,
                                                      n_ctx=p["context"], device=ctx.device,
                                                      node=ctx.node))
            about.update(reference_engine=ref.info, reference_tokenizer=ref.tokenizer_info)
            text = common.read_text(Path(shared["dataset"]["path"]), TOKENS_CHECK_CHARS)
            if reason := tokens_differ(ref, target, text):
                ctx.log(f"KL skipped: {reason}")
                return Evaluation("kl", {"skipped": reason}, about)
            store.start(ctx.log)

            def rows(i: int):
                logits = ref.logits(chunks.tokens[i])[chunks.first:chunks.context - 1]
                return store.add(llama_kld.encode_rows(logits))
        parts = []
        try:
            for i, window in enumerate(chunks.tokens):
                base_lp = llama_kld.decode_rows(rows(i), target.vocab)
                tgt_lp = cached[i] if cached else common.scored_log_probs(target.logits(window), chunks)
                parts.append(common.compare_tokens(base_lp, tgt_lp, chunks.next_ids(i)))
                ctx.progress(0.6 + 0.38 * (i + 1) / len(chunks.tokens), "kl divergence")
            store.finish(ctx.log)
        finally:
            store.close()
        metrics = common.kl_statistics(common.TokenComparison.concatenate(parts))
        return Evaluation("kl", metrics, {**about, "base_logits": store.describe()})


def _reference_sha256(p: dict) -> list[str]:
    """The reference's files' sha256 (from the catalog at submit time; hashed here for a job
    submitted before they were recorded)."""
    if p.get("reference_sha256"):
        return list(p["reference_sha256"])
    return [file_sha256(Path(f)) for f in p["reference_files"]]


def tokens_differ(ref, target, text: str) -> str | None:
    """Why KL can't compare the two engines' distributions token by token (shown as "KL skipped:
    <why>"), or None when they share the vocabulary, the BOS and the ids for `text`."""
    if ref.vocab != target.vocab:
        return f"vocabularies differ ({ref.vocab:,} tokens in the reference, {target.vocab:,} here)"
    if ref.bos_id != target.bos_id:
        return (f"BOS differs (the reference starts a text with {_bos(ref.bos_id)}, this variant "
                f"with {_bos(target.bos_id)})")
    ref_ids, target_ids = ref.tokenize(text), target.tokenize(text)
    if ref_ids == target_ids:
        return None
    at = next((i for i, (a, b) in enumerate(zip(ref_ids, target_ids)) if a != b),
              min(len(ref_ids), len(target_ids)))
    return (f"tokenizers differ: other token ids for the dataset's first {len(text):,} characters "
            f"(from id {at:,}: {_at(ref_ids, at)} in the reference, {_at(target_ids, at)} here)")


def _at(ids: list[int], i: int) -> str:
    return str(ids[i]) if i < len(ids) else "the end"


def _bos(bos_id: int | None) -> str:
    return "no BOS" if bos_id is None else f"BOS {bos_id}"


def _hub_text_file(repo_id: str) -> dict:
    """A Hub dataset is read only when the Hub answers: the first .txt file in it (one with
    "test" in its name preferred). Offline, this fails at once naming the field."""
    from catalog.imports.hub import hub_info
    from catalog.services import CatalogError

    try:
        info = hub_info(repo_id=repo_id, repo_type="dataset")
    except CatalogError as exc:
        raise JobError.field("hub_dataset", f"{exc}; upload the text as a catalog dataset instead")
    names = sorted(s.rfilename for s in (info.siblings or []) if s.rfilename.endswith(".txt"))
    if not names:
        raise JobError.field("hub_dataset", f"{repo_id} has no .txt file; upload the text as a "
                             "catalog dataset instead")
    name = next((n for n in names if "test" in n), names[0])
    return {"hub_file": name, "hub_revision": getattr(info, "sha", None) or "main"}


def _text_file(p: dict, workdir: Path) -> Path:
    if p.get("hub_dataset"):
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(p["hub_dataset"], p["hub_file"], repo_type="dataset",
                                    revision=p["hub_revision"], cache_dir=str(workdir / "hub")))
    path = Path(p["dataset_path"])
    if not path.is_file():
        raise JobError.field("dataset", f"text file not found on this worker: {path}")
    return path


METHODS = {"evaluate": EvaluateMethod()}
