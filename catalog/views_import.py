"""Import and dataset pages. The imports run synchronously here (progress=None) until the job
layer runs them on workers; they take the same JSON-able arguments either way."""

import shutil
from pathlib import Path

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from catalog.archives import is_archive
from catalog.datasets import dataset_delete, dataset_from_hub, dataset_upload
from catalog.downloads import ranged_file_response
from catalog.forms import DatasetForm, ModelImportForm
from catalog.imports import (convert_gguf_to_hf, import_archive, import_gguf_file,
                             import_hf_folder, import_hub, import_server_path)
from catalog.imports.common import staging
from catalog.models import Variant
from catalog.safety import refuse_unsafe_name
from catalog.selectors import datasets_visible_to
from catalog.services import CatalogError
from catalog.uploads import capped_upload


def _stage_uploads(files, folder: Path) -> list[Path]:
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
            shutil.move(f.temporary_file_path(), target)
        else:
            with open(target, "xb") as out_file:
                for chunk in f.chunks():
                    out_file.write(chunk)
        out.append(target)
    return out


def _import_uploads(files, *, team_id: int, user_id: int, name: str) -> Variant:
    with staging("upload") as folder:
        staged = _stage_uploads(files, folder)
        common = dict(team_id=team_id, user_id=user_id, name=name)
        if len(staged) == 1 and staged[0].suffix.lower() == ".gguf":
            return import_gguf_file(path=str(staged[0]), consume=True, **common)
        if len(staged) == 1 and is_archive(staged[0].name):
            return import_archive(archive=str(staged[0]), **common)
        return import_hf_folder(folder=str(folder), consume=True, **common)


@capped_upload
def model_import(request):
    form = ModelImportForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        common = dict(team_id=data["team"], user_id=request.user.pk, name=data["name"])
        try:
            if data["source"] == "upload":
                variant = _import_uploads(data["files"], **common)
            elif data["source"] == "hub":
                variant = import_hub(repo_id=data["repo_id"], revision=data["revision"] or "main",
                                     **common)
            else:
                variant = import_server_path(path=data["server_path"], **common)
            if data["convert_to_hf"] and variant.format == Variant.Format.GGUF:
                convert_gguf_to_hf(variant_id=variant.pk, user_id=request.user.pk)
        except CatalogError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Imported {variant.model.name} ({variant.label}).")
            return redirect("catalog:model", variant.model_id)
    status = 400 if request.method == "POST" else 200
    return render(request, "catalog/import.html", {"form": form}, status=status)


@capped_upload
def dataset_list(request):
    form = DatasetForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data["file"]:
                upload = data["file"]
                with staging("upload") as folder:
                    [path] = _stage_uploads([upload], folder)
                    dataset = dataset_upload(team_id=data["team"], user_id=request.user.pk,
                                             path=str(path), name=data["name"], consume=True)
            else:
                dataset = dataset_from_hub(team_id=data["team"], user_id=request.user.pk,
                                           repo_id=data["hub_id"], name=data["name"])
        except CatalogError as exc:
            form.add_error(None, str(exc))
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
