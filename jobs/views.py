from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django_htmx.http import HttpResponseStopPolling

from catalog.models import Dataset, Variant
from catalog.selectors import (datasets_visible_to, imatrices_visible_to, imatrix_infos,
                               runnable_variants_visible_to, tasksets_visible_to)
from jobs.forms import ImatrixJobForm, JobForm
from jobs.methods.base import JobError
from jobs.models import Worker
from jobs.presentation import cancel_confirm_text, queue_wait_text
from jobs.selectors import jobs_visible_to, queue_wait
from jobs.services import DuplicateOutputs, job_cancel, job_check, job_submit


def job_list(request):
    jobs = list(jobs_visible_to(request.user).select_related("input_variant__model")[:100])
    for job in jobs:
        _note_wait(job)
    active = any(not j.is_final for j in jobs)
    context = {"jobs": jobs, "workers": Worker.objects.all(), "active": active}
    if request.htmx:
        response = render(request, "jobs/partials/job_table.html", context)
        return response if active else _stop(response)
    return render(request, "jobs/list.html", context)


def job_detail(request, pk: int):
    job = _note_wait(get_object_or_404(jobs_visible_to(request.user), pk=pk))
    if request.htmx:
        # Once the job is final the poll's answer also carries its results (out of band), so
        # they appear without a reload, and polling stops.
        response = render(request, "jobs/partials/job_poll.html", {"job": job})
        return _stop(response) if job.is_final else response
    return render(request, "jobs/detail.html", {"job": job})


def _note_wait(job):
    """Sets what the templates say of an unfinished job: job.queue_note, why a queued job waits
    (empty for any other), and job.cancel_note, what the Cancel button of a running job asks
    first."""
    wait = queue_wait(job)
    job.queue_note = queue_wait_text(wait, team_id=job.team_id) if wait else ""
    job.cancel_note = cancel_confirm_text(job, timezone.now())
    return job


def job_cancel_view(request, pk: int):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    job = _note_wait(job_cancel(job=get_object_or_404(jobs_visible_to(request.user), pk=pk)))
    if request.htmx:
        return render(request, "jobs/partials/job_progress.html", {"job": job})
    return redirect("jobs:detail", pk=job.pk)


def _job_form(request, data) -> JobForm | ImatrixJobForm:
    """The new-job form over what the user may see; the page and its preview both build it here.
    Method "imatrix" (the "Make importance matrix" action) has a form of its own. Inputs are
    variants that are model weights, never importance matrices; the GGUF form's importance
    matrix list holds only those of the input's model."""
    method = (data or {}).get("method") or request.GET.get("method") or (
        "evaluate" if request.GET.get("kind") == "evaluate" else "gguf")
    initial = {"variant": request.GET.get("variant"), "method": method}
    variants = runnable_variants_visible_to(request.user).select_related("model__team")
    datasets = datasets_visible_to(request.user).filter(kind=Dataset.Kind.TXT)
    if method == "imatrix":
        return ImatrixJobForm(data, initial=initial, datasets=datasets, variants=variants.filter(
            format__in=[Variant.Format.GGUF, Variant.Format.HF]))
    chosen = variants.filter(pk=_int((data or {}).get("variant") or initial["variant"])).first()
    imatrices = imatrices_visible_to(request.user, model_id=chosen.model_id if chosen else -1)
    return JobForm(data, initial=initial, variants=variants, datasets=datasets,
                   imatrices=imatrices.select_related("model"),
                   tasksets=tasksets_visible_to(request.user).select_related("team"))


def _int(value) -> int | None:
    return int(value) if str(value or "").isdigit() else None


def job_new(request):
    form = _job_form(request, request.POST or None)
    convert_variant = None
    if request.method == "POST" and form.is_valid():
        variant = form.cleaned_data["variant"]
        try:
            job = job_submit(team=variant.model.team, user=request.user,
                             method=form.cleaned_data["method"], params=form.params(),
                             input_variant=variant,
                             another_copy=form.cleaned_data.get("another_copy", False))
            return redirect("jobs:detail", pk=job.pk)
        except JobError as exc:
            _add_job_errors(form, exc)
            convert_variant = _convertible(exc, variant)
    making_imatrix = isinstance(form, ImatrixJobForm)
    return render(request, "jobs/new.html", {
        "form": form, "convert_variant": convert_variant, "making_imatrix": making_imatrix,
        "title": "Make importance matrix" if making_imatrix else "New job",
        "variant_id": _int(form["variant"].value())})


def job_placement(request):
    """htmx: where the job in the form would run, or why it can't, with every warning the job
    would record. It validates what submitting would: the same form and parameters
    (form.params()), then job_submit's own checks (jobs.services.job_check) without saving."""
    form = _job_form(request, request.GET)
    context = {"check": None, "error": None, "convert_variant": None, "plan": None, "existing": []}
    if not form.is_valid():
        context["error"] = "; ".join(f"{name}: {' '.join(errors)}" if name != "__all__" else " ".join(errors)
                                     for name, errors in form.errors.items())
        return render(request, "jobs/partials/placement.html", context)
    variant = form.cleaned_data["variant"]
    try:
        context["check"] = job_check(
            team=variant.model.team, method=form.cleaned_data["method"], params=form.params(),
            input_variant=variant, another_copy=form.cleaned_data.get("another_copy", False))
        context["plan"] = _job_plan(form)
        context["existing"] = context["check"].existing
    except DuplicateOutputs as exc:
        context["error"], context["existing"] = exc.reason, exc.existing
    except JobError as exc:
        context["error"] = str(exc)
        context["convert_variant"] = _convertible(exc, variant)
    return render(request, "jobs/partials/placement.html", context)


def _job_plan(form) -> dict | None:
    """What the job in the form will do beyond where it runs, in the preview's words: for a GGUF
    job the importance matrix it uses or makes first, its types, per-tensor overrides and
    output / embedding types; for an imatrix job the text and chunks it reads."""
    data = form.cleaned_data
    if data.get("method") == "imatrix":
        return {"types": None, "make_imatrix": data["dataset"], "chunks": data["chunks"],
                "context": data["context"]}
    if data.get("method") != "gguf":
        return None
    imatrix = data.get("imatrix")
    return {"types": data.get("types") or [],
            "imatrix": imatrix_infos([imatrix]).get(imatrix.pk) if imatrix else None,
            "make_imatrix": data.get("imatrix_dataset"),
            "chunks": data.get("imatrix_chunks") or form.fields["imatrix_chunks"].initial,
            "context": data.get("imatrix_context") or form.fields["imatrix_context"].initial,
            "tensor_types": data.get("tensor_types") or [],
            "output_tensor_type": data.get("output_tensor_type"),
            "token_embedding_type": data.get("token_embedding_type")}


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
