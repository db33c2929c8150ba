"""A bounds-checked reader for the header of a .safetensors file, in pure Python.

It runs before a native library maps an uploaded or produced file: every tensor's dtype, shape and
data_offsets are checked against the data section and each other (no overlaps), so a hostile header
is refused with a clear message. The format: github.com/huggingface/safetensors README, "Format".
"""

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

from formats import FormatError

SAFETENSORS_MAX_HEADER = 100 * 1024**2
# Bytes per element of each safetensors dtype (safetensors/src/tensor.rs, Dtype::size).
SAFETENSORS_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}


@dataclass
class SafetensorsHeader:
    tensors: dict[str, dict]  # name -> {"dtype", "shape", "data_offsets"}
    metadata: dict
    data_start: int

    @property
    def param_count(self) -> int:
        return sum(math.prod(t["shape"]) for t in self.tensors.values())

    @property
    def data_bytes(self) -> int:
        return sum(t["data_offsets"][1] - t["data_offsets"][0] for t in self.tensors.values())

    def dtype_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.tensors.values():
            counts[t["dtype"]] = counts.get(t["dtype"], 0) + math.prod(t["shape"])
        return counts


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    """Parses and checks a .safetensors header (format: github.com/huggingface/safetensors README,
    "Format"): u64 little-endian header length N, N bytes of JSON, then the data section."""
    name = path.name
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise FormatError(f"{name}: too short to be a safetensors file")
        (n,) = struct.unpack("<Q", raw)
        if n > size - 8:
            raise FormatError(f"{name}: header length {n} runs past the end of the file ({size} bytes)")
        if n > SAFETENSORS_MAX_HEADER:
            raise FormatError(f"{name}: header length {n} is over the {SAFETENSORS_MAX_HEADER}-byte limit")
        try:
            header = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError):
            raise FormatError(f"{name}: header is not valid JSON") from None
    if not isinstance(header, dict):
        raise FormatError(f"{name}: header is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict):
        raise FormatError(f"{name}: __metadata__ is not an object")
    data_len = size - 8 - n
    spans = []
    for tname, info in header.items():
        if not isinstance(info, dict):
            raise FormatError(f"{name}: tensor {tname} is not described by an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in SAFETENSORS_DTYPES:
            raise FormatError(f"{name}: tensor {tname} has unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise FormatError(f"{name}: tensor {tname} has an invalid shape {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets)):
            raise FormatError(f"{name}: tensor {tname} has invalid data_offsets {offsets!r}")
        begin, end = offsets
        if not 0 <= begin <= end <= data_len:
            raise FormatError(f"{name}: tensor {tname} data_offsets {offsets} fall outside the "
                               f"data section ({data_len} bytes)")
        if math.prod(shape) * SAFETENSORS_DTYPES[dtype] != end - begin:
            raise FormatError(f"{name}: tensor {tname} shape {shape} × {dtype} does not match "
                               f"its {end - begin} bytes")
        spans.append((begin, end, tname))
    spans.sort()
    for (b1, e1, t1), (b2, _e2, t2) in zip(spans, spans[1:]):
        if b2 < e1:
            raise FormatError(f"{name}: tensors {t1} and {t2} overlap")
    return SafetensorsHeader(header, metadata, 8 + n)
