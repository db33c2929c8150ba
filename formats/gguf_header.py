"""A bounds-checked reader for the header of a GGUF file, in pure Python.

It runs before any native library opens an uploaded file, so a hostile header (huge counts or
string lengths, offsets past the end, bad alignment) is refused with a clear message instead of
crashing or exhausting memory in the web process. Layout per the GGUF spec
(ggml/docs/gguf.md in llama.cpp): magic "GGUF", u32 version, u64 tensor count, u64 metadata count,
the key/value pairs, the tensor infos, then tensor data at the next multiple of general.alignment.
Each tensor's end (data start + offset + its bytes, from the ggml type's block size and bytes per
block in the `gguf` package's GGML_QUANT_SIZES) must lie inside the file.
"""

import math
import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from formats import FormatError

MAX_HEADER_BYTES = 256 * 1024**2
MAX_KV = 65_536
MAX_TENSORS = 262_144
MAX_KEY_LEN = 65_536
MAX_STRING_LEN = 16 * 1024**2
MAX_ARRAY_LEN = 16 * 1024**2
MAX_DIMS = 4
KEEP_ARRAY_ITEMS = 256  # longer arrays (token lists) are summarised by their length

_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
_KNOWN_TYPES = {t.value for t in GGML_QUANT_SIZES}


class GGUFError(FormatError):
    """The file is not a well-formed GGUF file; the message says what is wrong."""


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int

    @property
    def nbytes(self) -> int:
        """Bytes of tensor data: elements / block size × bytes per block (ggml_nbytes)."""
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(self.ggml_type)]
        return math.prod(self.shape) // block * type_size


@dataclass
class GGUFHeader:
    version: int
    metadata: dict
    tensors: list[TensorInfo]
    data_offset: int
    array_lengths: dict[str, int] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))


class _Reader:
    def __init__(self, f: BinaryIO, file_size: int):
        self.f = f
        self.file_size = file_size
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > min(self.file_size, MAX_HEADER_BYTES):
            raise GGUFError(f"header runs past the end of the file at byte {self.pos} (+{n})")
        data = self.f.read(n)
        if len(data) != n:
            raise GGUFError(f"file truncated at byte {self.pos}")
        self.pos += n
        return data

    def scalar(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self, limit: int, what: str) -> str:
        length = self.scalar("<Q")
        if length > limit:
            raise GGUFError(f"{what} length {length} is over the limit of {limit}")
        return self.take(length).decode("utf-8", errors="replace")


def _value(r: _Reader, vtype: int, key: str, lengths: dict[str, int]):
    if vtype in _SCALARS:
        return r.scalar(_SCALARS[vtype])
    if vtype == _STRING:
        return r.string(MAX_STRING_LEN, f"value of {key}")
    if vtype == _ARRAY:
        item_type = r.scalar("<I")
        count = r.scalar("<Q")
        if count > MAX_ARRAY_LEN:
            raise GGUFError(f"array {key} has {count} items, over the limit of {MAX_ARRAY_LEN}")
        if item_type == _ARRAY:
            raise GGUFError(f"array {key} nests arrays, which this reader refuses")
        if item_type not in _SCALARS and item_type != _STRING:
            raise GGUFError(f"array {key} has unknown item type {item_type}")
        lengths[key] = count
        if item_type in _SCALARS and count > KEEP_ARRAY_ITEMS:
            r.take(struct.calcsize(_SCALARS[item_type]) * count)  # bounds-checked skip
            return None
        items = [_value(r, item_type, key, lengths) for _ in range(count)]
        return items if count <= KEEP_ARRAY_ITEMS else None
    raise GGUFError(f"metadata {key} has unknown value type {vtype}")


def read_gguf_header(f: BinaryIO, file_size: int) -> GGUFHeader:
    r = _Reader(f, file_size)
    if r.take(4) != b"GGUF":
        raise GGUFError("not a GGUF file (bad magic)")
    version = r.scalar("<I")
    if version not in (2, 3):
        raise GGUFError(f"unsupported GGUF version {version}")
    n_tensors = r.scalar("<Q")
    n_kv = r.scalar("<Q")
    if n_tensors > MAX_TENSORS:
        raise GGUFError(f"tensor count {n_tensors} is over the limit of {MAX_TENSORS}")
    if n_kv > MAX_KV:
        raise GGUFError(f"metadata count {n_kv} is over the limit of {MAX_KV}")

    metadata: dict = {}
    lengths: dict[str, int] = {}
    for _ in range(n_kv):
        key = r.string(MAX_KEY_LEN, "metadata key")
        vtype = r.scalar("<I")
        value = _value(r, vtype, key, lengths)
        if value is not None:
            metadata[key] = value

    alignment = metadata.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1) or alignment > 1 << 20:
        raise GGUFError(f"general.alignment {alignment!r} is not a power of two up to 1 MiB")

    tensors = []
    for _ in range(n_tensors):
        name = r.string(MAX_KEY_LEN, "tensor name")
        n_dims = r.scalar("<I")
        if not 1 <= n_dims <= MAX_DIMS:
            raise GGUFError(f"tensor {name} has {n_dims} dimensions (1 to {MAX_DIMS} allowed)")
        shape = tuple(r.scalar("<Q") for _ in range(n_dims))
        if any(d == 0 or d > 1 << 40 for d in shape):
            raise GGUFError(f"tensor {name} has an impossible shape {shape}")
        ggml_type = r.scalar("<I")
        if ggml_type not in _KNOWN_TYPES:
            raise GGUFError(f"tensor {name} has unknown ggml type {ggml_type}")
        block = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)][0]
        if shape[0] % block:
            raise GGUFError(f"tensor {name} rows of {shape[0]} are not a multiple of its type's "
                            f"block of {block}")
        offset = r.scalar("<Q")
        if offset % alignment:
            raise GGUFError(f"tensor {name} offset {offset} is not aligned to {alignment}")
        tensors.append(TensorInfo(name, shape, ggml_type, offset))

    data_offset = (r.pos + alignment - 1) // alignment * alignment
    for t in tensors:
        if data_offset + t.offset >= file_size:
            raise GGUFError(f"tensor {t.name} starts past the end of the file")
        end = data_offset + t.offset + t.nbytes
        if end > file_size:
            raise GGUFError(f"tensor {t.name} ends at byte {end}, past the end of the file "
                            f"({file_size} bytes): the file is truncated")
    return GGUFHeader(version, metadata, tensors, data_offset, lengths)


def read_gguf_header_from_path(path) -> GGUFHeader:
    with open(path, "rb") as f:
        return read_gguf_header(f, os.fstat(f.fileno()).st_size)
