"""Sweeps ("Measure quants"): one submission that quantizes a base variant to several candidates
and evaluates each against the base under one protocol, as ordinary jobs with lineage.

The steps of a sweep, in order (each an ordinary job; `needs` names the steps whose outputs it
takes as input):

    f16                (HF base with GGUF types) gguf types=[F16]: the one F16 GGUF every GGUF
                       candidate and the matrix are made from (one conversion, not one per type)
    imatrix            (an IQ type) imatrix job on the GGUF source over the calibration text;
                       a catalog matrix of this model with the same text sha256, chunks and
                       context is used instead
    quantize:<TYPE>    gguf types=[TYPE] on the GGUF source (the IQ types with the matrix)
    quantize:<method>  (HF base) bnb-nf4, bnb-int8, gptq 4-bit on the base
    evaluate:<name>    evaluate the candidate: reference = the base, the held-out text, the
                       same context and chunks for every candidate

One gguf job per type rather than one job with all types: each candidate then has its own
progress and its own duplicate check (a type made earlier, alone or among others, is found by
type, source sha256 and matrix), and its evaluation starts as soon as it exists.

Nothing about the steps is stored but the jobs (Job.sweep, Job.sweep_step): sweep_steps() works
the states out from those jobs and the catalog every time. A step whose output already exists
(same source sha256, type and matrix; or an evaluation of the candidate with the same reference,
text sha256, context and chunks) is "exists" and never submitted; one that an identical live job
elsewhere is making is followed, not duplicated. sweep_advance() submits the steps whose inputs
exist; it runs when a sweep's job finishes (the lifecycle's job_finished signal) and from every
worker heartbeat (sweeps_advance_all), so a lost signal can't stall a sweep.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from accounts.models import Team
from catalog.models import Dataset, Variant
from jobs.methods import hf_common
from jobs.methods.base import JobError
from jobs.models import Job, Sweep
from jobs.presentation import duration_text
from jobs.runner import job_finished
from jobs.sweep_params import HF_METHODS, dataset_sha256, sweep_clean, uses_matrix
from jobs.services import (DuplicateOutputs, _tool_version_now, job_cancel, job_check,
                           job_submit)

logger = logging.getLogger(__name__)
S = Job.Status
LIVE = (S.QUEUED, S.RUNNING)
LEASE = timedelta(seconds=120)
# Final step states: nothing more will happen to them in this sweep.
FINAL_STATES = {"done", "exists", "failed", "cancelled", "blocked", "refused"}
# Which sweep field a step's refusal is about.
STEP_FIELD = {"f16": "types", "imatrix": "calibration", "quantize": "types", "evaluate": "evaluation"}


@dataclass
class Step:
    key: str
    label: str
    method: str
    needs: list[str] = field(default_factory=list)
    state: str = "waiting"  # ready | waiting | queued | running | done | exists | failed | cancelled | blocked | refused
    job: Job | None = None  # this sweep's job, or the live identical job it follows
    output: Variant | None = None  # what the step made or found (variant, matrix)
    measured_by: Job | None = None  # evaluate steps: the job whose evaluations count
    note: str = ""
    input_variant: Variant | None = None
    params: dict = field(default_factory=dict)
    waits_for: list[str] = field(default_factory=list)  # the labels of the steps it needs

    @property
    def kind(self) -> str:
        return self.key.split(":")[0]

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def fraction(self) -> float:
        if self.is_final:
            return 1.0
        return (self.job.progress / 100) if self.state == "running" and self.job else 0.0


def sweeps_visible_to(user):
    if not user.is_authenticated:
        return Sweep.objects.none()
    return Sweep.objects.filter(team__members=user).distinct().select_related("team")


# ---- the steps ------------------------------------------------------------------------------

def _plan(base: Variant, p: dict) -> list[Step]:
    types, hf = p["types"], base.format == "hf"
    steps = []
    if hf and types:
        steps.append(Step("f16", "F16 GGUF (conversion)", "gguf", params={"types": ["F16"]}))
    source = ["f16"] if hf and types else []
    if any(uses_matrix(t) for t in types):
        steps.append(Step("imatrix", "importance matrix", "imatrix", needs=source, params={
            "dataset": p["calibration"], "chunks": p["imatrix_chunks"],
            "context": p["imatrix_context"]}))
    candidates = []
    for qtype in types:
        needs = source + (["imatrix"] if uses_matrix(qtype) else [])
        steps.append(Step(f"quantize:{qtype}", f"GGUF {qtype}", "gguf", needs=needs,
                          params={"types": [qtype]}))
        candidates.append((qtype, f"GGUF {qtype}"))
    for method in p["hf_methods"]:
        params = {"dataset": p["calibration"], "bits": 4, "group_size": _gptq_group(base)} \
            if method == "gptq" else {}
        steps.append(Step(f"quantize:{method}", HF_METHODS[method], method, params=params))
        candidates.append((method, HF_METHODS[method]))
    for name, label in candidates:
        steps.append(Step(f"evaluate:{name}", f"evaluate {label}", "evaluate",
                          needs=[f"quantize:{name}"], params={
                              "dataset": p["evaluation"], "context": p["context"],
                              "chunks": p["chunks"], "reference": base.pk,
                              "speed": p.get("speed", True)}))
    return steps


def _gptq_group(base: Variant) -> int:
    """The largest of GPTQ's usual group sizes that divides every layer's input width (a
    checkpoint whose groups don't divide one fails to load on the CPU kernels)."""
    widths = {w for w, _ in hf_common.linear_shapes(hf_common.model_config(base)).values()}
    return next((g for g in (128, 64, 32) if all(w % g == 0 for w in widths)), -1)


def _digest(variant: Variant) -> list[tuple[str, str]]:
    return sorted(variant.files.values_list("path", "sha256"))


def _current_tools(variant: Variant) -> bool:
    return all(_tool_version_now(k) in (None, v) for k, v in (variant.tool_versions or {}).items())


def _existing_gguf(source: Variant, qtype: str, matrix: Variant | None) -> Variant | None:
    """A GGUF of `qtype` made by llama-quantize from a file with the source's sha256, with the
    same matrix (or none) and no per-tensor overrides, by the tools installed now."""
    digest = _digest(source)
    for v in (Variant.objects.filter(model=source.model, format="gguf", quant_type=qtype,
                                     parent__isnull=False)
              .select_related("parent").order_by("-pk")):
        p = v.params or {}
        if p.get("method") != "gguf" or any(k in p for k in ("tensor_types", "output_tensor_type",
                                                              "token_embedding_type")):
            continue
        used = (p.get("imatrix") or {}).get("variant") if p.get("imatrix") else None
        if p.get("imatrix") and used is None:
            continue  # a matrix made inside that job: not the one this sweep uses
        if used != (matrix.pk if matrix else None) or not _current_tools(v):
            continue
        if _digest(v.parent) == digest:
            return v
    return None


def _existing_matrix(model, p: dict, calibration_sha: str) -> Variant | None:
    for v in Variant.objects.filter(model=model, format="imatrix").order_by("-pk"):
        made = v.params or {}
        if ((made.get("dataset") or {}).get("sha256") == calibration_sha
                and made.get("chunks_requested") == p["imatrix_chunks"]
                and made.get("context") == p["imatrix_context"]):
            return v
    return None


def _existing_evaluation(team: Team, variant: Variant, cleaned: dict, text_sha: str) -> Job | None:
    """A succeeded evaluation of `variant` under the same protocol: reference, text sha256,
    context and chunks (and with speed measured, when the sweep asks for speed)."""
    for job in (Job.objects.filter(team=team, method="evaluate", status=S.SUCCEEDED,
                                   input_variant=variant).order_by("-pk")
                .prefetch_related("evaluations")):
        if any(job.params.get(k) != cleaned.get(k) for k in ("reference", "context", "chunks")):
            continue
        if cleaned["speed"] and not job.params.get("speed", True):
            continue
        shas = {(e.method.get("dataset") or {}).get("sha256") for e in job.evaluations.all()
                if e.kind == "perplexity"}
        if shas == {text_sha}:
            return job
    return None


@dataclass
class _Context:
    team: Team
    base: Variant
    params: dict
    jobs: dict[str, Job]  # this sweep's latest job per step
    shas: dict[str, str]
    refused: dict[str, str]


def sweep_steps(*, team: Team, base: Variant, params: dict, sweep: Sweep | None = None) -> list[Step]:
    """Every step of the sweep with its state, worked out from the sweep's jobs and the catalog.
    `params` are sweep_clean()'s."""
    jobs: dict[str, Job] = {}
    if sweep is not None:
        for job in sweep.jobs.order_by("pk").select_related("input_variant"):
            jobs[job.sweep_step] = job
    shas = {name: dataset_sha256(Dataset.objects.get(pk=params[name]))
            for name in ("calibration", "evaluation") if params.get(name)}
    ctx = _Context(team, base, params, jobs, shas, sweep.refused if sweep else {})
    steps = _plan(base, params)
    by_key = {s.key: s for s in steps}
    for step in steps:
        step.waits_for = [by_key[k].label for k in step.needs]
        _resolve(step, [by_key[k] for k in step.needs], ctx)
    return steps


def _resolve(step: Step, needs: list[Step], ctx: _Context) -> None:
    job = ctx.jobs.get(step.key)
    if job is not None and job.status in LIVE:
        step.state, step.job = job.status, job
        return
    if job is not None and job.status == S.SUCCEEDED:
        step.state, step.job = "done", job
        _take_output(step, job)
        if step.output is None and step.kind != "evaluate":
            step.state, step.note = "failed", "the job succeeded without the expected output"
        return
    if any(n.state in ("failed", "cancelled", "blocked", "refused") for n in needs):
        step.state, step.note = "blocked", "a step it needs did not finish"
        return
    if any(n.state not in ("done", "exists") for n in needs):
        step.state = "waiting"
        return
    _inputs(step, needs, ctx)
    if _find_existing(step, ctx):
        step.state = "exists"
        return
    if job is not None:  # this sweep's job failed or was cancelled, and nothing made the output
        step.state, step.job, step.note = job.status, job, job.error[:300]
        return
    if step.key in ctx.refused:
        step.state, step.note = "refused", ctx.refused[step.key]
        return
    try:
        check = job_check(team=ctx.team, method=step.method, params=step.params,
                          input_variant=step.input_variant)
        cleaned, step.note = check.cleaned, "; ".join(check.warnings)
    except DuplicateOutputs as exc:
        step.state, step.output = "exists", exc.existing[-1]
        return
    except JobError as exc:
        step.state, step.note = "refused", str(exc)
        return
    for other in Job.objects.filter(team=ctx.team, method=step.method, status__in=LIVE,
                                    input_variant=step.input_variant).order_by("pk"):
        if other.params == cleaned:  # someone else is making it: follow that job
            step.state, step.job = other.status, other
            step.note = f"job {other.pk}" + (f" of sweep {other.sweep_id}" if other.sweep_id else "")
            return
    step.state = "ready"


def _inputs(step: Step, needs: list[Step], ctx: _Context) -> None:
    """The step's input variant and parameters, now that what it needs exists."""
    done = {n.key: n.output for n in needs}
    if step.kind == "evaluate":
        step.input_variant = done[step.needs[0]]
    elif step.method in HF_METHODS or step.key == "f16":
        step.input_variant = ctx.base
    else:
        step.input_variant = done.get("f16") or ctx.base
    if "imatrix" in done:
        step.params = {**step.params, "imatrix": done["imatrix"].pk}


def _find_existing(step: Step, ctx: _Context) -> bool:
    p = step.params
    if step.key == "imatrix":
        step.output = _existing_matrix(ctx.base.model, ctx.params, ctx.shas["calibration"])
    elif step.method == "gguf":
        matrix = Variant.objects.filter(pk=p["imatrix"]).first() if p.get("imatrix") else None
        step.output = _existing_gguf(step.input_variant, p["types"][0], matrix)
    elif step.kind == "evaluate":
        expected = {"reference": None if step.input_variant.pk == ctx.base.pk else ctx.base.pk,
                    "context": p["context"], "chunks": p["chunks"], "speed": p["speed"]}
        step.measured_by = _existing_evaluation(ctx.team, step.input_variant, expected,
                                                ctx.shas["evaluation"])
        return step.measured_by is not None
    return step.output is not None


def _take_output(step: Step, job: Job) -> None:
    if step.kind == "evaluate":
        step.measured_by = job
        return
    outputs = list(job.outputs.all())
    if step.key == "imatrix":
        step.output = next((v for v in outputs if v.format == "imatrix"), None)
    elif step.method == "gguf":
        want = step.params["types"][0]
        step.output = next((v for v in outputs if v.quant_type == want), None)
    else:
        step.output = outputs[0] if outputs else None


# ---- progress -------------------------------------------------------------------------------

@dataclass
class Progress:
    status: str  # running | succeeded | failed | cancelled
    finished: int
    total: int
    percent: float
    eta_seconds: float | None
    eta_note: str

    @property
    def is_final(self) -> bool:
        return self.status != "running"

    @property
    def eta_text(self) -> str:
        return duration_text(self.eta_seconds)


def sweep_progress(sweep: Sweep, steps: list[Step]) -> Progress:
    """Finished steps of all, the percentage (running jobs count by their own progress) and the
    time left: the running jobs' ETAs plus, for each step not started, how long this sweep's
    steps of the same method took (measured), one job at a time. Unknown until a step of each
    method still to come has finished once."""
    moving = [s for s in steps if not s.is_final]
    live = any(s.state in LIVE for s in steps)
    if live or (moving and not sweep.cancel_requested):
        status = "running"
    elif sweep.cancel_requested:
        status = "cancelled"
    else:
        status = "succeeded" if all(s.state in ("done", "exists") for s in steps) else "failed"
    finished = sum(s.is_final for s in steps)
    percent = 100 * sum(s.fraction for s in steps) / len(steps) if steps else 100.0
    took: dict[str, list[float]] = {}
    for job in sweep.jobs.filter(status=S.SUCCEEDED, started_at__isnull=False):
        took.setdefault(job.method, []).append((job.finished_at - job.started_at).total_seconds())
    eta, unknown = 0.0, []
    for s in moving:
        if s.state == "running":
            if s.job.eta_seconds is None:
                unknown.append(s.label)
            eta += s.job.eta_seconds or 0
        elif s.method in took:
            eta += sum(took[s.method]) / len(took[s.method])
        else:
            unknown.append(s.label)
    if status != "running":
        return Progress(status, finished, len(steps), percent, 0, "")
    if unknown:
        return Progress(status, finished, len(steps), percent, None,
                        "known once these have a measured duration: " + ", ".join(unknown))
    return Progress(status, finished, len(steps), percent, eta,
                    "running jobs' ETAs plus this sweep's measured step times, one job at a time")


# ---- submit, advance, cancel -------------------------------------------------------------------

def sweep_plan(*, team: Team, base: Variant, params: dict) -> tuple[dict, list[Step]]:
    """What submitting would do: (cleaned parameters, steps), without saving anything."""
    cleaned = sweep_clean(team=team, base=base, params=params)
    return cleaned, sweep_steps(team=team, base=base, params=cleaned)


def sweep_submit(*, team: Team, user, base: Variant, params: dict) -> tuple[Sweep | None, list[Step]]:
    """Saves the sweep and submits its first steps. When every step's result already exists,
    nothing is created: (None, steps). A step refused up front (e.g. a method no worker runs)
    refuses the sweep, naming the field."""
    cleaned, steps = sweep_plan(team=team, base=base, params=params)
    for step in steps:
        if step.state == "refused":
            name = "hf_methods" if step.method in HF_METHODS else STEP_FIELD[step.kind]
            raise JobError.field(name, f"{step.label}: {step.note}")
    if all(s.state == "exists" for s in steps):
        return None, steps
    sweep = Sweep.objects.create(team=team, base=base, params=cleaned,
                                 created_by=user if getattr(user, "pk", None) else None)
    sweep_advance(sweep_id=sweep.pk)
    sweep.refresh_from_db()
    return sweep, sweep_steps(team=team, base=base, params=cleaned, sweep=sweep)


def sweep_advance(*, sweep_id: int) -> None:
    """Submits the sweep's steps whose inputs now exist, and marks it finished once nothing can
    move. One process at a time holds the sweep (a lease taken with a conditional update); a
    caller that finds it held asks the holder to look once more (advance_pending)."""
    while True:
        Sweep.objects.filter(pk=sweep_id).update(advance_pending=True)
        now = timezone.now()
        claimed = Sweep.objects.filter(pk=sweep_id, finished_at__isnull=True).exclude(
            advancing_until__gt=now).update(advancing_until=now + LEASE)
        if not claimed:
            return
        try:
            while Sweep.objects.filter(pk=sweep_id, advance_pending=True).update(advance_pending=False):
                _advance_once(Sweep.objects.select_related("team", "base__model").get(pk=sweep_id))
        finally:
            Sweep.objects.filter(pk=sweep_id).update(advancing_until=None)
        if not Sweep.objects.filter(pk=sweep_id, advance_pending=True,
                                    finished_at__isnull=True).exists():
            return


def _advance_once(sweep: Sweep) -> None:
    steps = sweep_steps(team=sweep.team, base=sweep.base, params=sweep.params, sweep=sweep)
    if not sweep.cancel_requested:
        for step in steps:
            if step.state == "ready":
                _submit_step(sweep, step)
        if any(s.state == "ready" for s in steps):
            # what they make may let further steps start (an existing output found meanwhile)
            steps = sweep_steps(team=sweep.team, base=sweep.base, params=sweep.params, sweep=sweep)
    if sweep_progress(sweep, steps).is_final:
        Sweep.objects.filter(pk=sweep.pk, finished_at__isnull=True).update(finished_at=timezone.now())


def _submit_step(sweep: Sweep, step: Step) -> None:
    try:
        with transaction.atomic():
            job = job_submit(team=sweep.team, user=sweep.created_by, method=step.method,
                             params=step.params, input_variant=step.input_variant)
            # Linked before the commit that enqueues it, so its finish always finds the sweep.
            Job.objects.filter(pk=job.pk, sweep__isnull=True).update(sweep=sweep, sweep_step=step.key)
    except DuplicateOutputs:
        return  # made meanwhile: the next look finds it
    except JobError as exc:  # e.g. no worker can run it: said on the page, not tried again
        sweep.refused[step.key] = str(exc)
        sweep.save(update_fields=["refused"])


def sweep_cancel(*, sweep: Sweep) -> Sweep:
    """Stops the sweep: no further step is submitted, and every live job of it is cancelled."""
    Sweep.objects.filter(pk=sweep.pk).update(cancel_requested=True)
    for job in sweep.jobs.filter(status__in=LIVE):
        job_cancel(job=job)
    sweep_advance(sweep_id=sweep.pk)
    sweep.refresh_from_db()
    return sweep


def sweeps_advance_all() -> None:
    """The periodic backstop (every worker heartbeat): advance every unfinished sweep."""
    for sweep_id in Sweep.objects.filter(finished_at__isnull=True).values_list("pk", flat=True):
        try:
            sweep_advance(sweep_id=sweep_id)
        except Exception:  # one broken sweep must not stop the others, nor the heartbeat
            logger.exception("advancing sweep %s failed", sweep_id)


@receiver(job_finished)
def _job_finished(sender, job_id: int, **kwargs) -> None:
    sweep_id = Job.objects.filter(pk=job_id).values_list("sweep_id", flat=True).first()
    if sweep_id is None:
        return
    try:
        sweep_advance(sweep_id=sweep_id)
    except Exception:  # the job's own finish stands; the heartbeat's sweeps_advance_all retries
        logger.exception("advancing sweep %s after job %s failed", sweep_id, job_id)


# ---- JSON (API and CLI) ---------------------------------------------------------------------

def steps_json(steps: list[Step]) -> list[dict]:
    return [{"key": s.key, "label": s.label, "method": s.method, "state": s.state,
             "job": s.job.pk if s.job else None, "output": s.output.pk if s.output else None,
             "measured_by": s.measured_by.pk if s.measured_by else None, "note": s.note}
            for s in steps]


def sweep_json(sweep: Sweep | None, steps: list[Step]) -> dict:
    """A sweep with its steps; for a submission that found everything measured, sweep None and
    status "exists"."""
    if sweep is None:
        return {"sweep": None, "status": "exists", "finished": len(steps), "total": len(steps),
                "percent": 100.0, "eta_seconds": 0, "eta_note": "", "base": None, "params": {},
                "cancel_requested": False, "steps": steps_json(steps)}
    progress = sweep_progress(sweep, steps)
    return {"sweep": sweep.pk, "status": progress.status, "finished": progress.finished,
            "total": progress.total, "percent": round(progress.percent, 1),
            "eta_seconds": progress.eta_seconds, "eta_note": progress.eta_note,
            "base": sweep.base_id, "params": sweep.params,
            "cancel_requested": sweep.cancel_requested, "steps": steps_json(steps)}
