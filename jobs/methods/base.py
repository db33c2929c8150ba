"""The interface every job method implements.

A method has two halves:
- `validate` and `estimate` run in the web process at submit time, with Django available; they
  look at the input variant and the parameters and either clean them or raise JobError naming the
  field.
- `run` runs in a child process of the worker (spawned fresh, no Django, no database): it gets
  plain paths and parameters in a RunContext, reports progress through it, writes files into
  ctx.workdir and returns a list of Output. The worker's runner registers the outputs as catalog
  variants in one transaction, or throws the work folder away on failure or cancel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


class JobError(Exception):
    """A job request that can't be run; `errors` maps a parameter name to a message."""

    def __init__(self, message: str, errors: dict[str, str] | None = None):
        super().__init__(message)
        self.errors = errors or {}

    @classmethod
    def field(cls, name: str, message: str) -> JobError:
        return cls(f"{name}: {message}", {name: message})


@dataclass
class InputFile:
    path: str  # absolute
    bytes: int
    sha256: str


@dataclass
class RunContext:
    job_id: int
    params: dict
    input_format: str  # catalog Variant.format of the input: gguf, hf, ...
    input_quant_type: str
    input_dir: str  # the input variant's folder
    input_files: list[InputFile]
    workdir: str  # an empty folder for this attempt; outputs go below it
    progress: Callable[[float, str], None] = field(repr=False, default=lambda f, s: None)
    log: Callable[[str], None] = field(repr=False, default=lambda line: None)
    # A worker-side folder where evaluations keep reference log-probs between jobs ("" = none),
    # and the largest file they may store there (settings BASE_LOGITS_CACHE_DIR / _MAX_BYTES).
    base_logits_dir: str = ""
    base_logits_max_bytes: int = 4 * 1024**3
    # Where the worker that claimed the job declared it computes (WORKER_DEVICE: cpu or cuda), the
    # worker's name (for errors naming the node) and the job's estimated peak memory (a cuda node
    # checks its GPU has that much free before loading anything).
    device: str = "cpu"
    node: str = ""
    peak_memory_bytes: int = 0

    def input_path(self, suffix: str) -> Path:
        """The one input file whose name ends with suffix (e.g. '.gguf')."""
        matches = [f.path for f in self.input_files if f.path.endswith(suffix)]
        if len(matches) != 1:
            raise RuntimeError(f"expected one {suffix} input file, found {len(matches)}")
        return Path(matches[0])


@dataclass
class Output:
    """One catalog variant to register. `directory` is below ctx.workdir; every file in it is
    registered. `parent_key` names another Output's key (e.g. the F16 intermediate) to use as its
    parent; without it the input variant is the parent."""

    key: str
    format: str
    quant_type: str
    directory: str
    bits_per_weight: float | None = None
    params: dict = field(default_factory=dict)
    tool_versions: dict = field(default_factory=dict)
    parent_key: str | None = None
    metrics: dict = field(default_factory=dict)


@dataclass
class Evaluation:
    """What an evaluate method returns instead of outputs: numbers about the input variant, and
    how they were measured (dataset, context, chunks, engine, threads ...), stored side by side."""

    kind: str  # perplexity | kl | speed | memory | ...
    metrics: dict
    method: dict = field(default_factory=dict)


class Method:
    name: str = ""
    kind: str = "quantize"  # quantize | evaluate | import
    devices: tuple[str, ...] = ("cpu", "cuda")
    input_formats: tuple[str, ...] = ()
    soft_time_limit: int = 3600
    hard_time_limit: int = 4 * 3600
    # Extra environment for the child process (e.g. GPTQMODEL_CPU_WORKERS).
    child_env: dict[str, str] = {}
    # Catalog imports run in the worker process itself (they need the database) through
    # run_in_worker(job=, progress=) -> Variant, and are cancelled through progress().
    in_worker: bool = False

    def validate(self, params: dict, variant) -> dict:
        """Cleaned parameters, or JobError naming the field. Runs in the web process."""
        raise NotImplementedError

    def estimate(self, params: dict, variant) -> dict:
        """{"peak_memory_bytes": int, "output_bytes": int} from the planner. Web process."""
        raise NotImplementedError

    def run(self, ctx: RunContext) -> "list[Output] | list[Evaluation]":
        """Does the work in the child process: new variants (Output) or measurements of the
        input variant (Evaluation)."""
        raise NotImplementedError

    def parse_log_line(self, line: str) -> tuple[float, str] | None:
        """Turns a line the library printed into (fraction 0..1, stage), if it says progress."""
        return None
