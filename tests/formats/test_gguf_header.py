"""The GGUF header reader checks where each tensor ends, not only where it starts."""

import numpy as np
import pytest
from gguf import GGUFReader, GGUFWriter

from formats import FormatError
from formats.gguf_header import read_gguf_header_from_path


def _write(path):
    writer = GGUFWriter(str(path), "llama")
    writer.add_tensor("a", np.zeros((4, 64), dtype=np.float32))
    writer.add_tensor("b", np.zeros((3, 32), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_tensor_sizes_match_the_gguf_library(tmp_path):
    path = _write(tmp_path / "ok.gguf")
    ours = {t.name: (t.nbytes, t.offset) for t in read_gguf_header_from_path(path).tensors}
    theirs = {t.name: (int(t.n_bytes), int(t.data_offset)) for t in GGUFReader(str(path)).tensors}
    assert {n: b for n, (b, _) in ours.items()} == {n: b for n, (b, _) in theirs.items()} == {"a": 1024, "b": 192}


def test_a_truncated_last_tensor_is_refused(tmp_path):
    path = _write(tmp_path / "cut.gguf")
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 1)  # "b" still starts inside the file; its last byte is gone
    with pytest.raises(FormatError, match=rf"tensor b ends at byte {size}, past the end of the file \({size - 1} bytes\)"):
        read_gguf_header_from_path(path)


def test_an_unknown_tensor_type_is_refused(tmp_path):
    path = _write(tmp_path / "type.gguf")
    data = bytearray(path.read_bytes())
    # tensor info of "a": u64 name length, "a", u32 n_dims, 2 × u64 dims, then the u32 ggml type
    at = data.index(b"\x01\x00\x00\x00\x00\x00\x00\x00a") + 9 + 4 + 16
    data[at:at + 4] = (250).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="tensor a has unknown ggml type 250"):
        read_gguf_header_from_path(path)
