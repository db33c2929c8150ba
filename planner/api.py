"""JSON API for the planner: the same inputs as the page's query string (GET) or a JSON body (POST)."""

import json

from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from planner.estimator import HARDWARE_PROFILES
from planner.forms import PlanForm
from planner.measured import measured_for
from planner.presets import PRESETS
from planner.selectors import hardware_profiles_visible_to
from planner.services import hardware_from_profile
from quantdash.api import BadRequest, api_login_required, json_body, not_found

MODEL_KEYS = {"preset": "preset", "config": "config", "params": "params", "catalog_model": "model"}
HARDWARE_KEYS = {"profile": "hardware", "devices": "devices", "kind": "custom_kind", "memory_gb": "custom_memory_gb",
                 "bandwidth_gbs": "custom_bandwidth_gbs", "tflops": "custom_tflops"}
WORKLOAD_KEYS = ("runtime", "context", "batch", "kv_dtype", "mode", "lora_rank", "lora_targets", "group_size",
                 "exl2_bpw", "flash_attn", "swa_full", "n_ubatch", "gpu_memory_utilization", "fit_scheme",
                 "n_cpu_moe")
# llama.cpp's names for the same inputs: n_seq (-np, parallel sequences) is the workload's batch
WORKLOAD_ALIASES = {"n_seq": "batch", "ubatch": "n_ubatch"}


@csrf_exempt  # POST only computes (no writes), so API clients need no CSRF token
@api_login_required
@require_http_methods(["GET", "POST"])
def estimate(request):
    data = request.GET if request.method == "GET" else form_data_from_json(json_body(request))
    form = PlanForm(data, user=request.user)
    try:
        valid = form.is_valid()
    except Http404:
        return not_found()
    if not valid or form.plan is None:
        errors = form.error_dict()
        raise BadRequest("; ".join(e["message"] for e in form.error_list()), errors)
    return JsonResponse(plan_json(form.plan))


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
    data["vllm_fit"] = plan.vllm_fit.to_dict() if plan.vllm_fit is not None else None
    return data


def form_data_from_json(body: dict) -> dict:
    """{"model": {...}, "hardware": {...}, "workload": {...}} -> the form's flat fields."""
    data: dict = {}
    model = body.get("model", {"preset": "llama-3.1-8b"})
    if not isinstance(model, dict) or len([k for k in MODEL_KEYS if k in model]) != 1:
        raise BadRequest("model must be an object with one of preset, config, params, catalog_model",
                         {"model": "give exactly one of preset, config, params, catalog_model"})
    for key, field in MODEL_KEYS.items():
        if key in model:
            value = model[key]
            data["source"] = {"preset": "preset", "config": "config", "params": "params",
                              "catalog_model": "catalog"}[key]
            data[field] = json.dumps(value) if key == "config" and not isinstance(value, str) else value
    hardware = body.get("hardware", {})
    if isinstance(hardware, str):
        hardware = {"profile": hardware}
    if not isinstance(hardware, dict):
        raise BadRequest("hardware must be an object", {"hardware": "must be an object or a profile key"})
    unknown = set(hardware) - set(HARDWARE_KEYS) - {"name"}
    if unknown:
        raise BadRequest(f"unknown hardware keys {sorted(unknown)}", {"hardware": f"unknown keys {sorted(unknown)}"})
    for key, field in HARDWARE_KEYS.items():
        if key in hardware:
            data[field] = hardware[key]
    if "memory_gb" in hardware and "profile" not in hardware:
        data["hardware"] = "custom"
    workload = body.get("workload", {})
    if not isinstance(workload, dict):
        raise BadRequest("workload must be an object", {"workload": "must be an object"})
    unknown = set(workload) - set(WORKLOAD_KEYS) - set(WORKLOAD_ALIASES)
    if unknown:
        raise BadRequest(f"unknown workload keys {sorted(unknown)}", {"workload": f"unknown keys {sorted(unknown)}"})
    for alias, key in WORKLOAD_ALIASES.items():
        if alias in workload:
            if key in workload and workload[key] != workload[alias]:
                raise BadRequest(f"{alias} and {key} disagree", {alias: f"is {key}; give one of them"})
            workload = {**workload, key: workload[alias]}
    for key in WORKLOAD_KEYS:
        if key in workload:
            data[key] = workload[key]
    return data


@api_login_required
@require_GET
def presets(request):
    return JsonResponse({"presets": [{"key": key, "name": p["name"], "family": p["family"], "repo": p["repo"],
                                      "config": p["config"]}
                                     for key, p in PRESETS.items()]})


@api_login_required
@require_GET
def hardware(request):
    built_in = [hw.to_dict() for hw in HARDWARE_PROFILES.values()]
    team = [{**hardware_from_profile(p).to_dict(), "team": p.team.name, "id": p.pk}
            for p in hardware_profiles_visible_to(request.user)]
    return JsonResponse({"hardware": built_in + team})
