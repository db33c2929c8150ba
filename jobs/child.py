"""The child process that runs one job method: `python -m jobs.child SPEC.json`.

It has no Django and no database. It reads the spec the runner wrote, calls the method's run()
with a RunContext whose progress() appends JSON lines to events.jsonl, and writes result.json.
Everything the libraries print goes to the log file the runner tails. The runner can kill this
process group at any moment (cancel, time limit); the work folder is then thrown away.
"""

import json
import os
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from engines.gpu import GpuUnavailable, out_of_memory_message


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    workdir = Path(spec["workdir"])
    events = open(workdir / "events.jsonl", "a", buffering=1)

    def progress(fraction: float, stage: str) -> None:
        events.write(json.dumps({"t": time.time(), "fraction": fraction, "stage": stage}) + "\n")

    def log(line: str) -> None:
        print(line, flush=True)

    from jobs.methods import get_method
    from jobs.methods.base import InputFile, RunContext

    ctx = RunContext(
        job_id=spec["job_id"], params=spec["params"], input_format=spec["input_format"],
        input_quant_type=spec["input_quant_type"], input_dir=spec["input_dir"],
        input_files=[InputFile(**f) for f in spec["input_files"]], workdir=str(workdir / "work"),
        progress=progress, log=log, base_logits_dir=spec.get("base_logits_dir", ""),
        base_logits_max_bytes=spec.get("base_logits_max_bytes", 4 * 1024**3),
        device=spec.get("device", "cpu"), node=spec.get("node", ""),
        peak_memory_bytes=spec.get("peak_memory_bytes", 0),
    )
    Path(ctx.workdir).mkdir(parents=True, exist_ok=True)
    result_path = workdir / "result.json"
    try:
        from jobs.methods.base import Evaluation

        produced = get_method(spec["method"]).run(ctx)
        result = {
            "ok": True,
            "outputs": [asdict(o) for o in produced if not isinstance(o, Evaluation)],
            "evaluations": [asdict(e) for e in produced if isinstance(e, Evaluation)],
        }
        code = 0
    except Exception as exc:
        traceback.print_exc()
        result = {"ok": False, "error": _error_text(exc, ctx)}
        code = 1
    tmp = result_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, result_path)
    return code


def _error_text(exc: Exception, ctx) -> str:
    """The job's error: a missing or busy GPU is said as the node's own words; running out of
    GPU memory names the node and what is free (torch's message is a page of allocator advice)."""
    if isinstance(exc, GpuUnavailable) or isinstance(exc.__cause__, GpuUnavailable):
        return str(exc)  # an engine's EngineError carries the same words
    if ctx.device == "cuda" and type(exc).__name__ == "OutOfMemoryError":  # torch.cuda's
        return out_of_memory_message(node=ctx.node, error=exc)
    return f"{exc.__class__.__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
