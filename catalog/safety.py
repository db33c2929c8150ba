"""Checks that run on uploaded or downloaded files before anything else opens them.

Nothing here unpickles, imports or executes anything from a file: pickle-based weights are refused
by name, configs that need remote code are refused, and safetensors headers are parsed in pure
Python with bounds checks before a native library maps the file.
"""

import json
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from catalog.services import CatalogError

# torch.save / pickle containers: loading any of them can run arbitrary code.
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz"}
# Code shipped next to weights is what trust_remote_code would import; never accepted.
CODE_SUFFIXES = {".py", ".pyc", ".so", ".dll", ".dylib", ".sh"}

SAFETENSORS_MAX_HEADER = 100 * 1024**2
# Bytes per element of each safetensors dtype (safetensors/src/tensor.rs, Dtype::size).
SAFETENSORS_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}


def refuse_unsafe_name(name: str) -> None:
    """Raises CatalogError for pickle weights and code files, named so the user knows why."""
    suffix = Path(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise CatalogError(
            f"{name}: pickle-based weights ({suffix}) are refused because loading them can run "
            "arbitrary code; convert the model to .safetensors (or GGUF) and upload that"
        )
    if suffix in CODE_SUFFIXES:
        raise CatalogError(
            f"{name}: code files are refused; quantdash never runs a model's own code "
            "(trust_remote_code is always off)"
        )


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


@dataclass
class SafetensorsHeader:
    tensors: dict[str, dict]  # name -> {"dtype", "shape", "data_offsets"}
    metadata: dict
    data_start: int

    @property
    def param_count(self) -> int:
        return sum(_numel(t["shape"]) for t in self.tensors.values())

    @property
    def data_bytes(self) -> int:
        return sum(t["data_offsets"][1] - t["data_offsets"][0] for t in self.tensors.values())

    def dtype_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.tensors.values():
            counts[t["dtype"]] = counts.get(t["dtype"], 0) + _numel(t["shape"])
        return counts


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    """Parses and checks a .safetensors header (format: github.com/huggingface/safetensors README,
    "Format"): u64 little-endian header length N, N bytes of JSON, then the data section."""
    name = path.name
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise CatalogError(f"{name}: too short to be a safetensors file")
        (n,) = struct.unpack("<Q", raw)
        if n > size - 8:
            raise CatalogError(f"{name}: header length {n} runs past the end of the file ({size} bytes)")
        if n > SAFETENSORS_MAX_HEADER:
            raise CatalogError(f"{name}: header length {n} is over the {SAFETENSORS_MAX_HEADER}-byte limit")
        try:
            header = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError):
            raise CatalogError(f"{name}: header is not valid JSON") from None
    if not isinstance(header, dict):
        raise CatalogError(f"{name}: header is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict):
        raise CatalogError(f"{name}: __metadata__ is not an object")
    data_len = size - 8 - n
    spans = []
    for tname, info in header.items():
        if not isinstance(info, dict):
            raise CatalogError(f"{name}: tensor {tname} is not described by an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in SAFETENSORS_DTYPES:
            raise CatalogError(f"{name}: tensor {tname} has unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise CatalogError(f"{name}: tensor {tname} has an invalid shape {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets)):
            raise CatalogError(f"{name}: tensor {tname} has invalid data_offsets {offsets!r}")
        begin, end = offsets
        if not 0 <= begin <= end <= data_len:
            raise CatalogError(f"{name}: tensor {tname} data_offsets {offsets} fall outside the "
                               f"data section ({data_len} bytes)")
        if _numel(shape) * SAFETENSORS_DTYPES[dtype] != end - begin:
            raise CatalogError(f"{name}: tensor {tname} shape {shape} × {dtype} does not match "
                               f"its {end - begin} bytes")
        spans.append((begin, end, tname))
    spans.sort()
    for (b1, e1, t1), (b2, _e2, t2) in zip(spans, spans[1:]):
        if b2 < e1:
            raise CatalogError(f"{name}: tensors {t1} and {t2} overlap")
    return SafetensorsHeader(header, metadata, 8 + n)


def require_free_disk(*, needed_bytes: int, where: Path | None = None) -> None:
    """Refuses work that would fill the artifact disk (keeps DISK_SPARE_BYTES spare, 1 GiB)."""
    where = Path(where or settings.ARTIFACT_ROOT)
    where.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(where).free
    if needed_bytes + settings.DISK_SPARE_BYTES > free:
        raise CatalogError(
            f"not enough free disk under {where}: {needed_bytes} bytes needed, {free} free"
        )
