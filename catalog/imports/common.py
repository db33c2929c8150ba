"""What every import shares: a staging folder under ARTIFACT_ROOT/tmp, streamed copies, and
`register_variant`, which hands the staged folder to catalog.registration.variant_register (the
one place that hashes, creates the rows and renames the folder into place).

On any failure the staged folder and any row created are gone; only a successful import leaves
anything behind.
"""

import errno
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError

from accounts.models import Team
from catalog.models import Model, Variant
from catalog.registration import NewModel, Progress, report, staged_files, variant_register
from catalog.services import CatalogError

CHUNK = 4 * 1024**2


def staging_root() -> Path:
    root = Path(settings.ARTIFACT_ROOT) / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def staging(prefix: str = "import") -> Iterator[Path]:
    """A fresh folder on the artifact filesystem (so the final move is a rename), always removed."""
    path = staging_root() / f"{prefix}-{uuid.uuid4().hex}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def disk_full_is_an_error(what: str) -> Iterator[None]:
    """Turns ENOSPC/EDQUOT while writing into ARTIFACT_ROOT into a CatalogError (a clear 4xx or a
    failed job, not a 500). Callers write inside a staging folder that is removed on failure."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        free = shutil.disk_usage(settings.ARTIFACT_ROOT).free
        raise CatalogError(f"the artifact disk is full: {what} stopped with {exc.strerror} "
                           f"({free / 2**20:.0f} MiB free under ARTIFACT_ROOT)") from None


def copy_streamed(src: Path, dest: Path) -> None:
    """Copies into a new file inside the staging folder, in the kernel (shutil.copyfile uses
    sendfile on Linux: no Python-level chunk loop)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        raise FileExistsError(f"{dest} exists already")
    with disk_full_is_an_error(f"copying {src.name}"):
        shutil.copyfile(src, dest)


def place(src: Path, dest: Path, *, consume: bool) -> None:
    """Moves (when the source is ours to consume, e.g. an upload's temporary file) or copies;
    a move across filesystems is a copy and may fill the disk as well."""
    if consume:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with disk_full_is_an_error(f"moving {src.name}"):
            shutil.move(str(src), str(dest))
    else:
        copy_streamed(src, dest)


@dataclass
class NewVariant:
    """Everything an import learned about what it staged."""

    format: str
    quant_type: str = ""
    param_count: int | None = None
    weight_bytes: int | None = None
    name: str = ""
    config: dict = field(default_factory=dict)
    architecture: str = ""
    license: str = ""
    model_card: str = ""
    tags: list = field(default_factory=list)
    source: str = ""
    params: dict = field(default_factory=dict)
    tool_versions: dict = field(default_factory=dict)


def register_variant(*, team_id: int, user_id: int | None, staged: Path, info: NewVariant,
                     model_id: int | None = None, parent_id: int | None = None,
                     progress: Progress | None = None) -> Variant:
    """Registers what an import staged through catalog.registration.variant_register: a new
    Model from `info` (unless `model_id` names one of the team's models), the Variant and its
    Files, the folder renamed to ARTIFACT_ROOT/variants/<id>. The staged folder is consumed."""
    files = staged_files(staged, progress, 0.8, 0.98)
    if not files:
        raise CatalogError("the import produced no files")
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise CatalogError(f"team {team_id} does not exist")
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    model: Model | NewModel
    if model_id is not None:
        found = Model.objects.filter(pk=model_id, team=team).first()
        if found is None:
            raise CatalogError(f"model {model_id} is not in team {team.name}")
        model = found
    else:
        model = NewModel(team=team, name=info.name, config=info.config,
                         architecture=info.architecture, param_count=info.param_count,
                         license=info.license, model_card=info.model_card, tags=info.tags,
                         source=info.source)
    try:
        variant = variant_register(
            staged=staged, model=model, format=info.format, quant_type=info.quant_type,
            parent_id=parent_id, params=info.params, tool_versions=info.tool_versions,
            created_by=user, weight_bytes=info.weight_bytes, param_count=info.param_count,
            files=files)
    except IntegrityError as exc:
        raise CatalogError(f"the catalog refused the import: {exc}") from None
    report(progress, 1.0, "done")
    return variant
