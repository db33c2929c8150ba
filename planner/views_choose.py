"""The Choose page (/planner/choose/<pk>/): which variant of a catalog model to run on a machine at
a context. A thin view over planner.choose_inputs (inputs, team scoping) and planner.choose (the decision);
the query string is the whole question, so a choice's URL is shareable."""

from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from planner.choose import AXES, FIT_WORDS, metrics_for
from planner.choose_chart import FIT_COLOURS, pareto_chart
from planner.choose_inputs import DEFAULT_CONTEXT, ChooseInputError, choice_for, plan_form
from catalog.selectors import models_visible_to

FIELDS = ("hardware", "devices", "ram_gb", "custom_kind", "custom_memory_gb", "custom_bandwidth_gbs",
          "custom_tflops", "custom_device_memory_gb", "context", "metric", "x", "headroom_gb", "tolerance")


@require_GET
def model_choose(request, pk: int):
    values = {k: request.GET.get(k, "") for k in FIELDS}
    context = {"values": values, "axes": AXES, "errors": {}, "choice": None,
               "chart": None, "legend": [(FIT_WORDS[k], FIT_COLOURS[k]) for k in FIT_COLOURS]}
    try:
        model, choice, form = choice_for(user=request.user, model_pk=pk, data=request.GET)
    except ChooseInputError as exc:
        model = get_object_or_404(models_visible_to(request.user).select_related("team"), pk=pk)
        form = plan_form(request.user, model, {})
        context["errors"] = exc.errors
        context["metrics"] = metrics_for(model)
    else:
        context.update(choice=choice, chart=pareto_chart(choice), metrics=choice.metrics, sweep_url=_sweep_url(model.pk),
                       not_drawn=[c for c in choice.candidates if not c.usable or c.x(choice.axis) is None])
    values["hardware"] = values["hardware"] or form.data.get("hardware", "")
    values["context"] = values["context"] or str(DEFAULT_CONTEXT)
    context.update(model=model, hardware_groups=form.fields["hardware"].widget.choices)
    return render(request, "planner/choose.html", context)


def _sweep_url(pk: int) -> str:
    """The jobs app's "Measure quants" form for this model."""
    return reverse("jobs:sweep-new", args=[pk])
