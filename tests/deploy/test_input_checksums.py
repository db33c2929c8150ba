"""Artifacts across nodes: before a job's process starts, the worker checks each input file's
size and sha256 against the catalog (jobs.runner.verify_inputs), so a copy that changed or is
still being written on this node's view of the shared filesystem fails the job by name."""

import pytest

from jobs import runner
from jobs.models import Job
from jobs.services import job_submit

pytestmark = pytest.mark.django_db


def _run_inline(teams, variant) -> Job:
    job = job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                     params={"types": ["Q8_0"]}, input_variant=variant, enqueue=False)
    runner.execute(job_id=job.pk, worker="test@node")
    job.refresh_from_db()
    return job


def test_a_corrupted_input_byte_fails_the_job_naming_the_file(teams, demo_variant):
    stored = demo_variant.files.get()
    with open(stored.absolute_path, "r+b") as f:  # the catalog's own copy under ARTIFACT_ROOT
        f.seek(stored.bytes // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    job = _run_inline(teams, demo_variant)
    assert job.status == Job.Status.FAILED
    assert job.error.startswith(f"input file {stored.path} changed or is incomplete on this node: "
                                f"sha256 {stored.sha256}")
    assert job.outputs.count() == 0


def test_a_truncated_input_fails_without_hashing_it(teams, demo_variant):
    stored = demo_variant.files.get()
    with open(stored.absolute_path, "r+b") as f:
        f.truncate(stored.bytes - 4096)
    error = runner.verify_inputs(Job(input_variant=demo_variant))
    assert error.endswith(f"{stored.bytes - 4096} bytes here")


def test_a_missing_input_is_named(teams, demo_variant):
    stored = demo_variant.files.get()
    stored.absolute_path.unlink()
    assert "missing here" in runner.verify_inputs(Job(input_variant=demo_variant))


def test_intact_inputs_pass(teams, demo_variant):
    assert runner.verify_inputs(Job(input_variant=demo_variant)) is None
