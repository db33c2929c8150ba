"""Peak memory of a variant as the runtime serves it, measured beside the planner's figure for
exactly that configuration, so "planned vs measured" compares like with like.

The evaluation child itself holds every position's logits, the tokenized text and numpy arrays;
its peak RSS says what an evaluation costs, not what serving the model costs, and the planner
estimates the latter. So the memory evaluation measures what the planner estimates: a fresh
process (`python -m jobs.methods.evaluate_memory SPEC.json`) loads the GGUF through the runtime's
own engine (engines.open_engine, the same llama-cpp-python load and defaults the runtime server
uses) at the evaluation's context with the evaluation's threads, generates one
token after a prompt that fills the rest of the context (the runtime's generate path: the last
prefill ubatch attends over the whole cache, the graph llama.cpp reserved its compute buffer for),
and reports its peak RSS (VmHWM) with the conditions llama.cpp actually ran with (n_ctx, batch,
ubatch, KV types, flash attention, threads) and the CPU it ran on.

`served_plan` is the planner's estimate for that configuration: the llama.cpp runtime on a CPU
node (x86 AVX2 build), batch 1, the context, KV f16, flash attention off, ubatch 512 — the
llama-cpp-python defaults the runtime engine keeps (catalog.evaluations.plan_mismatch says why a
measurement's conditions differ from the plan's; then the two are not compared). GGUF only: the transformers
runtime is not measured this way yet, and its evaluations keep the evaluation process's peak RSS,
labelled as such and never set against the planner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# The CPU profile the planner plans the served process on. Its memory total depends on the kind
# (a CPU: weights mapped from the file, repacked on x86 AVX2, peak RSS modelled) and not on the
# profile's bandwidth or FLOP/s; the measuring process records the node's own CPU beside it.
PLANNER_HARDWARE = "cpu-2core-24gb"
# llama-cpp-python 0.3.36's Llama() defaults, which the runtime engine keeps (it passes n_ctx and
# threads only): KV cache f16, no flash attention, n_batch = n_ubatch = 512.
SERVED_DEFAULTS = {"kv_dtype": "f16", "flash_attn": False, "n_ubatch": 512, "batch": 1}
# GGML_TYPE_F16 in ggml.h's enum ggml_type; the other KV types are named by number.
GGML_KV_TYPES = {1: "f16", 0: "f32", 8: "q8_0", 2: "q4_0", 3: "q4_1", 6: "q5_0", 7: "q5_1", 30: "bf16"}
WHAT = "peak RSS of a fresh process serving the variant through the runtime's llama.cpp engine"


def served_label(context: int) -> str:
    return f"served at context {context}"


def served_plan(*, config: dict, scheme: str | None, context: int, threads: int) -> dict:
    """The planner's estimate for the served process the memory evaluation measures, with the
    conditions it assumed; {"refused": why} when the planner can't plan it."""
    # Imported here, not at the top: the measuring process runs this module and must hold only
    # what a runtime model process holds (the planner's process overhead is measured so).
    from planner.estimator import HARDWARE_PROFILES, Architecture, EstimatorError, Workload, estimate

    conditions = {"what": served_label(context), "runtime": "llama.cpp", "device": "cpu",
                  "cpu_isa": "x86-avx2", "hardware": PLANNER_HARDWARE, "context": context,
                  "threads": threads, "scheme": scheme, **SERVED_DEFAULTS}
    if scheme is None:
        return {**conditions, "refused": "the planner has no scheme for this quantization type"}
    try:
        workload = Workload(runtime="llama.cpp", context=context, batch=1,
                            kv_dtype=SERVED_DEFAULTS["kv_dtype"],
                            flash_attn=SERVED_DEFAULTS["flash_attn"], n_ubatch=SERVED_DEFAULTS["n_ubatch"])
        row = estimate(Architecture.from_config(config), HARDWARE_PROFILES[PLANNER_HARDWARE],
                       workload, [scheme]).rows[0]
    except (EstimatorError, KeyError, ValueError, TypeError) as exc:
        return {**conditions, "refused": f"the planner can't plan this model: {exc}"}
    parts = ("weights_bytes", "kv_cache_bytes", "compute_bytes", "overhead_bytes", "repack_bytes")
    return {**conditions, "total_bytes": int(row.total_bytes),
            **{k: int(getattr(row, k)) for k in parts if getattr(row, k) is not None},
            "decode_tokens_per_s": row.decode_tokens_per_s, "supported": row.supported}


def cpu_isa() -> str:
    """"x86-avx2" on an x86 CPU with AVX2 (the build's repack layouts), else what it is."""
    import platform

    machine = platform.machine().lower()
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    if machine in ("x86_64", "amd64"):
        return "x86-avx2" if "avx2" in flags else "x86 without AVX2"
    return machine or "unknown"


def measure_served(*, gguf: Path, text_path: Path, context: int, threads: int, workdir: Path,
                   timeout: float = 900.0) -> dict:
    """Runs the served-memory process and returns its report (metrics and conditions); raises
    RuntimeError with the process's last output when it fails."""
    spec = workdir / "served_memory.json"
    spec.write_text(json.dumps({"gguf": str(gguf), "text": str(text_path), "context": context,
                                "threads": threads}))
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "jobs.methods.evaluate_memory", str(spec)],
                          capture_output=True, text=True, timeout=timeout, cwd=str(root), env=env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the served-memory process failed (exit {proc.returncode}): "
                           f"{(proc.stderr or proc.stdout)[-1500:]}")
    return json.loads(lines[-1])


def _vm(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def _prompt(engine, text_path: Path, tokens: int) -> list[int]:
    """`tokens` ids of the text as the runtime tokenizes a completion prompt (BOS first), the
    text repeated when it is shorter."""
    from engines import SamplingParams

    chars = max(tokens * 8, 4096)
    with open(text_path, encoding="utf-8", errors="replace") as f:
        text = f.read(chars)
    if not text.strip():
        raise RuntimeError(f"{text_path.name} has no text to make a prompt from")
    while True:
        ids = engine.prepare(messages=None, prompt=text, params=SamplingParams()).tokens
        if len(ids) >= tokens:
            return ids[:tokens]
        text += "\n" + text


def child(spec_path: str) -> dict:
    """The served-memory process: only the interpreter, numpy and llama-cpp-python besides the
    runtime engine, like the runtime's model process."""
    spec = json.loads(Path(spec_path).read_text())
    rss_base = _vm("VmHWM")
    from engines import SamplingParams, open_engine

    context, threads = int(spec["context"]), int(spec["threads"])
    engine = open_engine("gguf", [Path(spec["gguf"])], n_ctx=context, threads=threads)
    rss_loaded = _vm("VmHWM")
    prompt = _prompt(engine, Path(spec["text"]), context - 1)
    params = SamplingParams(temperature=0.0, max_tokens=1)
    prepared = engine.prepare_checked(messages=None, prompt=None, params=params, prompt_tokens=prompt)
    for _ in engine.stream(prepared=prepared, params=params, cancelled=lambda: False):
        pass
    import llama_cpp

    llm = engine._llm  # the runtime engine's Llama: read what llama.cpp ran with
    cp = llm.context_params
    flash = getattr(cp, "flash_attn", None)
    if flash is None:  # newer bindings: flash_attn_type (-1 auto, 0 disabled, 1 enabled)
        flash = getattr(cp, "flash_attn_type", 0) == 1
    report = {
        "peak_rss_bytes": _vm("VmHWM"), "rss_base_bytes": rss_base, "rss_loaded_bytes": rss_loaded,
        "engine_memory_bytes": engine.memory_bytes(),
        "conditions": {
            # n_ctx as the runtime asks for it; llama.cpp pads its cells to a multiple of 256
            "n_ctx": engine.n_ctx, "kv_cells": int(llama_cpp.llama_n_ctx(llm.ctx)),
            "n_batch": int(llama_cpp.llama_n_batch(llm.ctx)),
            "n_ubatch": int(llama_cpp.llama_n_ubatch(llm.ctx)), "threads": int(cp.n_threads),
            "type_k": GGML_KV_TYPES.get(int(cp.type_k), str(cp.type_k)),
            "type_v": GGML_KV_TYPES.get(int(cp.type_v), str(cp.type_v)), "flash_attn": bool(flash),
            "prompt_tokens": len(prompt), "generated_tokens": prepared.completion_tokens,
            "cpu_isa": cpu_isa(), "file": Path(spec["gguf"]).name,
            "llama-cpp-python": getattr(llama_cpp, "__version__", "?"),
        },
    }
    engine.unload()
    return report


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1])), flush=True)
