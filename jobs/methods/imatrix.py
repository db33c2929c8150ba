"""The `imatrix` job method: an importance matrix made by llama.cpp's llama-imatrix over a
calibration text, registered as a catalog artifact (format "imatrix") that later GGUF jobs reuse
for the low-bit types that need one (IQ2_XXS, IQ1_S, Q2_K_S ...; gguf.IMATRIX_TYPES).

llama-imatrix runs the model over `chunks` pieces of `context` tokens of the text and sums the
squared activations entering each weight matrix (tools/imatrix/imatrix.cpp, IMatrixCollector);
it writes them as a GGUF with the chunk count, chunk size and dataset in its metadata, which is
read back here rather than trusted from the parameters (a short text gives fewer chunks).

An HF input is first converted to a temporary F16 GGUF with llama.cpp's convert_hf_to_gguf.py
(llama_tools.convert_hf, the same conversion the GGUF job starts from). A quantized GGUF input
works but measures the activations of the quantized model: the job records a warning.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from formats.digest import file_sha256
from jobs import llama_tools
from jobs.methods import hf_common
from jobs.methods.base import JobError, Method, Output, RunContext

FLOAT_TYPES = {"F16", "BF16", "F32"}
DEFAULT_CHUNKS, DEFAULT_CONTEXT = 100, 512
CHUNKS_RANGE, CONTEXT_RANGE, THREADS_RANGE = (1, 100_000), (32, 32_768), (1, 256)
# llama-imatrix's last line: "Final estimate: PPL = 16.0747 +/- 2.75123"
FINAL_PPL = re.compile(r"Final estimate: PPL = ([0-9.]+)")
# compute_imatrix() refuses a text under two contexts' worth of tokens with these two lines.
TOO_SHORT = re.compile(r"you need at least \d+ tokens for a context of \d+ tokens"
                       r"(?:.*?tokenizes to only \d+ tokens)?", re.S)


def clean_options(params: dict, *, prefix: str = "") -> dict:
    """chunks / context (and for the imatrix job, threads) within llama-imatrix's sensible
    bounds; `prefix` is "imatrix_" for the GGUF job's on-the-fly matrix."""
    cleaned = {
        f"{prefix}chunks": hf_common.clean_number(params, f"{prefix}chunks", DEFAULT_CHUNKS,
                                                  kind=int, low=CHUNKS_RANGE[0], high=CHUNKS_RANGE[1]),
        f"{prefix}context": hf_common.clean_number(params, f"{prefix}context", DEFAULT_CONTEXT,
                                                   kind=int, low=CONTEXT_RANGE[0], high=CONTEXT_RANGE[1]),
    }
    if not prefix and params.get("threads") not in (None, ""):
        cleaned["threads"] = hf_common.clean_number(params, "threads", 1, kind=int,
                                                    low=THREADS_RANGE[0], high=THREADS_RANGE[1])
    return cleaned


def dataset_record(*, team_id: int, path: str) -> dict:
    """The catalog dataset a resolved text path belongs to ({"id", "name"}), for the record;
    a server path (CLI) is recorded by its file name."""
    from catalog.models import Dataset

    folder = Path(path).parent.name
    if folder.isdigit():
        dataset = Dataset.objects.filter(team_id=team_id, pk=int(folder)).first()
        if dataset is not None and str(dataset.absolute_path) == path:
            return {"id": dataset.pk, "name": dataset.name}
    return {"id": None, "name": Path(path).name}


def read_imatrix_metadata(path: Path) -> dict:
    """chunk_count, chunk_size and datasets as llama-imatrix wrote them (save_imatrix)."""
    import gguf

    fields = gguf.GGUFReader(str(path)).fields

    def value(key: str):
        field = fields.get(key)
        return field.contents() if field is not None else None

    return {"chunks_used": value("imatrix.chunk_count"), "chunk_size": value("imatrix.chunk_size"),
            "datasets": value("imatrix.datasets") or []}


def make_imatrix(*, model: Path, text: Path, target: Path, chunks: int, context: int,
                 threads: int | None, progress, log) -> dict:
    """Runs llama-imatrix and returns what it measured: chunks used, chunk size, the
    calibration perplexity it printed. `progress(done, total)` follows its "[i]ppl," entries."""
    if not text.is_file():
        raise JobError.field("dataset", f"calibration text not found on this worker: {text}")
    target.parent.mkdir(parents=True, exist_ok=True)
    args = ["-m", str(model), "-f", str(text), "-o", str(target), "--chunks", str(chunks),
            "-c", str(context), "-t", str(threads or os.cpu_count() or 1)]

    def on_output(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()
        chunk_report(piece)

    chunk_report = llama_tools.chunk_progress(chunks, progress)
    try:
        output = llama_tools.run("llama-imatrix", args, on_output=on_output, log=log)
    except llama_tools.ToolError as exc:
        if match := TOO_SHORT.search(str(exc)):
            raise JobError.field("dataset", f"the text is too short for one chunk: llama-imatrix "
                                 f"says {' '.join(match.group(0).split())}; use a longer text "
                                 "or a smaller context") from exc
        raise
    ppl = FINAL_PPL.search(output)
    return {**read_imatrix_metadata(target),
            "calibration_perplexity": float(ppl.group(1)) if ppl else None}


class ImatrixMethod(Method):
    name = "imatrix"
    kind = "quantize"
    devices = ("cpu", "cuda")
    input_formats = ("gguf", "hf")
    soft_time_limit = 2 * 3600
    hard_time_limit = 3 * 3600

    def validate(self, params: dict, variant) -> dict:
        hf_common.reject_unknown(params, {"dataset_path", "chunks", "context", "threads"})
        path = params.get("dataset_path")
        if not isinstance(path, str) or not path.strip():
            raise JobError.field("dataset", "choose a calibration text (a catalog .txt dataset)")
        cleaned = {"dataset_path": path.strip(), **clean_options(params),
                   "dataset_name": dataset_record(team_id=variant.model.team_id,
                                                  path=path.strip())["name"]}
        if variant.format == "gguf" and variant.quant_type.upper() not in {*FLOAT_TYPES, "Q8_0"}:
            cleaned["warning"] = (
                f"the matrix measures the activations of a {variant.quant_type} GGUF; an F16, "
                "BF16 or Q8_0 input (or HF weights) gives the truest one")
        return cleaned

    def estimate(self, params: dict, variant) -> dict:
        from jobs.estimates import imatrix_job_estimate

        return imatrix_job_estimate(params=params, variant=variant)

    def run(self, ctx: RunContext) -> list[Output]:
        p, work = ctx.params, Path(ctx.workdir)
        versions = {"llama.cpp": llama_tools.version()}
        if ctx.input_format == "hf":
            ctx.progress(0.0, "convert")
            model = work / "intermediate" / "model-F16.gguf"
            versions["convert_hf_to_gguf"] = llama_tools.convert_hf(ctx.input_dir, model)
            start = 0.3
        else:
            model, start = ctx.input_path(".gguf"), 0.0
        ctx.progress(start, "imatrix")
        target = work / "imatrix" / "imatrix.gguf"
        text = Path(p["dataset_path"])
        made = make_imatrix(
            model=model, text=text, target=target, chunks=p["chunks"], context=p["context"],
            threads=p.get("threads"), log=ctx.log,
            progress=lambda done, total: ctx.progress(start + (1 - start) * done / total, "imatrix"))
        ctx.progress(1.0, "done")
        return [Output(
            key="imatrix", format="imatrix", quant_type="imatrix", directory=str(target.parent),
            params=imatrix_params(made, dataset={"id": p.get("dataset"), "name": p.get("dataset_name"),
                                                 "sha256": file_sha256(text)},
                                  chunks=p["chunks"], context=p["context"], extra={
                                      k: p[k] for k in ("warning",) if k in p}),
            tool_versions=versions)]


def imatrix_params(made: dict, *, dataset: dict, chunks: int, context: int,
                   extra: dict | None = None) -> dict:
    """What an imatrix variant records about how it was made (both jobs write it)."""
    return {"dataset": dataset, "chunks_requested": chunks, "chunks_used": made["chunks_used"],
            "chunk_size": made["chunk_size"], "context": context,
            "calibration_perplexity": made["calibration_perplexity"], **(extra or {})}


METHODS = {"imatrix": ImatrixMethod()}
