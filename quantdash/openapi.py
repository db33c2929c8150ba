"""Hand-written OpenAPI 3.1 document for the JSON APIs, served at /api/openapi.json (no login).

Covers the planner (planner/api.py), jobs (jobs/api.py) and catalog (catalog/api.py) endpoints.
All of them use the session cookie; anonymous calls get 401 JSON, other teams' objects 404 JSON.
"""

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from planner.estimator import SCHEME_NAMES
from planner.estimator.hardware import KINDS
from planner.estimator.workload import KV_DTYPES, LORA_TARGET_NAMES, MODES, RUNTIMES


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _q(name: str, schema: dict, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _id(name: str = "pk") -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


ERRORS = {"401": {"$ref": "#/components/responses/Unauthorized"}}
NOT_FOUND = {"404": {"$ref": "#/components/responses/NotFound"}}
BAD = {"400": {"$ref": "#/components/responses/BadRequest"}}
INT = {"type": "integer"}
STR = {"type": "string"}
NULL_STR = {"type": ["string", "null"]}

PLANNER_QUERY = [
    _q("source", {"enum": ["preset", "catalog", "config", "params"]}, "model source; `model=<id>` alone means catalog"),
    _q("preset", STR, "preset key, see /api/planner/presets"),
    _q("model", INT, "catalog model id (team-scoped)"),
    _q("config", STR, "a config.json as text (≤ 1 MiB)"),
    _q("params", STR, "parameter count, e.g. 7.3B"),
    _q("hardware", STR, "profile key, `team:<id>` or `custom`"),
    _q("devices", {"type": "integer", "minimum": 1, "maximum": 64}),
    _q("custom_kind", {"enum": list(KINDS)}), _q("custom_memory_gb", {"type": "number"}),
    _q("custom_bandwidth_gbs", {"type": "number"}), _q("custom_tflops", {"type": "number"}),
    _q("runtime", {"enum": list(RUNTIMES)}), _q("context", INT), _q("batch", INT),
    _q("kv_dtype", {"enum": list(KV_DTYPES)}), _q("mode", {"enum": list(MODES)}), _q("lora_rank", INT),
    {**_q("lora_targets", {"type": "array", "items": {"enum": list(LORA_TARGET_NAMES)}}), "explode": True},
    _q("group_size", INT), _q("exl2_bpw", {"type": "number", "minimum": 2, "maximum": 8}),
    _q("flash_attn", {"type": "boolean"}),
    _q("swa_full", {"type": "boolean"}, "llama.cpp full-size sliding-window cache (default true)"),
    _q("n_ubatch", INT, "llama.cpp physical batch (default 512)"),
    _q("gpu_memory_utilization", {"type": "number", "minimum": 0.05, "maximum": 1}, "vLLM (default 0.9)"),
    _q("fit_scheme", STR, "scheme for the fit (GGUF for llama.cpp, BF16/FP8/AWQ/GPTQ/NF4 for vLLM)"),
    _q("n_cpu_moe", {"type": "integer", "minimum": 0}, "llama.cpp --n-cpu-moe override"),
]

SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {
        "error": STR, "errors": {"type": "object", "additionalProperties": STR,
                                 "description": "input field -> message"}}},
    "PlanRequest": {"type": "object", "properties": {
        "model": {"type": "object", "description": "exactly one key", "properties": {
            "preset": STR, "config": {"type": ["object", "string"]}, "params": {"type": ["string", "integer"]},
            "catalog_model": INT}},
        "hardware": {"oneOf": [STR, {"type": "object", "properties": {
            "profile": STR, "devices": INT, "kind": {"enum": list(KINDS)}, "memory_gb": {"type": "number"},
            "bandwidth_gbs": {"type": "number"}, "tflops": {"type": "number"}}}]},
        "workload": {"type": "object", "additionalProperties": False, "properties": {
            "runtime": {"enum": list(RUNTIMES)}, "context": INT, "batch": INT, "kv_dtype": {"enum": list(KV_DTYPES)},
            "mode": {"enum": list(MODES)}, "lora_rank": INT,
            "lora_targets": {"type": "array", "items": {"enum": list(LORA_TARGET_NAMES)}},
            "group_size": INT, "exl2_bpw": {"type": "number"}, "flash_attn": {"type": "boolean"},
            "swa_full": {"type": "boolean"}, "n_ubatch": INT, "ubatch": {**INT, "description": "= n_ubatch"},
            "n_seq": {**INT, "description": "= batch (llama.cpp -np)"}, "gpu_memory_utilization": {"type": "number"},
            "fit_scheme": STR, "n_cpu_moe": INT}}}},
    "SchemeRow": {"type": "object", "properties": {
        "scheme": {"enum": SCHEME_NAMES, "description": "GPTQ/AWQ/EXL2 names follow group_size/exl2_bpw"},
        "family": STR, "description": STR, "bits_per_weight": {"type": "number"},
        **{k: INT for k in ("weights_bytes", "kv_cache_bytes", "compute_bytes", "overhead_bytes", "training_bytes",
                            "total_bytes", "capacity_bytes", "headroom_bytes", "max_context")},
        "rule_of_thumb_bytes": {**INT, "description": "parameters × nominal bytes per parameter (the figure quoted)"},
        "rule_of_thumb_note": {**STR, "description": "the rule of thumb and what the estimate adds to it"},
        "gpu_layers": {"type": ["integer", "null"]}, "n_layers": {"type": ["integer", "null"]},
        "fits": {"type": "boolean"}, "runs_with_offload": {"type": "boolean"},
        "kv_pool_bytes": {"type": ["integer", "null"]}, "decode_tokens_per_s": {"type": "number"},
        "prefill_seconds": {"type": "number"}, "engines": {"type": "array", "items": STR},
        "high_precision_tensors": {"type": "array", "items": STR}, "supported": {"type": "boolean"}, "note": STR,
        "formulas": {"type": "object", "additionalProperties": STR, "description": "key -> formula with numbers"},
        "measured": {"type": ["object", "null"], "description": "the measured error on record (planner/measured.json)"},
    }},
    "Estimate": {"type": "object", "required": ["schemes", "model", "hardware", "workload"], "properties": {
        "schemes": {"type": "array", "items": _ref("SchemeRow")}, "model": {"type": "object"},
        "hardware": _ref("Hardware"), "workload": {"type": "object"}}},
    "Hardware": {"type": "object", "properties": {
        "key": STR, "name": STR, "kind": {"enum": list(KINDS)}, "memory_bytes": INT, "usable_memory_bytes": INT,
        "bandwidth_bytes_per_s": {"type": "number"}, "fp16_flops": {"type": "number"}, "ram_bytes": INT,
        "ram_bandwidth": {"type": "number"}, "device_count": INT, "team": STR, "id": INT}},
    "File": {"type": "object", "properties": {"id": INT, "path": STR, "bytes": INT, "sha256": STR, "download": STR}},
    "Variant": {"type": "object", "properties": {
        "id": INT, "format": STR, "quant_type": STR, "bits_per_weight": {"type": ["number", "null"]},
        "parent": {"type": ["integer", "null"]}, "files": {"type": "array", "items": _ref("File")}, "model": INT,
        "params": {"type": "object"}, "metrics": {"type": "object"}, "tool_versions": {"type": "object"},
        "created_at": {"type": "string", "format": "date-time"}}},
    "Model": {"type": "object", "properties": {
        "id": INT, "name": STR, "team": STR, "architecture": STR, "param_count": {"type": ["integer", "null"]},
        "license": STR, "tags": {"type": "array", "items": STR}, "source": STR,
        "created_at": {"type": "string", "format": "date-time"}, "config": {"type": "object"}, "model_card": STR,
        "variants": {"type": "array", "items": {"oneOf": [INT, _ref("Variant")]},
                     "description": "ids in the list, objects in the detail"}}},
    "Dataset": {"type": "object", "properties": {
        "id": INT, "name": STR, "kind": STR, "path": STR, "hub_id": STR, "bytes": INT, "sha256": STR,
        "records": {"type": ["integer", "null"]}, "token_count": {"type": ["integer", "null"]}, "token_counter": STR}},
    "Job": {"type": "object", "properties": {
        "job": INT, "kind": STR, "method": STR, "status": STR, "queue": STR, "input_variant": INT,
        "params": {"type": "object"}, "progress": {"type": "number"}, "stage": STR,
        "eta_seconds": {"type": ["number", "null"]}, "attempts": INT, "error": STR, "estimate": {"type": "object"},
        "worker": STR, "created_at": {"type": "string", "format": "date-time"},
        "started_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "outputs": {"type": "array", "items": _ref("Variant")}}},
    "JobSubmit": {"type": "object", "required": ["variant", "method"], "properties": {
        "variant": INT, "method": STR, "params": {"type": "object"}}},
}

PATHS = {
    "/api/planner/estimate": {
        "get": {"summary": "Estimate memory for every scheme (inputs as the planner page's query string)",
                "tags": ["planner"], "parameters": PLANNER_QUERY,
                "responses": {"200": _json(_ref("Estimate")), **BAD, **ERRORS, **NOT_FOUND}},
        "post": {"summary": "Estimate memory from a JSON body", "tags": ["planner"],
                 "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("PlanRequest")}}},
                 "responses": {"200": _json(_ref("Estimate")), **BAD, **ERRORS, **NOT_FOUND,
                               "413": {"description": "body over 1 MiB"}}},
    },
    "/api/planner/presets": {"get": {"summary": "Built-in model presets", "tags": ["planner"], "responses": {
        "200": _json({"type": "object", "properties": {"presets": {"type": "array", "items": {
            "type": "object", "properties": {"key": STR, "name": STR, "family": STR, "repo": STR,
                                           "config": {"type": "object"}}}}}}),
        **ERRORS}}},
    "/api/planner/hardware": {"get": {"summary": "Built-in hardware profiles and your teams' saved ones",
                                      "tags": ["planner"], "responses": {"200": _json({"type": "object", "properties": {
                                          "hardware": {"type": "array", "items": _ref("Hardware")}}}), **ERRORS}}},
    "/api/jobs/": {
        "get": {"summary": "Your teams' jobs (newest 200)", "tags": ["jobs"], "responses": {
            "200": _json({"type": "object", "properties": {"jobs": {"type": "array", "items": _ref("Job")}}}), **ERRORS}},
        "post": {"summary": "Submit a job on a variant (session auth: send the CSRF token)", "tags": ["jobs"],
                 "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("JobSubmit")}}},
                 "responses": {"201": _json(_ref("Job"), "Created"), **BAD, **ERRORS, **NOT_FOUND}},
    },
    "/api/jobs/{pk}": {"get": {"summary": "One job", "tags": ["jobs"], "parameters": [_id()],
                               "responses": {"200": _json(_ref("Job")), **ERRORS, **NOT_FOUND}}},
    "/api/jobs/{pk}/cancel": {"post": {"summary": "Cancel a job", "tags": ["jobs"], "parameters": [_id()],
                                       "responses": {"200": _json(_ref("Job")), **ERRORS, **NOT_FOUND}}},
    "/api/catalog/models": {"get": {"summary": "Your teams' models", "tags": ["catalog"], "responses": {
        "200": _json({"type": "object", "properties": {"models": {"type": "array", "items": _ref("Model")}}}),
        **ERRORS}}},
    "/api/catalog/models/{pk}": {"get": {"summary": "One model with its variants and config", "tags": ["catalog"],
                                         "parameters": [_id()],
                                         "responses": {"200": _json(_ref("Model")), **ERRORS, **NOT_FOUND}}},
    "/api/catalog/variants/{pk}": {"get": {"summary": "One variant with download links", "tags": ["catalog"],
                                           "parameters": [_id()],
                                           "responses": {"200": _json(_ref("Variant")), **ERRORS, **NOT_FOUND}}},
    "/api/catalog/datasets": {"get": {"summary": "Your teams' datasets", "tags": ["catalog"], "responses": {
        "200": _json({"type": "object", "properties": {"datasets": {"type": "array", "items": _ref("Dataset")}}}),
        **ERRORS}}},
}

SCHEMA: dict = {
    "openapi": "3.1.0",
    "info": {"title": "quantdash API", "version": "0.1.0",
             "description": "Plan memory, browse the catalog, run jobs. Session-cookie auth (log in at /login/)."},
    "servers": [{"url": "/"}],
    "security": [{"session": []}],
    "tags": [{"name": "planner"}, {"name": "jobs"}, {"name": "catalog"}],
    "paths": PATHS,
    "components": {
        "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "sessionid"}},
        "schemas": SCHEMAS,
        "responses": {
            "BadRequest": _json(_ref("Error"), "Invalid input; `errors` names each field"),
            "Unauthorized": _json(_ref("Error"), "Not logged in"),
            "NotFound": _json(_ref("Error"), "No such object in your teams"),
        },
    },
}


@login_not_required
@require_GET
def schema_view(request):
    return JsonResponse(SCHEMA)
