"""Scenario 11: the artifact disk fills up during an upload and during a quantization. ARTIFACT_ROOT
is a small tmpfs (mounted here as root, unmounted at the end) for a uvicorn server, a Celery worker
and the test process alike; the catalog must answer with a clear failure and stay as it was: no
Model/Variant/File/Dataset rows added, no partial files left under ARTIFACT_ROOT."""

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from catalog.models import Dataset, File, Model, Variant
from jobs.models import Job, Worker
from jobs.services import job_submit
from tests.support.processes import job_children
from tests.reliability.conftest import WorkerProcess, record
from tests.reliability.web import multipart, post_body, session_headers, upload
from tests.support import processes
from tests.support.testenv import SESSION_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
MiB = 1024**2


def _mount(path: Path, size_mib: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(path)], check=True)


def _resize(path: Path, size_mib: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size_mib}m", str(path)], check=True)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def _free_mib(root: Path) -> float:
    return os.statvfs(root).f_bavail * os.statvfs(root).f_frsize / MiB


@pytest.fixture(scope="module")
def upload_disk():
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path = SESSION_DIR / "disk-full-web"
    _mount(path, 64)
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


WEB_TMP = SESSION_DIR / "web-disk-full-tmp"


@pytest.fixture(scope="module")
def disk_web(django_db_setup, redis_server, upload_disk):
    """uvicorn with ARTIFACT_ROOT on the 64 MiB tmpfs and no spare margin (DISK_SPARE_BYTES=0), and
    its own TMPDIR, where Django writes an upload's temporary file once the early check passed."""
    WEB_TMP.mkdir(exist_ok=True)
    process = processes.start_web(port=(port := processes.free_port()),
                                  log=SESSION_DIR / "web-disk-full.log", ARTIFACT_ROOT=str(upload_disk),
                                  DISK_SPARE_BYTES="0", UPLOAD_MAX_BYTES=str(256 * MiB),
                                  TMPDIR=str(WEB_TMP))
    yield f"http://127.0.0.1:{port}"
    processes.stop(process)


def _fill_once_admitted(disk: Path, leave: int) -> tuple[threading.Thread, Path]:
    """Another writer fills the disk after the view's free-disk check passed: as soon as Django
    starts writing the upload's temporary file (it does so only past the check), a ballast file
    takes all but `leave` bytes of the artifact disk; the move into ARTIFACT_ROOT comes after."""
    ballast = disk / "ballast"
    existing = set(WEB_TMP.iterdir())

    def fill():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                p.name.endswith((".gguf", ".txt")) for p in set(WEB_TMP.iterdir()) - existing):
            time.sleep(0.001)
        with open(ballast, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, int(_free_mib(disk) * MiB) - leave)

    thread = threading.Thread(target=fill, daemon=True)
    thread.start()
    return thread, ballast


def test_11_a_full_disk_during_an_upload_is_a_clean_refusal(teams, disk_web, upload_disk, settings):
    settings.ARTIFACT_ROOT = upload_disk
    user, team = teams["alice"], teams["red"]
    before = _files(upload_disk)
    free = _free_mib(upload_disk)

    # Declared 40 MiB on a 64 MiB disk: 2 x 40 MiB does not fit, refused before anything is written.
    status, _h, content, took = upload(disk_web, user, team.pk, [("model.gguf", b"\0" * 40 * MiB)])
    assert status == 507, (status, content[-500:])
    assert b"not enough free disk" in content
    assert _files(upload_disk) == before

    # Declared 24 MiB: admitted (2 x 24 < 64), then the disk fills to 8 MiB free before the move
    # from the temporary file into ARTIFACT_ROOT/uploads/, which runs out part way.
    leave = 8 * MiB
    answers = {}
    for what, path, files, fields in [
        ("model", "/jobs/import/", [("files", "model.gguf", b"\0" * 24 * MiB)],
         {"source": "upload", "team": str(team.pk), "name": ""}),
        ("dataset", "/catalog/datasets/", [("file", "big.txt", b"word " * (24 * MiB // 5))],
         {"team": str(team.pk), "name": "", "hub_id": ""}),
    ]:
        thread, ballast = _fill_once_admitted(upload_disk, leave)
        body, content_type = _multipart(fields, files)
        status, _h, content, _took = post_body(disk_web, path, body, {
            **session_headers(user), "Content-Type": content_type, "Referer": disk_web + path})
        thread.join(5)
        assert not thread.is_alive(), "the disk filler was still running 5 s after the answer"
        assert ballast.exists(), "the ballast was never written"
        ballast.unlink()
        assert status == 400, (what, status, content[-800:])
        text = content.decode()
        assert "the artifact disk is full" in text, (what, text[text.find("<main"):][:2000])
        answers[what] = status

    assert not (Model.objects.exists() or Variant.objects.exists() or File.objects.exists()
                or Dataset.objects.exists() or Job.objects.exists())
    assert _files(upload_disk) == before
    assert _free_mib(upload_disk) > free - 1
    record(11, "disk full during an upload", f"{free:.0f} MiB tmpfs: declared 40 MiB -> 507 in "
           f"{took * 1000:.0f} ms, 0 bytes written; 24 MiB model and dataset admitted, disk then "
           f"filled to {leave // MiB} MiB free -> 400 \"the artifact disk is full\" after "
           f"{leave // MiB} MiB written; 0 rows, 0 files left")


def _multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    body, content_type = multipart(fields, [])
    boundary = content_type.split("=", 1)[1]
    body = body[:-len(f"--{boundary}--\r\n")]
    for field, filename, data in files:
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
                 f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                 ).encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), content_type


# --- quantization -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def job_disk():
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path = SESSION_DIR / "disk-full-jobs"
    _mount(path, 300)
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture(scope="module")
def disk_worker(django_db_setup, django_db_blocker, redis_server, job_disk):
    worker = WorkerProcess(django_db_blocker, "diskfull@%h", ARTIFACT_ROOT=str(job_disk)).start()
    yield worker
    worker.stop()


def _demo_variant(team, settings, root: Path) -> Variant:
    from catalog.imports.demo import demo_model_import

    settings.ARTIFACT_ROOT = root
    return demo_model_import(team=team).variants.get()


def _wait_final(job: Job, timeout: float = 120) -> Job:
    processes.wait_until(lambda: Job.objects.get(pk=job.pk).is_final, timeout, interval=0.1,
                         what=f"job {job.pk} to end")
    job.refresh_from_db()
    return job


def test_11_a_quantization_whose_outputs_do_not_fit_fails_cleanly(teams, job_disk, disk_worker,
                                                                    settings):
    _resize(job_disk, 300)
    variant = _demo_variant(teams["red"], settings, job_disk)
    before, rows = _files(job_disk), (Variant.objects.count(), File.objects.count())
    processes.wait_until(lambda: Worker.objects.filter(hostname__startswith="diskfull@").exists(), 10)

    # Six types from the 94 MiB input: about 0.6 GiB out, on a disk with ~200 MiB free.
    job = job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                     params={"types": ["Q8_0", "Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M", "Q3_K_M"]},
                     input_variant=variant)
    job = _wait_final(job)
    assert job.status == Job.Status.FAILED and job.error.startswith("not enough free disk"), job.error
    early = (job.finished_at - job.started_at).total_seconds()
    early_error = job.error

    # One type whose output fits at the check (600 MiB disk), then the disk fills mid-job: a
    # ballast file takes everything left once the quantizer is running.
    _resize(job_disk, 600)
    job = job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                     params={"types": ["Q8_0"]}, input_variant=variant)
    processes.wait_until(lambda: job_children(job.pk), 60, interval=0.02,
                         what="the quantizer to start")
    ballast = job_disk / "ballast"
    with open(ballast, "wb") as f:
        try:
            while True:
                f.write(b"\0" * MiB)
        except OSError:
            pass
    filled = time.monotonic()
    try:
        job = _wait_final(job)
    finally:
        ballast.unlink()
    took = (job.finished_at - job.started_at).total_seconds()
    assert job.status == Job.Status.FAILED, job.status
    assert "disk" in job.error.lower() or "space" in job.error.lower(), job.error
    assert not job_children(job.pk)
    processes.wait_until(lambda: _files(job_disk) == before, 10, what="the work folder to go")
    assert (Variant.objects.count(), File.objects.count()) == rows
    record(11, "disk full during a quantization",
           f"6-type gguf job on a 300 MiB tmpfs failed {early:.1f} s after it started: "
           f"{json.dumps(early_error)}; 1-type job with the disk filled while quantizing failed "
           f"{took:.1f} s after it started: {json.dumps(job.error[:160])}; 0 variants, 0 files left")
