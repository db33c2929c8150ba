"""Checks that run on uploaded or downloaded files before anything else opens them.

Nothing here unpickles, imports or executes anything from a file: pickle-based weights are refused
by name, configs that need remote code are refused, and safetensors headers and archives are
checked by the Django-free readers in formats/ — whose FormatError becomes a CatalogError here, the
message kept, so views show it as a form error.
"""

import json
import shutil
from pathlib import Path

from django.conf import settings

from catalog.services import CatalogError
from formats import FormatError, archives, names, safetensors_header
from formats.safetensors_header import SafetensorsHeader


def refuse_unsafe_name(name: str) -> None:
    try:
        names.refuse_unsafe_name(name)
    except FormatError as exc:
        raise CatalogError(str(exc)) from None


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    try:
        return safetensors_header.read_safetensors_header(path)
    except FormatError as exc:
        raise CatalogError(str(exc)) from None


def extract_archive(archive: Path, dest: Path, *, max_bytes: int | None = None) -> None:
    """formats.archives.extract_archive capped at UPLOAD_MAX_BYTES unless told otherwise."""
    cap = settings.UPLOAD_MAX_BYTES if max_bytes is None else max_bytes
    try:
        archives.extract_archive(archive, dest, max_bytes=cap)
    except FormatError as exc:
        raise CatalogError(str(exc)) from None


def check_config(config: object, *, name: str = "config.json") -> dict:
    """Validates a parsed HF config.json; refuses anything that needs the model's own code."""
    if not isinstance(config, dict):
        raise CatalogError(f"{name} is not a JSON object")
    if "auto_map" in config:
        raise CatalogError(
            f"{name} has an auto_map entry, so the model needs its own Python code "
            "(trust_remote_code); quantdash refuses such models"
        )
    if not isinstance(config.get("model_type", ""), str) or not config.get("model_type"):
        raise CatalogError(f"{name} has no model_type")
    return config


def read_json_file(path: Path, *, max_bytes: int = 16 * 1024**2) -> object:
    size = path.stat().st_size
    if size > max_bytes:
        raise CatalogError(f"{path.name} is {size} bytes, over the {max_bytes}-byte limit for JSON")
    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path.name} is not valid JSON: {exc}") from None


def require_free_disk(*, needed_bytes: int, where: Path | None = None) -> None:
    """Refuses work that would fill the artifact disk (keeps DISK_SPARE_BYTES spare, 1 GiB)."""
    where = Path(where or settings.ARTIFACT_ROOT)
    where.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(where).free
    if needed_bytes + settings.DISK_SPARE_BYTES > free:
        raise CatalogError(
            f"not enough free disk under {where}: {needed_bytes} bytes needed, {free} free"
        )
