"""The one way a variant enters the catalog: `variant_register`.

Imports (catalog/imports) and job outputs (jobs/outputs.py) both stage a folder under
ARTIFACT_ROOT, then call `variant_register`, which hashes the folder's files, creates the Variant
and its Files (and, for an import of a new model, the Model) and renames the folder to
ARTIFACT_ROOT/variants/<id>. On any failure the rows roll back and the moved folder is removed.

Several variants that must appear together (a job's outputs, parents named by key) are
registered inside `registering()`: one transaction, and every folder moved so far is removed
when anything in it fails, so either all of them exist or none does.
"""

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from accounts.models import Team
from catalog.models import File, Model, Variant
from catalog.services import CatalogError, bits_per_weight, move_into_place
from formats.digest import file_sha256

Progress = Callable[[float, str], None]


def report(progress: Progress | None, fraction: float, stage: str) -> None:
    if progress is not None:
        progress(max(0.0, min(1.0, fraction)), stage)


def staged_files(folder: Path, progress: Progress | None = None, start: float = 0.0,
                 end: float = 1.0) -> list[dict]:
    """[{path, bytes, sha256}] for every regular file below `folder` (links are skipped: they
    are not registered), hashed with formats.digest.file_sha256; progress runs start→end."""
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    total = sum(p.stat().st_size for p in paths) or 1
    done = 0

    def read(n: int) -> None:
        nonlocal done
        done += n
        report(progress, start + (end - start) * done / total, "hashing")

    return [{"path": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size,
             "sha256": file_sha256(p, read if progress is not None else None)} for p in paths]


@dataclass
class NewModel:
    """A model to create together with its first variant (an import of a new model)."""

    team: Team
    name: str
    config: dict = field(default_factory=dict)
    architecture: str = ""
    param_count: int | None = None
    license: str = ""
    model_card: str = ""
    tags: list = field(default_factory=list)
    source: str = ""

    def create(self, created_by) -> Model:
        name = self.name.strip() or "model"
        if Model.objects.filter(team=self.team, name=name).exists():
            raise CatalogError(f"team {self.team.name} already has a model named {name!r}; "
                               "choose another name")
        return Model.objects.create(
            team=self.team, name=name, config=self.config, architecture=self.architecture,
            param_count=self.param_count, license=self.license[:100], model_card=self.model_card,
            tags=self.tags, source=self.source[:300], created_by=created_by,
        )


@contextmanager
def registering() -> Iterator[list[Path]]:
    """One transaction for several `variant_register` calls, which are given the yielded list as
    `moved=`: if anything inside fails, the rows roll back and every folder those calls moved
    into place is removed."""
    moved: list[Path] = []
    try:
        with transaction.atomic():
            yield moved
    except BaseException:
        for directory in moved:
            shutil.rmtree(directory, ignore_errors=True)
        raise


def variant_register(*, staged: Path, model: Model | NewModel, format: str, quant_type: str = "",
                     parent_id: int | None = None, params: dict | None = None,
                     tool_versions: dict | None = None, created_by=None,
                     weight_bytes: int | None = None, param_count: int | None = None,
                     measured_bits_per_weight: float | None = None,
                     files: list[dict] | None = None, moved: list[Path] | None = None,
                     progress: Progress | None = None) -> Variant:
    """Registers the staged folder as a Variant of `model` (created first when it is a NewModel)
    and renames the folder to ARTIFACT_ROOT/variants/<id>; the staged folder is consumed.

    `files` are the folder's staged_files() when the caller hashed them already (a job hashes
    all outputs before its transaction); otherwise they are hashed here (progress 0.8→0.98).
    Bits per weight: `measured_bits_per_weight` when the producer measured it against the
    original weight count (a job method, which alone knows that count for packed checkpoints);
    otherwise bits_per_weight() of `weight_bytes` (default: every file's bytes) over the model's
    parameter count (else `param_count`). Inside registering(), pass its list as `moved` so a
    later failure removes this folder too. Refusals raise CatalogError; nothing is left behind
    on any failure."""
    if files is None:
        files = staged_files(staged, progress, 0.8, 0.98)
    if not files:
        raise CatalogError(f"{staged.name} holds no files to register")
    target: Path | None = None
    try:
        with transaction.atomic():
            if isinstance(model, NewModel):
                model = model.create(created_by)
            if parent_id is not None and not Variant.objects.filter(pk=parent_id, model=model).exists():
                raise CatalogError(f"parent variant {parent_id} is not a variant of {model.name}")
            if measured_bits_per_weight is None:
                measured_bits_per_weight = bits_per_weight(
                    weight_bytes=weight_bytes or sum(f["bytes"] for f in files),
                    param_count=model.param_count or param_count)
            variant = Variant.objects.create(
                model=model, parent_id=parent_id, format=format, quant_type=quant_type,
                bits_per_weight=measured_bits_per_weight, params=params or {},
                tool_versions=tool_versions or {}, created_by=created_by,
            )
            File.objects.bulk_create(File(variant=variant, **f) for f in files)
            move_into_place(staged, variant.directory)
            target = variant.directory
            if moved is not None:
                moved.append(target)
    except BaseException:
        if target is not None:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return variant
