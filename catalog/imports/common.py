"""What every import shares: a staging folder under ARTIFACT_ROOT/tmp, streamed copies and
hashes, and one transaction that creates the rows and renames the staged folder into place.

On any failure the staged folder and any row created are gone; only a successful import leaves
anything behind.
"""

import errno
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from accounts.models import Team
from catalog.models import File, Model, Variant
from catalog.services import CatalogError, move_into_place
from formats.digest import file_sha256

Progress = Callable[[float, str], None]
CHUNK = 4 * 1024**2


def report(progress: Progress | None, fraction: float, stage: str) -> None:
    if progress is not None:
        progress(max(0.0, min(1.0, fraction)), stage)


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
    dest.parent.mkdir(parents=True, exist_ok=True)
    with disk_full_is_an_error(f"copying {src.name}"):
        with open(src, "rb") as fin, open(dest, "xb") as fout:
            while chunk := fin.read(CHUNK):
                fout.write(chunk)


def place(src: Path, dest: Path, *, consume: bool) -> None:
    """Moves (when the source is ours to consume, e.g. an upload's temporary file) or copies;
    a move across filesystems is a copy and may fill the disk as well."""
    if consume:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with disk_full_is_an_error(f"moving {src.name}"):
            shutil.move(str(src), str(dest))
    else:
        copy_streamed(src, dest)


def hash_files(folder: Path, progress: Progress | None, start: float, end: float) -> list[dict]:
    paths = sorted(p for p in folder.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in paths) or 1
    done, out = 0, []
    def read(n: int) -> None:
        nonlocal done
        done += n
        report(progress, start + (end - start) * done / total, "hashing")

    for p in paths:
        out.append({"path": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size,
                    "sha256": file_sha256(p, read)})
    return out


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
    """Hashes the staged folder, then in one transaction creates the Model (unless `model_id`
    names one of the team's models), the Variant and its Files, and renames the folder to
    ARTIFACT_ROOT/variants/<id>. The staged folder is consumed."""
    files = hash_files(staged, progress, 0.8, 0.98)
    if not files:
        raise CatalogError("the import produced no files")
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise CatalogError(f"team {team_id} does not exist")
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    target: Path | None = None
    try:
        with transaction.atomic():
            if model_id is not None:
                model = Model.objects.filter(pk=model_id, team=team).first()
                if model is None:
                    raise CatalogError(f"model {model_id} is not in team {team.name}")
            else:
                name = info.name.strip() or "model"
                if Model.objects.filter(team=team, name=name).exists():
                    raise CatalogError(f"team {team.name} already has a model named {name!r}; "
                                       "choose another name")
                model = Model.objects.create(
                    team=team, name=name, config=info.config, architecture=info.architecture,
                    param_count=info.param_count, license=info.license[:100],
                    model_card=info.model_card, tags=info.tags, source=info.source[:300],
                    created_by=user,
                )
            if parent_id is not None and not Variant.objects.filter(pk=parent_id, model=model).exists():
                raise CatalogError(f"parent variant {parent_id} is not a variant of {model.name}")
            params = model.param_count or info.param_count
            weight_bytes = info.weight_bytes or sum(f["bytes"] for f in files)
            variant = Variant.objects.create(
                model=model, parent_id=parent_id, format=info.format, quant_type=info.quant_type,
                bits_per_weight=round(weight_bytes * 8 / params, 3) if params else None,
                params=info.params, tool_versions=info.tool_versions, created_by=user,
            )
            File.objects.bulk_create(File(variant=variant, **f) for f in files)
            move_into_place(staged, variant.directory)
            target = variant.directory
    except IntegrityError as exc:
        if target is not None:
            shutil.rmtree(target, ignore_errors=True)
        raise CatalogError(f"the catalog refused the import: {exc}") from None
    except BaseException:
        if target is not None:
            shutil.rmtree(target, ignore_errors=True)
        raise
    report(progress, 1.0, "done")
    return variant
