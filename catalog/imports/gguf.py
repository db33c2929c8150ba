"""Imports of a single .gguf file, and the GGUF -> HF safetensors conversion."""

from pathlib import Path

from formats.gguf_header import GGUFError, read_gguf_header_from_path
from catalog.imports.common import (NewVariant, Progress, place, register_variant, report,
                                    staging)
from catalog.models import Variant
from catalog.safety import require_free_disk
from catalog.services import GGUF_FILE_TYPES, CatalogError, config_from_gguf, gguf_param_count



def inspect_gguf(path: Path) -> NewVariant:
    """Reads name, architecture, hyperparameters, parameter count and quant type from the header
    (bounds-checked, pure Python) — the file is not opened by any native library."""
    try:
        header = read_gguf_header_from_path(path)
    except GGUFError as exc:
        raise CatalogError(f"{path.name} is not a valid GGUF file: {exc}") from None
    if not header.tensors:
        raise CatalogError(f"{path.name} has no tensors")
    meta = header.metadata
    file_type = meta.get("general.file_type")
    return NewVariant(
        format=Variant.Format.GGUF,
        quant_type=GGUF_FILE_TYPES.get(file_type, f"type {file_type}" if file_type is not None else ""),
        param_count=gguf_param_count(header),
        weight_bytes=path.stat().st_size,
        name=str(meta.get("general.name") or path.stem),
        config=config_from_gguf(header),
        architecture=header.architecture,
        license=str(meta.get("general.license", "")),
        model_card=str(meta.get("general.description", "")),
        tags=[t for t in [header.architecture] if t],
        params={"gguf_version": header.version, "file": path.name},
    )


def import_gguf_file(*, team_id: int, user_id: int | None, path: str, name: str = "",
                     model_id: int | None = None, parent_id: int | None = None,
                     consume: bool = False, source: str = "upload",
                     progress: Progress | None = None) -> Variant:
    """Imports one .gguf file as a gguf Variant (of a new model, or of `model_id`)."""
    src = Path(path)
    if src.suffix.lower() != ".gguf":
        raise CatalogError(f"{src.name}: a GGUF file must end in .gguf")
    inspect_gguf(src)  # fail before copying anything
    if not consume:
        require_free_disk(needed_bytes=src.stat().st_size)
    report(progress, 0.0, "copying")
    with staging() as staged:
        target = staged / src.name
        place(src, target, consume=consume)
        info = inspect_gguf(target)  # the staged copy is what gets registered
        info.name = name or info.name
        info.source = source
        report(progress, 0.7, "checked")
        return register_variant(team_id=team_id, user_id=user_id, staged=staged, info=info,
                                model_id=model_id, parent_id=parent_id, progress=progress)
