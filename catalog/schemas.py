"""What the catalog API returns (django-ninja output schemas over catalog.serializers' dicts)."""

from __future__ import annotations

from ninja import Schema
from pydantic import Field


class FileOut(Schema):
    id: int
    path: str
    bytes: int
    sha256: str
    download: str = Field(description="download URL (HTTP ranges supported)")


class VariantOut(Schema):
    id: int
    format: str
    quant_type: str
    bits_per_weight: float | None
    parent: int | None
    files: list[FileOut]
    model: int
    params: dict
    metrics: dict
    tool_versions: dict
    created_at: str = Field(description="ISO 8601 date-time")


class ModelSummary(Schema):
    id: int
    name: str
    team: str
    architecture: str
    param_count: int | None
    license: str
    tags: list
    source: str
    created_at: str = Field(description="ISO 8601 date-time")
    variants: list[int] = Field(description="variant ids; GET /api/catalog/models/{pk} has them whole")


class ModelOut(ModelSummary):
    config: dict
    model_card: str
    variants: list[VariantOut]


class ModelList(Schema):
    models: list[ModelSummary]


class DatasetOut(Schema):
    id: int
    name: str
    kind: str
    path: str
    hub_id: str
    bytes: int
    sha256: str
    records: int | None
    token_count: int | None
    token_counter: str


class DatasetList(Schema):
    datasets: list[DatasetOut]


class TaskSetOut(Schema):
    id: int
    name: str
    team: str
    kind: str = Field(description="mc (multiple choice), qa (question/answer) or yaml (lm-eval task)")
    records: int = Field(description="items (JSON lines) in the stored items.jsonl")
    bytes: int
    sha256: str = Field(description="of the stored items.jsonl (after normalization)")
    config: dict = Field(description="the lm-eval task config, without its data location")
    created_at: str = Field(description="ISO 8601 date-time")


class TaskSetList(Schema):
    tasksets: list[TaskSetOut]
