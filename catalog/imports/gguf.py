"""Imports of a single .gguf file, and the GGUF -> HF safetensors conversion."""

from pathlib import Path

from catalog.dequantize import DTYPES, dequantize_gguf
from catalog.gguf_header import GGUFError, read_gguf_header_from_path
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


def convert_gguf_to_hf(*, variant_id: int, user_id: int | None, dtype: str = "float16",
                       progress: Progress | None = None) -> Variant:
    """Makes an `hf` variant (dequantized safetensors in `dtype`) whose parent is the GGUF
    variant `variant_id`. Loads the whole model into memory: run it on a worker."""
    from catalog.imports.hf import inspect_hf_folder

    if dtype not in DTYPES:
        raise CatalogError(f"dtype must be one of {', '.join(DTYPES)}")
    source = Variant.objects.select_related("model").filter(pk=variant_id).first()
    if source is None or source.format != Variant.Format.GGUF:
        raise CatalogError(f"variant {variant_id} is not a GGUF variant")
    ggufs = [f for f in source.files.all() if f.path.endswith(".gguf")]
    if len(ggufs) != 1:
        raise CatalogError(f"variant {variant_id} does not have exactly one .gguf file")
    arch = source.model.architecture
    if arch not in {"llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "gemma3"}:
        raise CatalogError(f"transformers cannot dequantize GGUF architecture {arch!r}")
    require_free_disk(needed_bytes=(source.model.param_count or 0) * 4)
    report(progress, 0.05, "loading")
    with staging("convert") as staged:
        try:
            versions = dequantize_gguf(ggufs[0].absolute_path, staged, dtype)
        except (ValueError, OSError, RuntimeError, KeyError) as exc:
            raise CatalogError(f"transformers could not convert this GGUF: {exc}") from None
        report(progress, 0.7, "saved")
        info = inspect_hf_folder(staged)
        info.quant_type = DTYPES[dtype]
        info.params = {"from": "gguf", "dequantized_from": source.quant_type, "dtype": dtype}
        info.tool_versions = versions
        return register_variant(team_id=source.model.team_id, user_id=user_id, staged=staged,
                                info=info, model_id=source.model_id, parent_id=source.pk,
                                progress=progress)
