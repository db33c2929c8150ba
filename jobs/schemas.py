"""What the jobs API takes and returns (django-ninja schemas over jobs.serializers' dicts)."""

from __future__ import annotations

from ninja import Schema
from pydantic import ConfigDict, Field


class JobSubmit(Schema):
    model_config = ConfigDict(extra="forbid")

    variant: int = Field(description="the input variant's id (team-scoped)")
    method: str = Field(description="gguf, bnb, gptq, evaluate, hf-from-gguf, ...")
    params: dict = Field(default_factory=dict, description="the method's parameters")
    another_copy: bool = Field(False, description="run it even though an identical job already made these outputs "
                                                  "(as the web form's “Make another copy”); without it such a "
                                                  "job is refused with 409, naming the variants it made")


class OutputFile(Schema):
    path: str
    bytes: int
    sha256: str


class JobOutput(Schema):
    id: int
    format: str
    quant_type: str
    bits_per_weight: float | None
    parent: int | None
    files: list[OutputFile]


class JobOut(Schema):
    job: int
    kind: str
    method: str
    status: str
    queue: str
    input_variant: int | None
    params: dict
    progress: float
    stage: str
    eta_seconds: float | None
    attempts: int
    error: str
    estimate: dict | None
    worker: str
    created_at: str = Field(description="ISO 8601 date-time")
    started_at: str | None
    finished_at: str | None
    outputs: list[JobOutput]


class JobList(Schema):
    jobs: list[JobOut]
