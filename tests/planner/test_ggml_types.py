"""ggml block sizes against the `gguf` package (llama.cpp's gguf-py, `GGML_QUANT_SIZES`)."""

import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from planner.estimator.ggml_types import GGML_TYPE_SIZES


@pytest.mark.parametrize("name", sorted(GGML_TYPE_SIZES))
def test_block_size_and_bytes_match_gguf(name):
    assert GGML_TYPE_SIZES[name] == GGML_QUANT_SIZES[GGMLQuantizationType[name]]
