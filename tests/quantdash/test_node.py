"""The node's job markers: what the runtime reads to know a job is running beside it."""

import subprocess
import sys

import pytest

from quantdash import node


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NODE_STATE_DIR", str(tmp_path))
    return tmp_path


def test_a_marked_job_runs_while_its_process_lives():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert node.running_jobs() == []
        with node.job_marked(41, process.pid):
            assert node.running_jobs() == [41]
            process.kill()
            process.wait()
            assert node.running_jobs() == []   # the marker stays until the runner removes it
        assert not (node.state_dir() / "jobs" / "41").exists()
    finally:
        process.kill()


def test_markers_of_gone_processes_and_stray_files_are_ignored(state_dir):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (state_dir / "jobs").mkdir()
    (state_dir / "jobs" / "7").write_text(str(gone.pid))
    (state_dir / "jobs" / "8").write_text("not a pid")
    (state_dir / "jobs" / "notes.txt").write_text("1")
    with node.job_marked(9, subprocess.os.getpid()):
        assert node.running_jobs() == [9]
