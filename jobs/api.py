"""JSON API for jobs: submit, list, read, cancel (session auth; CSRF applies to writes)."""

from django.http import JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog.selectors import variants_visible_to
from jobs.methods.base import JobError
from jobs.selectors import jobs_visible_to
from jobs.serializers import job_json
from jobs.services import job_cancel, job_submit
from quantdash.api import BadRequest, api_login_required, json_body, not_found


@api_login_required
@require_http_methods(["GET", "POST"])
def jobs(request):
    if request.method == "GET":
        rows = jobs_visible_to(request.user).prefetch_related("outputs__files")[:200]
        return JsonResponse({"jobs": [job_json(j) for j in rows]})
    data = json_body(request)
    for name in ("variant", "method"):
        if name not in data:
            raise BadRequest(f"{name} is required", {name: "required"})
    if not isinstance(data["variant"], int):
        raise BadRequest("variant must be an integer id", {"variant": "must be an integer id"})
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise BadRequest("params must be an object", {"params": "must be an object"})
    variant = variants_visible_to(request.user).select_related("model__team").filter(
        pk=data["variant"]).first()
    if variant is None:
        return not_found()
    try:
        job = job_submit(team=variant.model.team, user=request.user, method=str(data["method"]),
                         params=params, input_variant=variant)
    except JobError as exc:
        raise BadRequest(str(exc), exc.errors) from exc
    return JsonResponse(job_json(job), status=201)


@api_login_required
@require_GET
def job(request, pk: int):
    found = jobs_visible_to(request.user).filter(pk=pk).first()
    return JsonResponse(job_json(found)) if found else not_found()


@api_login_required
@require_POST
def cancel(request, pk: int):
    found = jobs_visible_to(request.user).filter(pk=pk).first()
    return JsonResponse(job_json(job_cancel(job=found))) if found else not_found()
