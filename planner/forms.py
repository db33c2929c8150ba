"""The planner's inputs, as one form shared by the page, the JSON API and (indirectly) the CLI.

Every input is a plain query-string field so a plan's URL is shareable. `PlanForm(data, files,
user=...)`; `form.is_valid()` builds the estimate; errors are keyed by the form field and their text
names the offending input (a config.json field such as `num_hidden_layers` is named inside the
`config` error).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.http import Http404

from catalog.models import Model
from catalog.selectors import models_visible_to
from planner.estimator import (HARDWARE_PROFILES, Architecture, Estimate, EstimatorError, Hardware, Workload,
                               estimate)
from planner.estimator.fit import Fit, fit_estimate
from planner.model_definition import architecture_for_config
from planner.nodes import NODE_PREFIX, node_choices, node_hardware_by_key
from planner.estimator.vllm_fit import VllmFit, vllm_fit_estimate
from planner.estimator.hardware import KINDS
from planner.estimator.workload import KV_DTYPES, LORA_TARGET_NAMES, MODES, RUNTIMES
from planner.presets import PRESETS, preset_architecture, preset_choices
from planner.selectors import hardware_profiles_visible_to
from planner.services import hardware_from_profile

MAX_CONFIG_BYTES = 1024 * 1024
SOURCES = [("preset", "Preset"), ("catalog", "Catalog model"), ("config", "config.json"),
           ("params", "Parameter count")]
KIND_LABELS = {"gpu": "GPU", "apple": "Apple silicon", "phone": "Phone", "cpu": "CPU"}
MODE_LABELS = {"inference": "Inference", "full": "Full fine-tune", "lora": "LoRA", "qlora": "QLoRA"}
RUNTIME_LABELS = {"llama.cpp": "llama.cpp", "transformers": "transformers", "vllm": "vLLM"}
DEFAULTS: dict[str, Any] = {
    "source": "preset", "preset": "llama-3.1-8b", "hardware": "rtx-4090", "devices": 1, "runtime": "llama.cpp",
    "context": 4096, "batch": 1, "kv_dtype": "f16", "mode": "inference", "lora_rank": 16,
    "lora_targets": ["q", "k", "v", "o"], "group_size": 128, "exl2_bpw": 4.0,
    "custom_kind": "gpu", "custom_memory_gb": 24, "custom_bandwidth_gbs": 1000, "custom_tflops": 100,
    "n_ubatch": 512, "gpu_memory_utilization": 0.9, "swa_full": "true",
}
# swa_full: absent means llama-cpp-python's default (swa_full = True, as Workload)
BOOL_TEXT = {"true": True, "on": True, "1": True, "True": True, "false": False, "off": False, "0": False,
             "False": False}
# estimator field -> form field (for errors from Hardware.custom and Workload)
FIELD_ALIASES = {"memory_gb": "custom_memory_gb", "bandwidth_gbs": "custom_bandwidth_gbs",
                 "tflops": "custom_tflops", "kind": "custom_kind", "device_count": "devices",
                 "param_count": "params", "preset": "preset", "device_memory_gb": "custom_device_memory_gb"}


def hardware_choices(team_profiles=(), nodes=()) -> list[tuple[str, Any]]:
    """Our measured nodes, built-in profiles grouped by kind, the team's saved profiles, then 'custom'."""
    groups: list[tuple[str, Any]] = [("Our nodes (measured)", list(nodes))] if nodes else []
    for kind in KINDS:
        items = [(hw.key, hw.name) for hw in HARDWARE_PROFILES.values() if hw.kind == kind]
        groups.append((KIND_LABELS[kind], items))
    saved = [(p.key, f"{p.name} ({p.team.name})") for p in team_profiles]
    if saved:
        groups.append(("Team profiles", saved))
    groups.append(("Other", [("custom", "Custom (describe below)")]))
    return groups


@dataclass
class Plan:
    arch: Architecture
    hardware: Hardware
    workload: Workload
    estimate: Estimate
    catalog_model: Model | None = None
    fit: Fit | None = None
    vllm_fit: VllmFit | None = None


class PlanForm(forms.Form):
    source = forms.ChoiceField(choices=SOURCES, required=False)
    preset = forms.ChoiceField(choices=preset_choices(), required=False)  # grouped by family
    model = forms.IntegerField(required=False, min_value=1)
    q = forms.CharField(required=False, max_length=200)
    config = forms.CharField(required=False, widget=forms.Textarea, max_length=MAX_CONFIG_BYTES,
                             error_messages={
                                 "null_characters_not_allowed": "is not text: it has NUL bytes (a "
                                 "binary file?); a config.json is UTF-8 JSON text",
                                 "max_length": "is %(show_value)d characters, over the 1 MiB limit "
                                               "(%(limit_value)d characters)"})
    config_file = forms.FileField(required=False)
    params = forms.CharField(required=False, max_length=40)
    hardware = forms.CharField(required=False, max_length=100, widget=forms.Select)
    devices = forms.IntegerField(required=False, min_value=1, max_value=64)
    custom_kind = forms.ChoiceField(choices=[(k, KIND_LABELS[k]) for k in KINDS], required=False)
    custom_memory_gb = forms.FloatField(required=False)
    custom_bandwidth_gbs = forms.FloatField(required=False)
    custom_tflops = forms.FloatField(required=False)
    # a custom box whose devices differ: GiB per device, comma-separated ("24,24,12")
    custom_device_memory_gb = forms.CharField(required=False, max_length=400)
    ram_gb = forms.FloatField(required=False)   # host RAM beside the GPU(s); empty: the profile's
    runtime = forms.ChoiceField(choices=[(r, RUNTIME_LABELS[r]) for r in RUNTIMES], required=False)
    context = forms.IntegerField(required=False)
    batch = forms.IntegerField(required=False)
    kv_dtype = forms.ChoiceField(choices=[(k, k) for k in KV_DTYPES], required=False)
    mode = forms.ChoiceField(choices=[(m, MODE_LABELS[m]) for m in MODES], required=False)
    lora_rank = forms.IntegerField(required=False)
    lora_targets = forms.MultipleChoiceField(choices=[(t, t) for t in LORA_TARGET_NAMES], required=False,
                                             widget=forms.CheckboxSelectMultiple)
    group_size = forms.IntegerField(required=False)
    exl2_bpw = forms.FloatField(required=False)
    flash_attn = forms.BooleanField(required=False)
    swa_full = forms.TypedChoiceField(choices=[(v, v) for v in BOOL_TEXT], coerce=lambda v: BOOL_TEXT[v],
                                      required=False, empty_value=None)
    n_ubatch = forms.IntegerField(required=False)
    gpu_memory_utilization = forms.FloatField(required=False)
    fit_scheme = forms.CharField(required=False, max_length=40)
    n_cpu_moe = forms.IntegerField(required=False, min_value=0)

    def __init__(self, data=None, files=None, *, user, **kwargs):
        data = _with_defaults(data)
        super().__init__(data, files, **kwargs)
        self.user = user
        self.team_profiles = list(hardware_profiles_visible_to(user))
        self.fields["hardware"].widget.choices = hardware_choices(self.team_profiles, node_choices())
        self.plan: Plan | None = None

    # ---- cleaning ----
    def clean_config_file(self):
        upload = self.cleaned_data.get("config_file")
        if upload and upload.size > MAX_CONFIG_BYTES:
            raise forms.ValidationError(f"{upload.size:,} bytes is over the 1 MiB limit "
                                        f"({MAX_CONFIG_BYTES:,} bytes)")
        return upload

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            arch, catalog_model, model_id = self._architecture(data)
            hardware = self._hardware(data)
            if data["ram_gb"] is not None:
                hardware = hardware.with_ram(data["ram_gb"])   # GPU kinds only; else an error on ram_gb
            workload = Workload(
                runtime=data["runtime"] or DEFAULTS["runtime"], context=_or(data["context"], "context"),
                batch=_or(data["batch"], "batch"), kv_dtype=data["kv_dtype"] or DEFAULTS["kv_dtype"],
                mode=data["mode"] or DEFAULTS["mode"], lora_rank=_or(data["lora_rank"], "lora_rank"),
                lora_targets=tuple(data["lora_targets"] or DEFAULTS["lora_targets"]),
                group_size=_or(data["group_size"], "group_size"), exl2_bpw=_or(data["exl2_bpw"], "exl2_bpw"),
                flash_attn=bool(data["flash_attn"]),
                swa_full=data["swa_full"] is not False, n_ubatch=_or(data["n_ubatch"], "n_ubatch"),
                gpu_memory_utilization=_or(data["gpu_memory_utilization"], "gpu_memory_utilization"))
            est = estimate(arch, hardware, workload)
            fit = fit_estimate(est, data["fit_scheme"] or "", data["n_cpu_moe"])  # checks n_cpu_moe ≤ n_layers
            vllm = vllm_fit_estimate(est, model_id, data["fit_scheme"] if workload.runtime == "vllm" else "")
            self.plan = Plan(arch, hardware, workload, est, catalog_model, fit, vllm)
        except EstimatorError as exc:
            self._add_estimator_error(exc, data)
        return data

    def _architecture(self, data) -> tuple[Architecture, Model | None, str]:
        """The model, its catalog row, and the Hub id (or folder) a `vllm serve` command can name:
        "" where the plan has none (the command then carries a placeholder to fill)."""
        source = data["source"] or "preset"
        if source == "catalog":
            if not data["model"]:
                raise EstimatorError("model", "pick a catalog model")
            found = models_visible_to(self.user).filter(pk=data["model"]).first()
            if found is None:
                raise Http404("no such model in your teams")
            return catalog_architecture(found), found, hub_repo(found)
        if source == "config":
            try:
                cfg = parse_config_text(self._config_text(data))
            except EstimatorError as exc:
                if exc.field == "config" and data.get("config_file"):  # about the upload, not the box
                    raise EstimatorError("config_file", exc.message) from None
                raise
            # A pasted config names its model only through _name_or_path (what save_pretrained
            # writes); without it the commands carry a placeholder to fill
            model_id = cfg.get("_name_or_path")
            model_id = model_id.strip() if isinstance(model_id, str) else ""
            arch = architecture_for_config(cfg, name=model_id or "Pasted config")
            return (arch if model_id else dataclasses.replace(arch, anonymous=True)), None, model_id
        if source == "params":
            return Architecture.from_param_count(data["params"] or ""), None, ""
        key = data["preset"] or DEFAULTS["preset"]
        return preset_architecture(key), None, PRESETS[key]["repo"]

    def _config_text(self, data) -> str:
        upload = data.get("config_file")
        if upload:
            raw = upload.read(MAX_CONFIG_BYTES + 1)
            if len(raw) > MAX_CONFIG_BYTES:
                raise EstimatorError("config_file", f"is {upload.size:,} bytes, over the 1 MiB limit "
                                                f"({MAX_CONFIG_BYTES:,} bytes)")
            if (nul := raw.find(b"\0")) >= 0:
                raise EstimatorError("config_file", f"is not text: it has a NUL byte at offset {nul:,} "
                                                    "(a binary file?); a config.json is UTF-8 JSON text")
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise EstimatorError("config_file", f"is not UTF-8 text ({exc.reason} at offset "
                                                    f"{exc.start:,})") from None
        if not data["config"]:
            raise EstimatorError("config", "paste a config.json or upload one")
        return data["config"]

    def _hardware(self, data) -> Hardware:
        key = data["hardware"] or DEFAULTS["hardware"]
        devices = _or(data["devices"], "devices")
        if key == "custom":
            return Hardware.custom("Custom", _or(data["custom_memory_gb"], "custom_memory_gb"),
                                   _or(data["custom_bandwidth_gbs"], "custom_bandwidth_gbs"),
                                   _or(data["custom_tflops"], "custom_tflops"),
                                   kind=data["custom_kind"] or "gpu", device_count=devices,
                                   device_memory_gb=device_sizes(data["custom_device_memory_gb"]))
        if key.startswith(NODE_PREFIX):
            return node_hardware_by_key(key, devices)
        if key.startswith("team:"):
            profile = next((p for p in self.team_profiles if p.key == key), None)
            if profile is None:
                raise Http404("no such hardware profile in your teams")
            return hardware_from_profile(profile, devices)
        if key not in HARDWARE_PROFILES:
            raise EstimatorError("hardware", f"unknown hardware profile {key!r}; see /api/planner/hardware")
        return HARDWARE_PROFILES[key].with_devices(devices)

    def _add_estimator_error(self, exc: EstimatorError, data) -> None:
        field = FIELD_ALIASES.get(exc.field, exc.field)
        if field in self.fields:
            self.add_error(field, exc.message)
            return
        source = data.get("source") or "preset"
        target = {"config": "config_file" if data.get("config_file") else "config", "params": "params",
                  "catalog": "model"}.get(source, "preset")
        self.add_error(target, f"{exc.field}: {exc.message}")

    # ---- presentation helpers ----
    def error_list(self) -> list[dict[str, str]]:
        """[{field, message}] for the template and the API; each message starts with the field."""
        return [{"field": field, "message": f"{field}: {message}"}
                for field, errors in self.errors.items() for message in errors]

    def error_dict(self) -> dict[str, str]:
        return {field: "; ".join(errors) for field, errors in self.errors.items()}


def hub_repo(model: Model) -> str:
    """The Hub repo a catalog model was imported from ("hub:REPO@REV"), else ""."""
    if not model.source.startswith("hub:"):
        return ""
    return model.source[len("hub:"):].rsplit("@", 1)[0]


def catalog_architecture(model: Model) -> Architecture:
    """A catalog model's normalised config, or its parameter count when the config is empty."""
    if model.config:
        arch = architecture_for_config(model.config, name=model.name)
        # a model imported from files: the total its headers hold is the ground truth for the plan (a
        # GGUF may hold MTP blocks, a safetensors checkpoint MTP layers and a vision tower)
        totals = {arch.total_params + mtp + vision for mtp in (0, arch.mtp_params) for vision in (0, arch.vision_params)}
        if model.param_count and model.param_count not in totals:
            raise EstimatorError("model", f"{model.name}'s files hold {model.param_count:,} parameters where the "
                                          f"plan counts {arch.total_params:,}: not planned")
        return arch
    if model.param_count:
        return Architecture.from_param_count(model.param_count, name=model.name)
    raise EstimatorError("model", f"{model.name} has neither a config nor a parameter count")


def device_sizes(text: str | None) -> list[float] | None:
    """'24, 24, 12' -> [24.0, 24.0, 12.0] (GiB per device); empty -> None."""
    if not text or not text.strip():
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise EstimatorError("device_memory_gb", "must be sizes in GiB separated by commas, e.g. 24,24,12") from None


def parse_config_text(text: str) -> dict:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise EstimatorError("config", "over the 1 MiB limit")
    try:
        cfg = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise EstimatorError("config", f"is not valid JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise EstimatorError("config", "must be a JSON object like a config.json")
    return cfg


def _or(value, name: str):
    return DEFAULTS[name] if value is None else value


def _with_defaults(data):
    """Missing inputs take the defaults; `?model=<id>` alone means 'plan this catalog model'."""
    if data is None:
        data = {}
    merged = data.copy() if hasattr(data, "copy") else dict(data)
    if "source" not in merged and merged.get("model"):
        merged["source"] = "catalog"
    for key, value in DEFAULTS.items():
        if key in merged:
            continue
        if hasattr(merged, "setlist") and isinstance(value, list):
            merged.setlist(key, value)
        else:
            merged[key] = value
    return merged
