"""JSON API for the planner: the same inputs as the page's query string (GET) or a JSON body (POST),
validated by the page's own PlanForm, so the page, the API and the CLI agree."""

import json

from django.views.decorators.csrf import csrf_exempt
from ninja import Query, Router

from planner.estimator import HARDWARE_PROFILES
from planner.choose import choice_json
from planner.choose_inputs import ChooseInputError, choice_for
from planner.choose_schemas import ChooseOut, ChooseQuery
from planner.forms import PlanForm
from planner.measured import measured_for
from planner.nodes import live_measured_nodes, node_hardware
from planner.presentation import speed_provenance
from planner.presets import PRESETS
from planner.schemas import HardwareList, Plan, PlanQuery, PlanRequest, Presets
from planner.selectors import hardware_profiles_visible_to
from planner.services import hardware_from_profile
from quantdash.api_common import DASHBOARD_AUTH, BadRequest, session_auth_read_only, token_auth

router = Router(auth=DASHBOARD_AUTH)

MODEL_KEYS = {"preset": "preset", "config": "config", "params": "params", "catalog_model": "model"}
HARDWARE_KEYS = {"profile": "hardware", "devices": "devices", "kind": "custom_kind", "memory_gb": "custom_memory_gb",
                 "bandwidth_gbs": "custom_bandwidth_gbs", "tflops": "custom_tflops", "ram_gb": "ram_gb",
                 "device_memory_gb": "custom_device_memory_gb"}
WORKLOAD_KEYS = ("runtime", "context", "batch", "kv_dtype", "mode", "lora_rank", "lora_targets", "group_size",
                 "exl2_bpw", "flash_attn", "swa_full", "n_ubatch", "gpu_memory_utilization", "fit_scheme",
                 "n_cpu_moe")
# llama.cpp's names for the same inputs: n_seq (-np, parallel sequences) is the workload's batch
WORKLOAD_ALIASES = {"n_seq": "batch", "ubatch": "n_ubatch"}


@router.get("/estimate", response=Plan, summary="Estimate memory for every scheme (the page's query string)")
def estimate(request, query: Query[PlanQuery]):
    return _plan(request, request.GET)


@router.post("/estimate", response=Plan, summary="Estimate memory from a JSON body",
             auth=[token_auth, session_auth_read_only])
@csrf_exempt  # it only computes (no writes), so API clients need no CSRF token
def estimate_post(request, body: PlanRequest):
    return _plan(request, form_data_from_json(body.model_dump(exclude_unset=True)))


def _plan(request, data) -> dict:
    form = PlanForm(data, user=request.user)  # another team's model or profile: Http404 -> 404 JSON
    if not form.is_valid() or form.plan is None:
        raise BadRequest("; ".join(e["message"] for e in form.error_list()), form.error_dict())
    return plan_json(form.plan)


def plan_json(plan) -> dict:
    est = plan.estimate
    data = est.to_dict()
    wl = est.workload
    for row in data["schemes"]:
        row["measured"] = measured_for(total_params=est.model.total_params, runtime=wl.runtime,
                                       scheme=row["scheme"], context=wl.context, kv_dtype=wl.kv_dtype)
    if plan.catalog_model is not None:
        data["model"]["catalog_model"] = plan.catalog_model.pk
    data["fit"] = plan.fit.to_dict() if plan.fit is not None else None
    # where the decode/prefill constants come from, and the speed model's measured error on record
    data["speed"] = speed_provenance(est.hardware, est.workload.runtime)
    data["vllm_fit"] = plan.vllm_fit.to_dict() if plan.vllm_fit is not None else None
    return data


def form_data_from_json(body: dict) -> dict:
    """{"model": {...}, "hardware": {...}, "workload": {...}} (types already checked by PlanRequest)
    -> the form's flat fields."""
    data: dict = {}
    model = body.get("model") or {"preset": "llama-3.1-8b"}
    if len([k for k in MODEL_KEYS if model.get(k) is not None]) != 1:
        raise BadRequest("model must be an object with one of preset, config, params, catalog_model",
                         {"model": "give exactly one of preset, config, params, catalog_model"})
    for key, field in MODEL_KEYS.items():
        if model.get(key) is not None:
            value = model[key]
            data["source"] = {"preset": "preset", "config": "config", "params": "params",
                              "catalog_model": "catalog"}[key]
            data[field] = json.dumps(value) if key == "config" and not isinstance(value, str) else value
    hardware = body.get("hardware") or {}
    if isinstance(hardware, str):
        hardware = {"profile": hardware}
    for key, field in HARDWARE_KEYS.items():
        if hardware.get(key) is not None:
            data[field] = hardware[key]
    if isinstance(data.get("custom_device_memory_gb"), list):
        data["custom_device_memory_gb"] = ",".join(map(str, data["custom_device_memory_gb"]))
    if (hardware.get("memory_gb") is not None or hardware.get("device_memory_gb") is not None) \
            and hardware.get("profile") is None:
        data["hardware"] = "custom"
    workload = {k: v for k, v in (body.get("workload") or {}).items() if v is not None}
    for alias, key in WORKLOAD_ALIASES.items():
        if alias in workload:
            if key in workload and workload[key] != workload[alias]:
                raise BadRequest(f"{alias} and {key} disagree", {alias: f"is {key}; give one of them"})
            workload = {**workload, key: workload[alias]}
    for key in WORKLOAD_KEYS:
        if key in workload:
            data[key] = workload[key]
    return data


@router.get("/presets", response=Presets, summary="Built-in model presets")
def presets(request):
    return {"presets": [{"key": key, "name": p["name"], "family": p["family"], "repo": p["repo"],
                         "config": p["config"]}
                        for key, p in PRESETS.items()]}


@router.get("/hardware", response=HardwareList,
            summary="Our measured nodes, built-in hardware profiles and your teams' saved ones")
def hardware(request):
    built_in = [hw.to_dict() for hw in HARDWARE_PROFILES.values()]
    team = [{**hardware_from_profile(p).to_dict(), "team": p.team.name, "id": p.pk}
            for p in hardware_profiles_visible_to(request.user)]
    nodes = [node_hardware(w).to_dict() for w in live_measured_nodes()]   # key "node:<hostname>"
    return {"hardware": nodes + built_in + team}


@router.get("/choose/{int:pk}", response=ChooseOut,
            summary="Which variant of a catalog model to run on a machine at a context (the Choose page's answer)")
def choose(request, pk: int, query: Query[ChooseQuery]):
    try:
        _, found, _ = choice_for(user=request.user, model_pk=pk, data=query.model_dump(exclude_none=True))
    except ChooseInputError as exc:
        raise BadRequest(str(exc), exc.errors) from None
    return choice_json(found)
