"""The sweep pages: "Measure quants" (the plan, then Start) and one page per sweep that follows
its steps (htmx polling while it runs, 286 once it is final) with Cancel for the whole sweep.

The model page's "Measure quants" form GETs sweep_new, which shows what the sweep would do
(jobs.sweeps.sweep_plan: each step ready, waiting for another, or already in the catalog);
its Start button POSTs the same fields. Lookups go through team-scoped selectors: another
team's model or sweep is a 404.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from catalog.models import Dataset, Variant
from catalog.selectors import datasets_visible_to, models_visible_to
from jobs.methods.base import JobError
from jobs.sweep_params import (DEFAULT_CHUNKS, DEFAULT_CONTEXT, DEFAULT_TYPES, HF_METHODS,
                               hf_method_notes)
from jobs.sweeps import (sweep_cancel, sweep_plan, sweep_progress, sweep_steps, sweep_submit,
                         sweeps_visible_to)

FIELDS = ("base", "types", "calibration", "evaluation", "context", "chunks", "speed")
# Errors the form shows beside their field; any other is shown above the form, named.
SHOWN_ERRORS = {*FIELDS, "hf_methods", "dataset", "form"}


def _params(data) -> dict:
    """The form's fields as sweep parameters; hf_methods only when the form carried its
    checkboxes (hf_choice), so a bare link gets the defaults."""
    params = {k: data.get(k) for k in FIELDS[1:] if data.get(k) not in (None, "")}
    if data.get("hf_choice"):
        params["hf_methods"] = data.getlist("hf_methods")
    return params


def sweep_new(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the form and, when it names a base, the plan. POST: start the sweep (or say that
    everything is already measured, creating nothing)."""
    model = get_object_or_404(models_visible_to(request.user).select_related("team"), pk=pk)
    bases = list(model.variants.filter(format__in=[Variant.Format.GGUF, Variant.Format.HF]))
    data = request.POST if request.method == "POST" else request.GET
    base = next((v for v in bases if str(v.pk) == data.get("base")), None)
    context = {"model": model, "bases": bases, "base": base, "data": data, "steps": None,
               "errors": {}, "nothing_to_do": False, "default_types": ", ".join(DEFAULT_TYPES),
               "default_context": DEFAULT_CONTEXT, "default_chunks": DEFAULT_CHUNKS,
               "datasets": datasets_visible_to(request.user).filter(team=model.team,
                                                                  kind=Dataset.Kind.TXT)}
    status = 200
    if data.get("base") and base is None:
        context["errors"] = {"base": f"no GGUF or HF variant {data.get('base')[:20]} of {model.name}"}
        status = 400
    elif base is not None:
        try:
            if request.method == "POST":
                sweep, steps = sweep_submit(team=model.team, user=request.user, base=base,
                                            params=_params(data))
                if sweep is not None:
                    return redirect("jobs:sweep", sweep.pk)
                context["nothing_to_do"] = True
            else:
                _, steps = sweep_plan(team=model.team, base=base, params=_params(data))
            context["steps"] = steps
        except JobError as exc:
            errors = dict(exc.errors) or {"form": str(exc)}
            other = [f"{k}: {v}" for k, v in errors.items() if k not in SHOWN_ERRORS]
            context["errors"] = errors | ({"form": "; ".join(other)} if other else {})
            status = 400
    chosen = (set(data.getlist("hf_methods")) if data.get("hf_choice")
              else {s.method for s in context["steps"] or []})
    notes = hf_method_notes(model.team)
    context["hf_rows"] = [(key, name, notes[key], key in chosen) for key, name in HF_METHODS.items()]
    return render(request, "jobs/sweep_new.html", context, status=status)


def sweep_detail(request: HttpRequest, pk: int) -> HttpResponse:
    sweep = get_object_or_404(sweeps_visible_to(request.user).select_related("base__model"), pk=pk)
    steps = sweep_steps(team=sweep.team, base=sweep.base, params=sweep.params, sweep=sweep)
    names = dict(Dataset.objects.filter(pk__in=[sweep.params.get("calibration"),
                                                sweep.params["evaluation"]]).values_list("pk", "name"))
    context = {"sweep": sweep, "steps": steps, "progress": sweep_progress(sweep, steps),
               "calibration_name": names.get(sweep.params.get("calibration"), ""),
               "evaluation_name": names.get(sweep.params["evaluation"], "a deleted dataset")}
    if request.htmx:
        response = render(request, "jobs/partials/sweep_status.html", context)
        return HttpResponseStopPolling(response.content) if context["progress"].is_final else response
    return render(request, "jobs/sweep.html", context)


@require_POST
def sweep_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    sweep = sweep_cancel(sweep=get_object_or_404(sweeps_visible_to(request.user), pk=pk))
    return redirect("jobs:sweep", sweep.pk)
