from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django_htmx.http import HttpResponseStopPolling

from catalog.selectors import variants_visible_to
from jobs import routing
from jobs.forms import JobForm
from jobs.methods import get_method
from jobs.methods.base import JobError
from jobs.models import Worker
from jobs.selectors import jobs_visible_to
from jobs.services import job_cancel, job_submit


def job_list(request):
    jobs = jobs_visible_to(request.user).select_related("input_variant__model")[:100]
    active = any(not j.is_final for j in jobs)
    context = {"jobs": jobs, "workers": Worker.objects.all(), "active": active}
    if request.htmx:
        response = render(request, "jobs/partials/job_table.html", context)
        return response if active else _stop(response)
    return render(request, "jobs/list.html", context)


def job_detail(request, pk: int):
    job = get_object_or_404(jobs_visible_to(request.user), pk=pk)
    if request.htmx:
        response = render(request, "jobs/partials/job_progress.html", {"job": job})
        return _stop(response) if job.is_final else response
    return render(request, "jobs/detail.html", {"job": job})


def job_cancel_view(request, pk: int):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    job = job_cancel(job=get_object_or_404(jobs_visible_to(request.user), pk=pk))
    if request.htmx:
        return render(request, "jobs/partials/job_progress.html", {"job": job})
    return redirect("jobs:detail", pk=job.pk)


def job_new(request):
    variants = variants_visible_to(request.user).select_related("model")
    method = request.GET.get("method") or ("evaluate" if request.GET.get("kind") == "evaluate" else "gguf")
    initial = {"variant": request.GET.get("variant"), "method": method}
    form = JobForm(request.POST or None, variants=variants, initial=initial)
    convert_variant = None
    if request.method == "POST" and form.is_valid():
        variant = form.cleaned_data["variant"]
        try:
            job = job_submit(team=variant.model.team, user=request.user,
                             method=form.cleaned_data["method"], params=form.params(),
                             input_variant=variant)
            return redirect("jobs:detail", pk=job.pk)
        except JobError as exc:
            _add_job_errors(form, exc)
            convert_variant = _convertible(exc, variant)
    return render(request, "jobs/new.html", {"form": form, "convert_variant": convert_variant})


def job_placement(request):
    """htmx: where the job in the form would run, or why it can't."""
    variant = variants_visible_to(request.user).filter(pk=request.GET.get("variant") or 0).first()
    context = {"placement": None, "error": None, "estimate": None, "convert_variant": None}
    try:
        if variant is None:
            raise JobError.field("variant", "choose an input variant")
        method = get_method(request.GET.get("method", ""))
        form = JobForm(request.GET, variants=variants_visible_to(request.user))
        form.is_valid()
        params = {k: v for k, v in form.cleaned_data.items()
                  if k in JobForm.METHOD_FIELDS.get(method.name, []) and v not in (None, "", [])}
        cleaned = method.validate(params, variant)
        context["estimate"] = method.estimate(cleaned, variant)
        context["placement"] = routing.placement(
            method=method.name, peak_memory_bytes=context["estimate"]["peak_memory_bytes"])
    except JobError as exc:
        context["error"] = str(exc)
        context["convert_variant"] = _convertible(exc, variant)
    return render(request, "jobs/partials/placement.html", context)


def _convertible(exc: JobError, variant):
    """The GGUF variant to offer a GGUF -> HF conversion for, when the refusal is that the method
    needs an HF safetensors input (jobs.methods.hf_common.require_hf_input)."""
    if variant is not None and variant.format == "gguf" and "HF safetensors" in exc.errors.get("input", ""):
        return variant
    return None


def _add_job_errors(form: JobForm, exc: JobError) -> None:
    if not exc.errors:
        form.add_error(None, str(exc))
    for name, message in exc.errors.items():
        form.add_error(name if name in form.fields else None,
                       message if name in form.fields else f"{name}: {message}")


def _stop(response):
    stop = HttpResponseStopPolling(response.content)
    return stop
