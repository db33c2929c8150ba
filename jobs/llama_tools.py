"""llama.cpp's own tools: the command-line llama-imatrix, llama-quantize, llama-perplexity and
llama-bench, and the HF -> GGUF converter script (convert_hf_to_gguf.py).

They are built by `make install` from the vendor/llama.cpp of the llama-cpp-python sdist this
project pins (the same sources and portable CPU flags as the wheel), once per machine, into
~/.cache/quantdash/llama-tools-<version>-x86-64-avx2/bin; the Docker images put them in
$QUANTDASH_LLAMA_TOOLS_DIR (the GPU image with CUDA). Job methods run them in their child
process: a cancelled job's process group is killed, the tool with it.

`run()` streams the tool's merged stdout/stderr to `on_output` (progress) and puts its last lines
in the error when it fails.

The converter is a Python script, not a binary: `make install` copies it (with the gguf-py it
needs) from the same sdist into the virtualenv's opt/llama.cpp, and `convert_hf()` runs it with
this interpreter. The GGUF and imatrix jobs both start an HF input from its F16 GGUF.

This module imports no Django: job methods import it and run in a Django-free child process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable

# The Makefile and the Dockerfiles pin it; the tools and the converter come from the same sdist.
LLAMA_CPP_VERSION = metadata.version("llama-cpp-python")
DEFAULT_DIR = (Path.home() / ".cache" / "quantdash" / f"llama-tools-{LLAMA_CPP_VERSION}-x86-64-avx2-bench"
               / "bin")
CONVERTER = Path(sys.prefix) / "opt" / "llama.cpp" / "convert_hf_to_gguf.py"
TOOLS = ("llama-bench", "llama-imatrix", "llama-quantize", "llama-perplexity")
# llama-perplexity / llama-imatrix print "[1]17.1234,[2]16.02,..." as chunks finish.
CHUNK_DONE = re.compile(r"\[(\d+)\]\s*-?[0-9.]+(?:e[+-]?\d+)?,")
# "... computing over 8 chunks, n_ctx=256 ..." (both tools)
CHUNK_TOTAL = re.compile(r"over (\d+) chunks")
# llama-quantize: "[  12/ 272]  blk.0.attn_k.weight ..."
TENSOR_DONE = re.compile(r"\[\s*(\d+)/\s*(\d+)\]")


class ToolError(RuntimeError):
    """A tool is missing or exited non-zero; the message says which and why."""


def tools_dir() -> Path:
    return Path(os.environ.get("QUANTDASH_LLAMA_TOOLS_DIR") or DEFAULT_DIR)


def tool(name: str) -> Path:
    if name not in TOOLS:
        raise ValueError(f"unknown llama.cpp tool {name!r}")
    path = tools_dir() / name
    if not os.access(path, os.X_OK):
        raise ToolError(f"{name} is not installed at {path}: `make install` builds llama.cpp's tools "
                        "(or set QUANTDASH_LLAMA_TOOLS_DIR)")
    return path


def version() -> str:
    return f"llama.cpp tools from llama-cpp-python {LLAMA_CPP_VERSION} vendor/llama.cpp"


def convert_hf(input_dir: str, target: Path, outtype: str = "F16") -> str:
    """An HF folder to one F16/BF16 GGUF with llama.cpp's converter; returns its version label."""
    if not CONVERTER.exists():
        raise RuntimeError(f"llama.cpp's converter is not installed at {CONVERTER} (make install)")
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, str(CONVERTER), input_dir, "--outtype", outtype.lower(),
         "--outfile", str(target)],
        check=True, stdin=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    return f"llama-cpp-python {LLAMA_CPP_VERSION} vendor/llama.cpp"


def run(name: str, args: list[str], *, on_output: Callable[[str], None] | None = None,
        log: Callable[[str], None] | None = None, env: dict | None = None) -> str:
    """Runs the tool to completion and returns its whole output (stdout and stderr merged).
    `on_output` gets the text as it arrives, in pieces as the tool flushes them: llama-perplexity
    and llama-imatrix print "[i]value," per chunk without a newline. Raises ToolError with the
    last lines of the output when the tool fails."""
    command = [str(tool(name)), *args]
    if log:
        log("$ " + " ".join(command))
    pieces: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}) as process:
        while chunk := os.read(process.stdout.fileno(), 65536):
            text = chunk.decode("utf-8", errors="replace")
            pieces.append(text)
            if on_output:
                on_output(text)
        rc = process.wait()
    output = "".join(pieces)
    if rc != 0:
        tail = [x.strip() for x in output.splitlines()[-15:] if x.strip()]
        raise ToolError(f"{name} failed (exit {rc}): " + " | ".join(tail))
    return output


def chunk_progress(total_hint: int, report: Callable[[int, int], None]) -> Callable[[str], None]:
    """An on_output callback for llama-imatrix / llama-perplexity: calls report(done, total) each
    time a "[i]value," entry appears (the total from "over N chunks" once printed)."""
    state = {"total": total_hint}

    def on_output(text: str) -> None:
        if match := CHUNK_TOTAL.search(text):
            state["total"] = int(match.group(1))
        done = [int(m.group(1)) for m in CHUNK_DONE.finditer(text)]
        if done and state["total"]:
            report(max(done), state["total"])

    return on_output


def tensor_progress(report: Callable[[int, int], None]) -> Callable[[str], None]:
    """An on_output callback for llama-quantize: report(i, n) for the last "[ i/ n]" tensor line."""

    def on_output(text: str) -> None:
        if found := TENSOR_DONE.findall(text):
            report(int(found[-1][0]), int(found[-1][1]))

    return on_output
