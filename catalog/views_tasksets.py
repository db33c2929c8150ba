"""Task set pages: the team's task files for "tasks" jobs (upload, list, download, delete).
Validation and storage are catalog/tasksets.py; this only moves the uploads into a staging
folder and shows the result or the refusal on the field it is about."""

from pathlib import Path

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.views.decorators.http import require_GET, require_POST

from catalog.downloads import ranged_file_response
from catalog.forms import TaskSetForm
from catalog.imports.common import staging
from catalog.models import TaskSet
from catalog.selectors import tasksets_visible_to
from catalog.services import CatalogError
from catalog.tasksets import TaskYamlError, taskset_delete, taskset_upload
from catalog.uploads import capped_upload
from catalog.views_import import stage_uploads


def upload_taskset(*, data: dict, user) -> TaskSet:
    """Stages the form's (or API's) uploaded files and registers the task set from them."""
    with staging("upload") as folder:
        files = [data["file"]] + ([data["yaml_file"]] if data.get("yaml_file") else [])
        paths = stage_uploads(files, folder)
        return taskset_upload(
            team_id=data["team"], user_id=user.pk, kind=data["kind"], path=str(paths[0]),
            name=data.get("name") or "", filename=Path(data["file"].name).name,
            question_field=data.get("question_field") or "question",
            choices_field=data.get("choices_field") or "choices",
            answer_field=data.get("answer_field") or "answer",
            yaml_path=str(paths[1]) if len(paths) > 1 else "")


@capped_upload
def taskset_list(request):
    form = TaskSetForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            taskset = upload_taskset(data=form.cleaned_data, user=request.user)
        except CatalogError as exc:
            # On the field it is about: the YAML, or else the items file.
            form.add_error("yaml_file" if isinstance(exc, TaskYamlError) else "file", str(exc))
        else:
            count = f"{taskset.records} item{pluralize(taskset.records)}"
            messages.success(request, f"Added task set {taskset.name} ({count}).")
            return redirect("catalog:tasksets")
    tasksets = tasksets_visible_to(request.user).select_related("team")
    status = 400 if request.method == "POST" else 200
    return render(request, "catalog/tasksets.html", {"form": form, "tasksets": tasksets},
                  status=status)


@require_GET
def taskset_download(request, pk: int):
    taskset = get_object_or_404(tasksets_visible_to(request.user), pk=pk)
    path = taskset.items_path
    if not path.is_file():
        return render(request, "catalog/missing.html", {"what": taskset.name}, status=410)
    return ranged_file_response(request, path, filename=f"{taskset.config.get('task', 'task')}.jsonl",
                                etag=taskset.sha256)


@require_POST
def taskset_delete_view(request, pk: int):
    taskset = get_object_or_404(tasksets_visible_to(request.user), pk=pk)
    taskset_delete(taskset=taskset, user=request.user)
    messages.success(request, f"Deleted task set {taskset.name}.")
    return redirect("catalog:tasksets")
