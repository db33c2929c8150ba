"""Dataset pages, and staging uploaded files on the artifact filesystem.

The model import page itself submits a job, so it lives above the catalog, in
jobs/views_catalog.py (routed at /jobs/import/; the catalog never imports jobs); it stages the upload with `stage_upload_folder`
here and the import job (jobs/methods/imports.py) picks the folder up."""

import shutil
import uuid
from pathlib import Path

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from catalog.datasets import dataset_delete, dataset_from_hub, dataset_upload
from catalog.downloads import ranged_file_response
from catalog.forms import DatasetForm
from catalog.imports.common import disk_full_is_an_error, place, staging
from formats.archives import is_archive
from catalog.imports.gguf import inspect_gguf
from catalog.imports.hf import inspect_hf_folder
from catalog.safety import refuse_unsafe_name
from catalog.selectors import datasets_visible_to
from catalog.services import CatalogError
from catalog.uploads import capped_upload, uploads_root


def inspect_upload(folder: Path) -> None:
    """Refuses a bad upload before it is queued (the job checks everything again)."""
    files = list(folder.iterdir())
    if len(files) == 1 and files[0].suffix.lower() == ".gguf":
        inspect_gguf(files[0])
    elif not (len(files) == 1 and is_archive(files[0].name)):
        inspect_hf_folder(folder)


def stage_uploads(files, folder: Path) -> list[Path]:
    """Moves uploaded temporary files into `folder` under their own (base) names."""
    out = []
    for f in files:
        name = Path(f.name or "").name
        if not name or name.startswith("."):
            raise CatalogError(f"{f.name!r} is not an acceptable file name")
        refuse_unsafe_name(name)
        target = folder / name
        if target.exists():
            raise CatalogError(f"two uploaded files are named {name}")
        if hasattr(f, "temporary_file_path"):
            place(Path(f.temporary_file_path()), target, consume=True)
        else:
            with disk_full_is_an_error(f"saving {name}"), open(target, "xb") as out_file:
                for chunk in f.chunks():
                    out_file.write(chunk)
        out.append(target)
    return out


def stage_upload_folder(files) -> Path:
    """Moves the uploads into ARTIFACT_ROOT/uploads/<random>/, where the import job (on any node
    sharing the artifact filesystem) picks them up; the job removes the folder when it ends."""
    folder = uploads_root() / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        stage_uploads(files, folder)
        inspect_upload(folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


@capped_upload
def dataset_list(request):
    form = DatasetForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data["file"]:
                upload = data["file"]
                with staging("upload") as folder:
                    [path] = stage_uploads([upload], folder)
                    dataset = dataset_upload(team_id=data["team"], user_id=request.user.pk,
                                             path=str(path), name=data["name"], consume=True)
            else:
                dataset = dataset_from_hub(team_id=data["team"], user_id=request.user.pk,
                                           repo_id=data["hub_id"], name=data["name"])
        except CatalogError as exc:
            # On the field it is about: shown once, beside the file or the Hub id.
            form.add_error("file" if data["file"] else "hub_id", str(exc))
        else:
            messages.success(request, f"Added dataset {dataset.name}.")
            return redirect("catalog:datasets")
    datasets = datasets_visible_to(request.user).select_related("team")
    status = 400 if request.method == "POST" else 200
    return render(request, "catalog/datasets.html", {"form": form, "datasets": datasets},
                  status=status)


@require_GET
def dataset_download(request, pk: int):
    dataset = get_object_or_404(datasets_visible_to(request.user), pk=pk)
    path = dataset.absolute_path
    if path is None or not path.is_file():
        return render(request, "catalog/missing.html", {"what": dataset.name}, status=410)
    return ranged_file_response(request, path, filename=path.name, etag=dataset.sha256)


@require_POST
def dataset_delete_view(request, pk: int):
    dataset = get_object_or_404(datasets_visible_to(request.user), pk=pk)
    dataset_delete(dataset=dataset, user=request.user)
    messages.success(request, f"Deleted dataset {dataset.name}.")
    return redirect("catalog:datasets")
