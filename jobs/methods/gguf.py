"""GGUF quantization with llama.cpp.

An HF safetensors input is first converted to one F16 (or BF16) GGUF with llama.cpp's own
convert_hf_to_gguf.py (installed into the virtualenv by `make install`); every requested type is
then made from that one intermediate with llama_cpp.llama_model_quantize. A GGUF input is
requantized directly (llama.cpp's allow_requantize), which compounds the error of its own
quantization: the job records a warning.
"""

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from jobs.methods.base import JobError, Method, Output, RunContext

CONVERTER = Path(sys.prefix) / "opt" / "llama.cpp" / "convert_hf_to_gguf.py"
# llama.cpp file types that need no importance matrix (tensor_requires_imatrix in
# src/llama-quant.cpp refuses IQ3_XXS/IQ2_* /IQ1_* and Q2_K_S without one).
TYPES = ("F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S",
         "Q4_1", "Q4_0", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K", "IQ4_XS", "IQ4_NL")
FLOAT_TYPES = {"F16", "BF16", "F32"}
MAX_TYPES = 12
# "[  12/ 272] blk.0.attn_k.weight ..." printed by llama_model_quantize for each tensor.
TENSOR_LINE = re.compile(r"\[\s*(\d+)/\s*(\d+)\]")


class _ProgressTee:
    """Stands in for sys.stderr while llama.cpp logs through llama-cpp-python's callback: passes
    text through and turns per-tensor lines into progress."""

    def __init__(self, target, on_tensor):
        self.target, self.on_tensor = target, on_tensor

    def write(self, text: str) -> int:
        if match := TENSOR_LINE.search(text):
            self.on_tensor(int(match.group(1)), int(match.group(2)))
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()


def _gguf_bits_per_weight(path: Path) -> float:
    from formats.gguf_header import read_gguf_header_from_path

    header = read_gguf_header_from_path(path)
    n_weights = sum(_prod(t.shape) for t in header.tensors)
    return round((path.stat().st_size - header.data_offset) * 8 / n_weights, 3)


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


class GGUFMethod(Method):
    name = "gguf"
    kind = "quantize"
    devices = ("cpu", "cuda")
    input_formats = ("hf", "gguf")
    soft_time_limit = 2 * 3600
    hard_time_limit = 3 * 3600

    def validate(self, params: dict, variant) -> dict:
        types = params.get("types") or []
        if isinstance(types, str):
            types = [t.strip() for t in types.split(",") if t.strip()]
        types = [str(t).upper() for t in types]
        if not types:
            raise JobError.field("types", "choose at least one GGUF type")
        unknown = [t for t in types if t not in TYPES]
        if unknown:
            raise JobError.field("types", f"unknown or unsupported type {', '.join(unknown)}; "
                                 f"choose from {', '.join(TYPES)}")
        if len(set(types)) > MAX_TYPES:
            raise JobError.field("types", f"at most {MAX_TYPES} types in one job")
        outtype = str(params.get("intermediate", "F16")).upper()
        if outtype not in ("F16", "BF16"):
            raise JobError.field("intermediate", "the intermediate must be F16 or BF16")
        cleaned = {"types": list(dict.fromkeys(types)), "intermediate": outtype}
        if variant.format == "gguf" and variant.quant_type.upper() not in FLOAT_TYPES:
            cleaned["warning"] = (
                f"requantizing a {variant.quant_type} GGUF: errors compound; quantize from F16 "
                "or HF weights when you have them")
        return cleaned

    def estimate(self, params: dict, variant) -> dict:
        from jobs.estimates import gguf_job_estimate

        return gguf_job_estimate(params=params, variant=variant)

    def run(self, ctx: RunContext) -> list[Output]:
        import llama_cpp

        work = Path(ctx.workdir)
        outputs: list[Output] = []
        types = list(ctx.params["types"])
        n_steps = len(types) + (1 if ctx.input_format == "hf" else 0)
        versions = {"llama-cpp-python": llama_cpp.__version__}
        if ctx.input_format == "hf":
            source = self._convert(ctx, work, versions)
            outputs.append(Output(
                key="intermediate", format="gguf", quant_type=ctx.params["intermediate"],
                directory=str(source.parent), bits_per_weight=_gguf_bits_per_weight(source),
                params={"intermediate_of": types}, tool_versions=versions))
            step = 1
        else:
            source = ctx.input_path(".gguf")
            step = 0
        stem = source.name.rsplit(".", 2)[0] if ctx.input_format == "gguf" else "model"
        for qtype in types:
            if ctx.input_format == "hf" and qtype == ctx.params["intermediate"]:
                step += 1
                continue  # the intermediate itself is already an output
            target = work / qtype / f"{stem}-{qtype}.gguf"
            target.parent.mkdir(parents=True)
            self._quantize(ctx, source, target, qtype, step, n_steps)
            step += 1
            outputs.append(Output(
                key=qtype, format="gguf", quant_type=qtype, directory=str(target.parent),
                bits_per_weight=_gguf_bits_per_weight(target),
                params={"type": qtype, **({"warning": ctx.params["warning"]}
                                          if "warning" in ctx.params else {})},
                tool_versions=versions,
                parent_key="intermediate" if ctx.input_format == "hf" else None))
        ctx.progress(1.0, "done")
        return outputs

    def _convert(self, ctx: RunContext, work: Path, versions: dict) -> Path:
        if not CONVERTER.exists():
            raise RuntimeError(f"llama.cpp's converter is not installed at {CONVERTER} (make install)")
        outtype = ctx.params["intermediate"]
        target = work / "intermediate" / f"model-{outtype}.gguf"
        target.parent.mkdir(parents=True)
        ctx.progress(0.0, "convert")
        subprocess.run(
            [sys.executable, str(CONVERTER), ctx.input_dir, "--outtype", outtype.lower(),
             "--outfile", str(target)],
            check=True, stdin=subprocess.DEVNULL,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        )
        versions["convert_hf_to_gguf"] = "llama-cpp-python 0.3.36 vendor/llama.cpp"
        return target

    def _quantize(self, ctx, source: Path, target: Path, qtype: str, step: int, n_steps: int):
        import llama_cpp

        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{qtype}")
        params.nthread = os.cpu_count() or 1
        params.allow_requantize = ctx.input_format == "gguf"
        stage = f"quantize {qtype}"
        ctx.progress(step / n_steps, stage)

        def on_tensor(i: int, n: int) -> None:
            ctx.progress((step + i / n) / n_steps, stage)

        real_stderr, result = sys.stderr, {}
        sys.stderr = _ProgressTee(real_stderr, on_tensor)
        try:
            # In a thread so the GIL is free for the log callback; ctypes releases it.
            worker = threading.Thread(target=lambda: result.setdefault(
                "rc", llama_cpp.llama_model_quantize(
                    str(source).encode(), str(target).encode(), params)))
            worker.start()
            worker.join()
        finally:
            sys.stderr = real_stderr
        if result.get("rc") != 0:
            raise RuntimeError(f"llama_model_quantize to {qtype} failed (code {result.get('rc')})")


METHODS = {"gguf": GGUFMethod()}
