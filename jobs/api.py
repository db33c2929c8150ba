"""JSON API for jobs: submit, list, read, cancel."""

from django.shortcuts import get_object_or_404
from ninja import Router

from catalog.selectors import variants_visible_to
from jobs.api_sweeps import router as sweeps_router
from jobs.methods.base import JobError
from jobs.schemas import JobList, JobOut, JobSubmit
from jobs.selectors import jobs_visible_to
from jobs.serializers import job_json
from jobs.services import DuplicateOutputs, job_cancel, job_submit
from quantdash.api_common import DASHBOARD_AUTH, BadRequest

router = Router(auth=DASHBOARD_AUTH)
router.add_router("/sweeps", sweeps_router)


@router.get("/", response=JobList, summary="Your teams' jobs (newest 200)")
def jobs(request):
    rows = jobs_visible_to(request.user).prefetch_related("outputs__files")[:200]
    return {"jobs": [job_json(j) for j in rows]}


@router.post("/", response={201: JobOut}, summary="Submit a job on a variant (409: its outputs already exist)")
def submit(request, body: JobSubmit):
    variant = get_object_or_404(variants_visible_to(request.user).select_related("model__team"), pk=body.variant)
    try:
        job = job_submit(team=variant.model.team, user=request.user, method=body.method,
                         params=body.params, input_variant=variant, another_copy=body.another_copy)
    except DuplicateOutputs as exc:   # the request is fine; what it asks for already exists
        raise BadRequest(str(exc), exc.errors, status=409) from exc
    except JobError as exc:
        raise BadRequest(str(exc), exc.errors) from exc
    return 201, job_json(job)


@router.get("/{int:pk}", response=JobOut, summary="One job")
def job(request, pk: int):
    return job_json(get_object_or_404(jobs_visible_to(request.user), pk=pk))


@router.post("/{int:pk}/cancel", response=JobOut, summary="Cancel a job")
def cancel(request, pk: int):
    return job_json(job_cancel(job=get_object_or_404(jobs_visible_to(request.user), pk=pk)))
