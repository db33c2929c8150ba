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


def test_llama_tools_are_the_same_portable_build():
    """llama-perplexity / llama-imatrix / llama-quantize (jobs/llama_tools.py) come from the same
    sdist and flags: the tool's own system_info line lists AVX2/FMA/F16C and nothing newer."""
    import re
    import subprocess

    from catalog.services import demo_model_path
    from jobs import llama_tools
    from tests.support.processes import WIKITEXT

    gguf = str(demo_model_path())
    out = subprocess.run([str(llama_tools.tool("llama-perplexity")), "-m", gguf, "-f",
                          str(WIKITEXT / "test.txt"), "-c", "64", "--chunks", "1", "-t", "1"],
                         capture_output=True, text=True, timeout=120)
    line = next(x for x in (out.stdout + out.stderr).splitlines() if "system_info" in x)
    found = dict(re.findall(r"(\w+) = (\d+)", line))
    assert found["AVX2"] == found["FMA"] == found["F16C"] == "1", line
    assert not [k for k, v in found.items() if k.startswith(("AVX512", "AMX", "AVX_VNNI")) and v == "1"], line


def test_makefile_and_images_put_the_tools_where_jobs_look():
    from pathlib import Path

    from jobs import llama_tools

    root = Path(__file__).resolve().parents[2]
    make = (root / "Makefile").read_text()
    assert ("LLAMA_TOOLS_DIR := $(HOME)/.cache/quantdash/llama-tools-$(LLAMA_CPP_VERSION)-x86-64-avx2-bench"
            in make)
    assert f"LLAMA_CPP_VERSION := {llama_tools.LLAMA_CPP_VERSION}" in make
    assert llama_tools.DEFAULT_DIR == (Path.home() / ".cache/quantdash"
                                       / f"llama-tools-{llama_tools.LLAMA_CPP_VERSION}-x86-64-avx2-bench/bin")
    script = (root / "docker/llama-converter.sh").read_text()
    assert '"$VIRTUAL_ENV/opt/llama.cpp/bin/"' in script
    for name in ("Dockerfile", "Dockerfile.gpu"):
        assert "QUANTDASH_LLAMA_TOOLS_DIR=/app/.venv/opt/llama.cpp/bin" in (root / "docker" / name).read_text()
