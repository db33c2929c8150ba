"""The job processes running on this machine, for the runtime server beside them.

A worker and the runtime server often share a node (every `make run`). llama.cpp's CPU threads
spin at their barriers, so a job using every core and a chat using every core slow each other down
many times over (bench/shared_node.py): the runtime generates with fewer threads while a job runs
here, and the worker starts jobs at a low priority (JOB_NICE).

The runner marks each job process it starts with a file NODE_STATE_DIR/jobs/<job id> holding the
process id, and removes it when the process has ended; the runtime reads the folder before each
generation. The folder is node-local (by default in the system's temp folder), never ARTIFACT_ROOT,
which nodes may share: a process id means something on its own machine only. Standard library only:
both the worker and the runtime server import it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def state_dir() -> Path:
    return Path(os.environ.get("NODE_STATE_DIR")
                or Path(tempfile.gettempdir()) / f"quantdash-node-{os.getuid()}")


@contextmanager
def job_marked(job_id: int, pid: int) -> Iterator[None]:
    """Marks job `job_id` as running in process `pid` on this node for the duration."""
    folder = state_dir() / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / str(int(job_id))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(int(pid)))
    os.replace(tmp, path)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def running_jobs() -> list[int]:
    """Ids of the jobs whose process is alive on this node; a marker a killed worker left behind
    names a process that is gone, and is ignored."""
    try:
        paths = [p for p in (state_dir() / "jobs").iterdir() if p.name.isdigit()]
    except FileNotFoundError:
        return []
    running = []
    for path in paths:
        try:
            pid = int(path.read_text())
        except (OSError, ValueError):   # removed meanwhile, or being written
            continue
        if _alive(pid):
            running.append(int(path.name))
    return sorted(running)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's process: alive
        return True
    return True
