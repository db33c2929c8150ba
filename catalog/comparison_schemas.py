"""What GET /api/catalog/models/<id>/compare returns: the comparison page's table as data (django-ninja
schemas over catalog.comparison.comparison_json)."""

from __future__ import annotations

from ninja import Schema
from pydantic import Field


class CompareColumn(Schema):
    key: str = Field(description="the sort key; task columns are task_<first 12 hex of the protocol>")
    title: str
    about: str = Field(description="what the column is and, where every row was measured the same way, how")
    numeric: bool
    shown: bool = Field(description="shown by default on the page")
    task: str | None = Field(None, description="task columns: the lm-eval task")
    metric: str | None = Field(None, description="task columns: the metric shown (acc, exact_match ...)")
    protocol: str | None = Field(None, description="task columns: the protocol's sha256; results compare only "
                                 "within one protocol")
    method: dict | None = Field(None, description="task columns: the protocol's conditions (few-shot, limit, "
                                "seed, lm-eval version, prompt template ...)")


class CompareCell(Schema):
    key: str
    value: float | int | None = Field(description="null: not measured, or not comparable (then `note` says why)")
    uncertainty: float | None = Field(description="± (standard error or llama.cpp's uncertainty)")
    text: str
    note: str = Field(description="said instead of a number, e.g. \"other protocol: 5-shot, not 0-shot\"")
    flag: str
    title: str = Field(description="how the cell was measured")
    details: list[str] = Field(description="task cells: n=<documents scored>, the other metrics, subtasks")


class CompareRow(Schema):
    variant: int
    label: str
    is_base: bool
    cells: list[CompareCell]


class CompareOut(Schema):
    model: int
    sort: str
    columns: list[CompareColumn]
    rows: list[CompareRow]
    methods: list[str] = Field(description="how the PPL, KL and task columns were measured")
