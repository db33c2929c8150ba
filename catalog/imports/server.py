"""Import of a file or folder already on the server (staff only: it reads any path the server
process can read)."""

from pathlib import Path

from django.contrib.auth import get_user_model

from catalog.imports.common import Progress, copy_streamed, staging
from catalog.imports.gguf import import_gguf_file
from catalog.imports.hf import import_archive, import_hf_folder
from catalog.safety import refuse_unsafe_name
from catalog.services import CatalogError
from formats.archives import is_archive


def import_server_path(*, team_id: int, user_id: int, path: str, name: str = "",
                       progress: Progress | None = None):
    """Imports a .gguf file, an archive or an HF model folder at an absolute server path.
    Files are copied (the source is left alone); symlinks inside it are followed."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not (user.is_staff or user.is_superuser):
        raise CatalogError("only staff may import from a path on the server")
    src = Path(path)
    if not src.is_absolute():
        raise CatalogError("the server path must be absolute")
    if not src.exists():
        raise CatalogError(f"{path} does not exist on this server")
    common = dict(team_id=team_id, user_id=user_id, name=name, progress=progress)
    if src.is_dir():
        resolved = src.resolve()
        return _import_resolved_folder(resolved, source=f"path:{src}", **common)
    if src.suffix.lower() == ".gguf":
        return import_gguf_file(path=str(src), source=f"path:{src}", **common)
    if is_archive(src.name):
        return import_archive(archive=str(src), source=f"path:{src}", **common)
    raise CatalogError(f"{src.name}: expected a .gguf file, an archive or a model folder")


def _import_resolved_folder(folder: Path, *, source: str, **common):
    """HF cache snapshots are folders of symlinks into blobs/: copy their targets to a plain
    staging folder first, so the folder import (which refuses links) sees regular files."""
    with staging("path") as plain:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                refuse_unsafe_name(p.name)
                copy_streamed(p.resolve(), plain / p.relative_to(folder))
        return import_hf_folder(folder=str(plain), consume=True, source=source, **common)
