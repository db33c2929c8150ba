"""Catalog imports as jobs. Unlike quantizers these run inside the worker process itself (they
copy, hash and register rows through catalog.imports, which needs the database); they are
cancelled through their progress callback, which raises JobCancelled between chunks, and the
catalog's import functions leave no files or rows behind when that happens.

- import-upload: files the web process staged under ARTIFACT_ROOT/uploads/<id>/ (one .gguf, an
  archive, or an HF folder's files). The staged folder is removed when the job ends, whatever
  the outcome.
- import-hub: a Hugging Face Hub repo id and revision (fails fast offline).
- import-path: a file or folder on the server (staff only, checked again by the catalog).
"""

import shutil
from pathlib import Path

from catalog.uploads import uploads_root
from jobs.methods.base import JobError, Method


class ImportMethod(Method):
    kind = "import"
    in_worker = True
    devices = ("cpu", "cuda")
    soft_time_limit = 6 * 3600
    hard_time_limit = 6 * 3600

    def estimate(self, params: dict, variant) -> dict:
        return {"peak_memory_bytes": 512 * 1024**2, "output_bytes": params.get("bytes", 0)}

    def cleanup(self, params: dict) -> None:
        """Runs after the job ends, however it ended."""

    def follow_up(self, *, job, variant) -> None:
        """After success: an optional GGUF -> HF conversion, as its own job."""
        if job.params.get("convert_to_hf") and variant.format == "gguf":
            from jobs.services import job_submit

            job_submit(team=job.team, user=job.submitted_by, method="hf-from-gguf",
                       params={"dtype": "float16"}, input_variant=variant)


class UploadImport(ImportMethod):
    name = "import-upload"

    def validate(self, params: dict, variant) -> dict:
        staged = Path(str(params.get("staged", ""))).resolve()
        if uploads_root().resolve() not in staged.parents or not staged.is_dir():
            raise JobError.field("staged", "not a staged upload folder")
        size = sum(p.stat().st_size for p in staged.rglob("*") if p.is_file())
        return {"staged": str(staged), "name": str(params.get("name", ""))[:200], "bytes": size,
                "convert_to_hf": bool(params.get("convert_to_hf"))}

    def run_in_worker(self, *, job, progress):
        from formats.archives import is_archive
        from catalog.imports import import_archive, import_gguf_file, import_hf_folder

        folder = Path(job.params["staged"])
        files = sorted(p for p in folder.iterdir() if p.is_file())
        common = dict(team_id=job.team_id, user_id=job.submitted_by_id, name=job.params["name"],
                      progress=progress)
        if len(files) == 1 and files[0].suffix.lower() == ".gguf":
            return import_gguf_file(path=str(files[0]), consume=True, **common)
        if len(files) == 1 and is_archive(files[0].name):
            return import_archive(archive=str(files[0]), **common)
        return import_hf_folder(folder=str(folder), consume=True, **common)

    def cleanup(self, params: dict) -> None:
        shutil.rmtree(params["staged"], ignore_errors=True)


class HubImport(ImportMethod):
    name = "import-hub"

    def validate(self, params: dict, variant) -> dict:
        repo_id = str(params.get("repo_id", "")).strip()
        if repo_id.count("/") != 1 or any(not part for part in repo_id.split("/")):
            raise JobError.field("repo_id", "give a repository id like HuggingFaceTB/SmolLM2-135M")
        return {"repo_id": repo_id, "revision": str(params.get("revision") or "main"),
                "name": str(params.get("name", ""))[:200],
                "convert_to_hf": bool(params.get("convert_to_hf"))}

    def run_in_worker(self, *, job, progress):
        from catalog.imports import import_hub

        return import_hub(team_id=job.team_id, user_id=job.submitted_by_id,
                          repo_id=job.params["repo_id"], revision=job.params["revision"],
                          name=job.params["name"], progress=progress)


class PathImport(ImportMethod):
    name = "import-path"

    def validate(self, params: dict, variant) -> dict:
        path = str(params.get("path", ""))
        if not Path(path).is_absolute():
            raise JobError.field("path", "give an absolute path on the server")
        return {"path": path, "name": str(params.get("name", ""))[:200],
                "convert_to_hf": bool(params.get("convert_to_hf"))}

    def run_in_worker(self, *, job, progress):
        from catalog.imports import import_server_path

        return import_server_path(team_id=job.team_id, user_id=job.submitted_by_id,
                                  path=job.params["path"], name=job.params["name"],
                                  progress=progress)


METHODS = {m.name: m for m in (UploadImport(), HubImport(), PathImport())}
