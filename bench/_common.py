"""Shared command-line runner for the ground-truth benches that build tiny models in a work folder."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path


def run_in_workdir(main: Callable[[Path], None], doc: str | None) -> None:
    """Parse `--workdir DIR` and call `main(DIR)`; without it, run in a temporary folder removed afterwards.

    Keeping the folder (--workdir) lets one inspect the saved tiny models and GGUF files after a run.
    """
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    parser.add_argument("--workdir", type=Path, help="keep the built files here instead of a temporary folder")
    args = parser.parse_args()
    if args.workdir:
        main(args.workdir)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
