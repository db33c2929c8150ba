"""The Choose view's inputs, shared by its page and its API: the model (team-scoped), the hardware
and context as the planner page takes them (its own PlanForm: built-in profiles, `node:<host>`,
`team:<id>`, `custom` with its fields, devices, RAM), and Choose's own metric, axis, headroom and
tolerance. Errors name the field; another team's model or hardware profile is Http404."""

from __future__ import annotations

from collections.abc import Mapping

from django.shortcuts import get_object_or_404

from planner.choose import Choice, ChooseError, choose, metric_refused
from catalog.models import Model
from catalog.selectors import models_visible_to
from planner.estimator import Workload
from planner.forms import PlanForm

# The planner form's hardware and workload fields Choose passes on, as the planner page names them.
PLAN_FIELDS = ("hardware", "devices", "ram_gb", "custom_kind", "custom_memory_gb", "custom_bandwidth_gbs",
               "custom_tflops", "custom_device_memory_gb", "context")
DEFAULT_CONTEXT = 4096


class ChooseInputError(Exception):
    """Bad inputs: {field: message}."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _number(data: Mapping, name: str) -> float | None:
    raw = data.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ChooseError(name, f"must be a number, got {raw!r}") from None


def plan_form(user, model: Model, data: Mapping) -> PlanForm:
    """The planner's form for this model with the hardware and context in `data` (validated)."""
    plan = {k: data[k] for k in PLAN_FIELDS if data.get(k) not in (None, "")}
    plan.setdefault("context", DEFAULT_CONTEXT)
    form = PlanForm({**plan, "source": "catalog", "model": model.pk, "runtime": "llama.cpp"}, user=user)
    form.is_valid()  # Http404 for another team's hardware profile
    return form


def choice_for(*, user, model_pk: int, data: Mapping) -> tuple[Model, Choice, PlanForm]:
    """The Choose answer for the user's model `model_pk`; ChooseInputError naming the fields."""
    model = get_object_or_404(models_visible_to(user).select_related("team"), pk=model_pk)
    if refused := metric_refused(str(data.get("metric") or "kl")):
        raise ChooseInputError({"metric": refused})
    form = plan_form(user, model, data)
    errors = form.error_dict()
    # The model's own config refused by the planner is no input error: the page still shows the
    # measurements, with the planner's reason where the fit would be.
    refused = errors.pop("model", "")
    try:
        metric = str(data.get("metric") or "kl")
        axis = str(data.get("x") or "disk")
        headroom, tolerance = _number(data, "headroom_gb"), _number(data, "tolerance")
    except ChooseError as exc:
        errors[exc.field] = exc.message
    if errors:
        raise ChooseInputError(errors)
    plan = form.plan
    try:
        choice = choose(model=model, arch=plan.arch if plan else None, hardware=plan.hardware if plan else None,
                        workload=plan.workload if plan else _fallback_workload(form),
                        metric=metric, axis=axis, headroom_gb=headroom, tolerance=tolerance,
                        planner_refused=refused)
    except ChooseError as exc:
        raise ChooseInputError({exc.field: exc.message}) from None
    return model, choice, form


def _fallback_workload(form: PlanForm) -> Workload:
    return Workload(runtime="llama.cpp", context=form.cleaned_data.get("context") or DEFAULT_CONTEXT)
