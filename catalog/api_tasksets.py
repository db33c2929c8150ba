"""JSON API for task sets (/api/catalog/tasksets): list, upload (multipart), delete. Another
team's task set is 404 JSON."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from ninja import File, Form, Router
from ninja.files import UploadedFile

from catalog.forms import TaskSetForm
from catalog.schemas import TaskSetList, TaskSetOut
from catalog.selectors import tasksets_visible_to
from catalog.serializers import taskset_json
from catalog.services import CatalogError
from catalog.tasksets import TaskYamlError, taskset_delete
from catalog.views_tasksets import upload_taskset
from quantdash.api_common import DASHBOARD_AUTH, BadRequest

router = Router(auth=DASHBOARD_AUTH)


@router.get("", response=TaskSetList, summary="Your teams' task sets")
def tasksets(request):
    rows = tasksets_visible_to(request.user).select_related("team")
    return {"tasksets": [taskset_json(t) for t in rows]}


@router.post("", response={201: TaskSetOut}, summary="Upload a task set (multipart)")
def taskset_create(request, team: Form[int], kind: Form[str], file: File[UploadedFile],
                   name: Form[str] = "", question_field: Form[str] = "question",
                   choices_field: Form[str] = "choices", answer_field: Form[str] = "answer",
                   yaml_file: File[UploadedFile] | None = None):
    """kind: mc, qa or yaml; file: the items (.jsonl); yaml_file: with kind yaml, the lm-eval
    task YAML. Refusals are 400 naming the field, and the line for a problem inside a file."""
    # The upload page's bound (the site's request body limit usually stops such a body sooner).
    if sum(f.size for f in request.FILES.values()) > settings.UPLOAD_MAX_BYTES:
        raise BadRequest(f"the upload is larger than the {settings.UPLOAD_MAX_BYTES // 1024**2} "
                         "MiB limit (UPLOAD_MAX_BYTES)", status=413)
    form = TaskSetForm({"team": team, "kind": kind, "name": name, "question_field": question_field,
                        "choices_field": choices_field, "answer_field": answer_field},
                       request.FILES, user=request.user)
    if not form.is_valid():
        errors = {name: " ".join(messages) for name, messages in form.errors.items()}
        raise BadRequest("; ".join(f"{k}: {v}" for k, v in errors.items()), errors)
    try:
        taskset = upload_taskset(data=form.cleaned_data, user=request.user)
    except CatalogError as exc:
        field = "yaml_file" if isinstance(exc, TaskYamlError) else "file"
        raise BadRequest(f"{field}: {exc}", {field: str(exc)}) from None
    return 201, taskset_json(taskset)


@router.delete("/{int:pk}", response={204: None}, summary="Delete a task set")
def taskset_remove(request, pk: int):
    taskset = get_object_or_404(tasksets_visible_to(request.user), pk=pk)
    taskset_delete(taskset=taskset, user=request.user)
    return 204, None
