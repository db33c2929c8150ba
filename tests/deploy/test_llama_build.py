"""The installed llama.cpp is the portable build the Makefile asks for, not one tuned to this CPU.

A -march=native wheel uses whatever the build machine has (AVX-512, AMX); reused from a shared
cache on a machine without them, the first decode dies with 'Illegal instruction'.
"""
import platform

import llama_cpp
import pytest

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 build flags")


def features():
    info = llama_cpp.llama_print_system_info().decode()
    return {k.strip(): v.strip() for k, v in (p.split("=") for p in info.split("|") if "=" in p)}


def test_llama_cpp_uses_avx2_and_nothing_newer():
    found = features()
    assert found["AVX2"] == found["FMA"] == found["F16C"] == "1"
    newer = {k: v for k, v in found.items() if k.startswith(("AVX512", "AMX", "AVX_VNNI")) and v == "1"}
    assert newer == {}, f"llama.cpp was built for this CPU ({newer}); rebuild with the Makefile's LLAMA_CMAKE_ARGS"
