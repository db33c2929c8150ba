"""The Choose API's query and answer (django-ninja schemas over planner.choose.choice_json)."""

from __future__ import annotations

from typing import Literal

from ninja import Schema
from pydantic import Field

from planner.estimator.hardware import KINDS
from planner.schemas import HardwareOut


class ChooseQuery(Schema):
    """The Choose page's query string (its URL works here as it is)."""

    hardware: str | None = Field(None, description="profile key, `node:<hostname>`, `team:<id>` or `custom` "
                                 "(default rtx-4090, as the planner)")
    devices: int | None = None
    ram_gb: float | None = Field(None, description="host RAM in GiB beside the GPU(s) (default: the profile's)")
    custom_kind: Literal[KINDS] | None = None
    custom_memory_gb: float | None = None
    custom_bandwidth_gbs: float | None = None
    custom_tflops: float | None = None
    custom_device_memory_gb: str | None = Field(None, description="custom: GiB per device, e.g. 24,24,12")
    context: int | None = Field(None, description="tokens (default 4096)")
    metric: str = Field(
        "kl", description="kl, kl_p99_9, ratio or same_top (mean KLD, 99.9 % KLD, PPL ratio, same top), or a task "
        "the model was scored on: task_<first 12 hex of its protocol> (the answer's `metrics` lists them)")
    x: Literal["disk", "memory"] = Field("disk", description="size axis: on disk, or planned at the context")
    headroom_gb: float | None = Field(None, description="GiB the best-quality pick must leave free (default 0)")
    tolerance: float | None = Field(None, description="quality tolerance in the metric's terms (same top: a "
                                    "minimum; PPL ratio: |ratio − 1|; a task: how far below the best accuracy); "
                                    "default 0.05, 1.0, 0.02, 0.9, tasks 0.02")


class Download(Schema):
    path: str
    bytes: int
    url: str


class VoteRating(Schema):
    rating: float | None = Field(description="Bradley–Terry strength on the Elo scale (null: not rated yet)")
    low: float | None = Field(description="95 % interval, low end")
    high: float | None
    half_width: float | None
    votes: int = Field(description="votes counted (one per user, prompt and pair)")
    both_bad: int
    rank: int | None = Field(description="null: not enough votes to rank")
    why_unranked: str


class ChooseCandidate(Schema):
    variant: int
    label: str
    disk_bytes: int
    memory_bytes: int | None = Field(description="the planner's total at the context")
    status: str = Field(description="measured, reference, skipped, unstable, not comparable or not evaluated")
    status_note: str
    value: float | None = Field(description="the metric as llama.cpp (or lm-eval, for a task) prints it "
                                "(null: not usable)")
    uncertainty: float | None
    distance: float | None = Field(description="what the chart and frontier rank: 0 is the reference")
    frontier: bool
    dominated_by: int | None
    fit: str = Field(description="device, offload, none or refused")
    fit_note: str
    headroom_bytes: int | None
    tokens_per_s: float | None = Field(description="the planner's decode speed on this hardware")
    speed_note: str
    measured_tokens_per_s: float | None
    measured_speed_flag: str
    votes: VoteRating | None = Field(description="blind side-by-side votes (null: none yet)")
    command: str
    command_note: str
    chat: str
    downloads: list[Download]


class ChoosePick(Schema):
    kind: str = Field(description="best, smallest or fastest")
    title: str
    variant: int | None
    reason: str


class ChooseMetric(Schema):
    key: str
    title: str
    axis: str
    higher_is_better: bool = Field(description="true for a task's accuracy; the KL metrics are distances")
    protocol: str | None = Field(description="a task's protocol (sha256): only variants scored under it compare")
    about: str


class ChooseOut(Schema):
    model: int
    hardware: HardwareOut | None
    context: int
    metric: str
    axis: str
    x: str
    higher_is_better: bool
    metrics: list[ChooseMetric] = Field(description="every metric this model can be chosen by")
    headroom_bytes: int
    tolerance: float
    tolerance_text: str
    reference: int | None
    planner_refused: str
    picks: list[ChoosePick]
    candidates: list[ChooseCandidate]
    sweep: dict | None = Field(description="what a sweep would measure and the planner's time, when nothing is "
                               "measured yet")
