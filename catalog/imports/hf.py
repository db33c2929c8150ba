"""Imports of a Hugging Face model folder (config.json, tokenizer files, *.safetensors shards and
their index), given as a folder or as a .zip/.tar/.tar.gz archive of one."""

import re
from pathlib import Path

from catalog.imports.common import (NewVariant, Progress, place, register_variant, report,
                                    staging)
from catalog.imports.gguf import import_gguf_file
from catalog.safety import (check_config, extract_archive, read_json_file, read_safetensors_header,
                            refuse_unsafe_name, require_free_disk)
from catalog.services import CatalogError
from formats.archives import single_root

INDEX_NAME = "model.safetensors.index.json"


def _files(folder: Path) -> list[Path]:
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            raise CatalogError(f"{p.relative_to(folder)} is a symbolic link; links are refused")
        if p.is_file():
            refuse_unsafe_name(p.name)
            out.append(p)
    return out


def _quantization(config: dict) -> tuple[str, str]:
    """(Variant.format, quant_type) for a config's quantization_config, if any."""
    qc = config.get("quantization_config") or {}
    method = str(qc.get("quant_method", "")).lower()
    if method == "gptq":
        return "gptq", f"{qc.get('bits', 4)}bit"
    if method == "awq":
        return "awq", f"{qc.get('bits', 4)}bit"
    if method == "bitsandbytes":
        return ("bnb-nf4", "nf4") if qc.get("load_in_4bit") else ("bnb-int8", "int8")
    if method:
        raise CatalogError(f"config.json uses quantization method {method!r}, which quantdash "
                           "does not support")
    return "hf", ""


def _model_card(folder: Path) -> tuple[str, str]:
    """(card text, license) from README.md; the license comes from its YAML front matter."""
    readme = folder / "README.md"
    if not readme.is_file():
        return "", ""
    text = readme.read_bytes()[: 256 * 1024].decode("utf-8", errors="replace")
    license = ""
    front = re.match(r"\A---\n(.*?)\n---\n?", text, re.S)
    if front:
        found = re.search(r"^license:\s*(\S+)", front.group(1), re.M)
        license = found.group(1).strip("'\"") if found else ""
        text = text[front.end():]
    return text.strip(), license


def inspect_hf_folder(folder: Path) -> NewVariant:
    """Checks a staged HF folder and reads its metadata without loading any weights."""
    files = _files(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise CatalogError("the model folder has no config.json")
    config = check_config(read_json_file(config_path))
    shards = [p for p in files if p.suffix == ".safetensors"]
    if not shards:
        raise CatalogError("the model folder has no .safetensors weights")
    headers = {p.relative_to(folder).as_posix(): read_safetensors_header(p) for p in shards}
    index_path = folder / INDEX_NAME
    if index_path.is_file():
        index = read_json_file(index_path)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict):
            raise CatalogError(f"{INDEX_NAME} has no weight_map object")
        missing = sorted({str(v) for v in weight_map.values()} - set(headers))
        if missing:
            raise CatalogError(f"{INDEX_NAME} names shards that are missing: {', '.join(missing[:5])}")
    elif len(shards) > 1:
        raise CatalogError(f"several .safetensors shards but no {INDEX_NAME}")
    dtypes: dict[str, int] = {}
    for h in headers.values():
        for dtype, n in h.dtype_counts().items():
            dtypes[dtype] = dtypes.get(dtype, 0) + n
    fmt, quant_type = _quantization(config)
    card, license = _model_card(folder)
    model_type = config["model_type"]
    return NewVariant(
        format=fmt,
        quant_type=quant_type or max(dtypes, key=dtypes.get),
        param_count=sum(h.param_count for h in headers.values()),
        weight_bytes=sum(h.data_bytes for h in headers.values()),
        name=str(config.get("_name_or_path") or "").rstrip("/").split("/")[-1],
        config=config,
        architecture=model_type,
        license=license or str(config.get("license", "")),
        model_card=card,
        tags=[model_type],
        params={"dtypes": dtypes},
        tool_versions={"transformers": str(config.get("transformers_version", ""))},
    )


def _register_folder(*, team_id: int, user_id: int | None, folder: Path, name: str,
                     model_id: int | None, parent_id: int | None, source: str,
                     progress: Progress | None) -> "Variant":  # noqa: F821
    info = inspect_hf_folder(folder)
    info.name = name or info.name or folder.name
    info.source = source
    report(progress, 0.75, "checked")
    return register_variant(team_id=team_id, user_id=user_id, staged=folder, info=info,
                            model_id=model_id, parent_id=parent_id, progress=progress)


def import_hf_folder(*, team_id: int, user_id: int | None, folder: str, name: str = "",
                     model_id: int | None = None, parent_id: int | None = None,
                     consume: bool = False, source: str = "upload",
                     progress: Progress | None = None):
    """Imports the HF model folder at `folder` (files copied, or moved when `consume`).

    Returns the new Variant (format hf, or gptq/awq/bnb-* from quantization_config)."""
    src = Path(folder)
    if not src.is_dir():
        raise CatalogError(f"{folder} is not a folder")
    files = _files(src)  # refuses pickle/code/links before anything is copied
    require_free_disk(needed_bytes=0 if consume else sum(p.stat().st_size for p in files))
    report(progress, 0.0, "copying")
    with staging() as staged:
        for i, p in enumerate(files):
            place(p, staged / p.relative_to(src), consume=consume)
            report(progress, 0.6 * (i + 1) / len(files), "copying")
        return _register_folder(team_id=team_id, user_id=user_id, folder=staged, name=name,
                                model_id=model_id, parent_id=parent_id, source=source,
                                progress=progress)


def import_archive(*, team_id: int, user_id: int | None, archive: str, name: str = "",
                   model_id: int | None = None, parent_id: int | None = None,
                   source: str = "upload", progress: Progress | None = None):
    """Imports a .zip/.tar/.tar.gz of an HF model folder, or of a folder holding one .gguf."""
    path = Path(archive)
    require_free_disk(needed_bytes=path.stat().st_size * 2)
    report(progress, 0.0, "extracting")
    with staging("extract") as staged:
        extract_archive(path, staged / "x")
        root = single_root(staged / "x")
        report(progress, 0.5, "extracted")
        ggufs = list(root.glob("*.gguf"))
        if not (root / "config.json").exists() and len(ggufs) == 1:
            return import_gguf_file(team_id=team_id, user_id=user_id, path=str(ggufs[0]),
                                    name=name, model_id=model_id, parent_id=parent_id,
                                    consume=True, source=source, progress=progress)
        return _register_folder(team_id=team_id, user_id=user_id, folder=root, name=name,
                                model_id=model_id, parent_id=parent_id, source=source,
                                progress=progress)
