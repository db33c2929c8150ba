"""The planner API's schemas (django-ninja): the JSON body and query string it takes, the plan it
returns. Types and choices are checked here; ranges and everything that needs the model (a
context beyond the trained length, a profile of another team) by PlanForm, the page's own form."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_type_hints

from ninja import Schema
from pydantic import BaseModel, ConfigDict, Field, create_model

from planner.estimator.hardware import KINDS
from planner.estimator.scheme_row import SchemeRow as EstimatorSchemeRow
from planner.estimator.workload import KV_DTYPES, LORA_TARGET_NAMES, MODES, RUNTIMES

Runtime = Literal[RUNTIMES]
KvDtype = Literal[KV_DTYPES]
Mode = Literal[MODES]
Kind = Literal[KINDS]
LoraTarget = Literal[LORA_TARGET_NAMES]


class Strict(Schema):
    model_config = ConfigDict(extra="forbid")


class ModelSource(Strict):
    """Exactly one of the four."""

    preset: str | None = Field(None, description="preset key, see /api/planner/presets")
    config: dict | str | None = Field(None, description="a config.json (object or text, ≤ 1 MiB)")
    params: str | int | float | None = Field(None, description="parameter count, e.g. 7.3B or 7300000000")
    catalog_model: int | None = Field(None, description="catalog model id (team-scoped)")


class HardwareSpec(Strict):
    profile: str | None = Field(None, description="profile key, `node:<hostname>` (a measured node of ours), "
                                "`team:<id>` or `custom`")
    name: str | None = None
    devices: int | None = None
    kind: Kind | None = None
    memory_gb: float | None = None
    bandwidth_gbs: float | None = None
    tflops: float | None = None
    device_memory_gb: list[float] | None = Field(None, description="custom: GiB per device when they differ")
    ram_gb: float | None = Field(None, description="host RAM in GiB beside the GPU(s) (default: the profile's)")


class WorkloadFields(Schema):
    """The workload inputs, named as on the page (and in the query string)."""

    runtime: Runtime | None = None
    context: int | None = None
    batch: int | None = None
    kv_dtype: KvDtype | None = None
    mode: Mode | None = None
    lora_rank: int | None = None
    lora_targets: list[LoraTarget] | None = None
    group_size: int | None = None
    exl2_bpw: float | None = None
    flash_attn: bool | None = None
    swa_full: bool | None = Field(None, description="llama.cpp full-size sliding-window cache (default true)")
    n_ubatch: int | None = Field(None, description="llama.cpp physical batch (default 512)")
    gpu_memory_utilization: float | None = Field(None, description="vLLM (default 0.9)")
    fit_scheme: str | None = Field(None, description="scheme for the fit (GGUF for llama.cpp, "
                                   "BF16/FP8/AWQ/GPTQ/NF4 for vLLM)")
    n_cpu_moe: int | None = Field(None, description="llama.cpp --n-cpu-moe override")


class WorkloadSpec(WorkloadFields):
    model_config = ConfigDict(extra="forbid")

    n_seq: int | None = Field(None, description="= batch (llama.cpp -np, parallel sequences)")
    ubatch: int | None = Field(None, description="= n_ubatch")


class PlanRequest(Strict):
    model: ModelSource | None = Field(None, description="default: the llama-3.1-8b preset")
    hardware: HardwareSpec | str | None = Field(None, description="an object, or a profile key")
    workload: WorkloadSpec | None = None


class PlanQuery(WorkloadFields):
    """The planner page's query string (a plan's URL works here as it is)."""

    source: Literal["preset", "catalog", "config", "params"] | None = Field(
        None, description="model source; `model=<id>` alone means catalog")
    preset: str | None = None
    model: int | None = Field(None, description="catalog model id (team-scoped)")
    config: str | None = Field(None, description="a config.json as text (≤ 1 MiB)")
    params: str | None = Field(None, description="parameter count, e.g. 7.3B")
    hardware: str | None = Field(None, description="profile key, `node:<hostname>`, `team:<id>` or `custom`")
    devices: int | None = None
    custom_kind: Kind | None = None
    custom_memory_gb: float | None = None
    custom_bandwidth_gbs: float | None = None
    custom_tflops: float | None = None
    custom_device_memory_gb: str | None = Field(None, description="custom: GiB per device, e.g. 24,24,12")
    ram_gb: float | None = Field(None, description="host RAM in GiB beside the GPU(s) (default: the profile's)")


class Open(BaseModel):
    """Output with more keys than documented: a plain pydantic model keeps them (ninja's Schema
    reads attributes and would drop the undocumented ones)."""

    model_config = ConfigDict(extra="allow")


class HardwareOut(Open):
    key: str
    name: str
    kind: str
    memory_bytes: int
    usable_memory_bytes: int
    bandwidth_bytes_per_s: float
    fp16_flops: float
    ram_bytes: int | None
    ram_bandwidth: float | None
    device_count: int
    team: str | None = Field(None, description="saved team profiles only")
    id: int | None = Field(None, description="saved team profiles only")


def schema_from_dataclass(cls: type, name: str, **extra: Any) -> type[BaseModel]:
    """A pydantic model with the dataclass's fields (types and `metadata["description"]`) plus
    `extra` (name -> (type, Field)): the estimator stays pure Python and the API documents it."""
    hints = get_type_hints(cls)
    fields = {f.name: (hints[f.name], Field(description=f.metadata.get("description")))
              for f in dataclasses.fields(cls)}
    return create_model(name, __doc__=cls.__doc__, **fields, **extra)


# One row per scheme: the estimator's SchemeRow, plus the measured error the API adds beside it
SchemeRow = schema_from_dataclass(
    EstimatorSchemeRow, "SchemeRow",
    measured=(dict | None, Field(description="the measured error on record (planner/measured.json)")))


class Plan(Schema):
    schemes: list[SchemeRow]
    model: dict
    hardware: HardwareOut
    workload: dict
    fit: dict | None = Field(description="llama.cpp: the GGUF file and command that fit, or why none does")
    vllm_fit: dict | None = Field(description="vLLM: the KV pool, max-model-len and `vllm serve` command")
    speed: dict | None = Field(None, description="where the speed constants come from (measured on a node of ours, "
                               "or cited: a published llama-bench figure on the card) and the speed model's measured "
                               "error on record; speed_withheld says why no speed is shown where neither exists")


class Preset(Schema):
    key: str
    name: str
    family: str
    repo: str
    config: dict


class Presets(Schema):
    presets: list[Preset]


class HardwareList(Schema):
    hardware: list[HardwareOut]
