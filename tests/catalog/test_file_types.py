"""GGUF `general.file_type` ids against the `gguf` package's `LlamaFileType` (llama.h `llama_ftype`)."""

import pytest
from gguf import LlamaFileType

from catalog.services import GGUF_FILE_TYPES


@pytest.mark.parametrize("file_type,name", sorted(GGUF_FILE_TYPES.items()))
def test_file_type_id_matches_llama_ftype(file_type, name):
    # llama.h names F32 "ALL_F32" and every other type "MOSTLY_<name>"
    enum_name = "ALL_F32" if name == "F32" else f"MOSTLY_{name}"
    assert LlamaFileType[enum_name] == file_type
