"""JSON API for sweeps ("Measure quants"): submit, list, read, cancel; under /api/jobs/sweeps/."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from catalog.selectors import variants_visible_to
from jobs.methods.base import JobError
from jobs.sweeps import (sweep_cancel, sweep_json, sweep_steps, sweep_submit, sweeps_visible_to)
from quantdash.api_common import DASHBOARD_AUTH, BadRequest

router = Router(auth=DASHBOARD_AUTH)


class SweepSubmit(Schema):
    model_config = ConfigDict(extra="forbid")

    base: int = Field(description="the base variant's id (GGUF or HF; team-scoped)")
    types: list[str] | None = Field(None, description="GGUF types; default Q8_0, Q6_K, Q5_K_M, "
                                    "Q4_K_M, IQ4_XS, Q3_K_M, IQ3_XXS, Q2_K (IQ ones with the matrix)")
    hf_methods: list[str] | None = Field(None, description="HF base: bnb-nf4, bnb-int8, gptq; "
                                         "default: those a live GPU worker runs, none on CPU nodes")
    calibration: int | None = Field(None, description="calibration .txt dataset id (the matrix, GPTQ)")
    evaluation: int = Field(description="held-out .txt dataset id; not the calibration file")
    context: int | None = Field(None, description="evaluation context (even), the same for all")
    chunks: int | None = Field(None, description="evaluation chunks, the same for all")
    speed: bool | None = Field(None, description="measure prefill/decode speed too (default true)")
    imatrix_chunks: int | None = None
    imatrix_context: int | None = None


class StepOut(Schema):
    key: str
    label: str
    method: str
    state: str = Field(description="ready, waiting, queued, running, done, exists, failed, "
                       "cancelled, blocked or refused")
    job: int | None
    output: int | None = Field(description="the variant the step made or found")
    measured_by: int | None = Field(description="evaluate steps: the job whose evaluations count")
    note: str


class SweepOut(Schema):
    sweep: int | None = Field(description="null when everything was already measured")
    status: str = Field(description="running, succeeded, failed, cancelled; exists: nothing to do")
    finished: int
    total: int
    percent: float
    eta_seconds: float | None
    eta_note: str
    base: int | None
    params: dict
    cancel_requested: bool
    steps: list[StepOut]


class SweepList(Schema):
    sweeps: list[SweepOut]


def _json(sweep) -> dict:
    return sweep_json(sweep, sweep_steps(team=sweep.team, base=sweep.base, params=sweep.params,
                                         sweep=sweep))


@router.get("/", response=SweepList, summary="Your teams' sweeps (newest 50)")
def sweeps(request):
    return {"sweeps": [_json(s) for s in sweeps_visible_to(request.user).select_related("base__model")[:50]]}


@router.post("/", response={200: SweepOut, 201: SweepOut},
             summary="Start a sweep (200 with sweep null: everything already measured)")
def submit(request, body: SweepSubmit):
    base = get_object_or_404(variants_visible_to(request.user).select_related("model__team"),
                             pk=body.base)
    params = body.dict(exclude={"base"}, exclude_none=True)
    try:
        sweep, steps = sweep_submit(team=base.model.team, user=request.user, base=base, params=params)
    except JobError as exc:
        raise BadRequest(str(exc), exc.errors) from exc
    return (201 if sweep else 200), sweep_json(sweep, steps)


@router.get("/{int:pk}", response=SweepOut, summary="One sweep with its steps")
def sweep(request, pk: int):
    return _json(get_object_or_404(sweeps_visible_to(request.user), pk=pk))


@router.post("/{int:pk}/cancel", response=SweepOut, summary="Cancel a sweep as a whole")
def cancel(request, pk: int):
    return _json(sweep_cancel(sweep=get_object_or_404(sweeps_visible_to(request.user), pk=pk)))
