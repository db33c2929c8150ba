"""Scenarios 7, 8 and 10 against the real uvicorn server and a real worker: a double-clicked
submission, pickle payloads, and archives that try to write outside their folder or explode."""

import io
import json
import pickle
import tarfile
import threading
import uuid
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

from catalog.safety import extract_archive
from catalog.models import Model, Variant
from catalog.services import CatalogError
from jobs.models import Job, Worker
from jobs.services import job_cancel
from tests.reliability.conftest import WorkerProcess, record, temp_entries
from tests.reliability.web import multipart, post_body, session_headers, upload
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, redis_server):
    worker = WorkerProcess(django_db_blocker, "hostile@%h").start()
    yield worker
    worker.stop()


@pytest.fixture
def worker_row(worker, db):
    wait_until(lambda: Worker.objects.filter(hostname__startswith="hostile@").exists(), 10)


def import_outcome(status: int, headers: dict, content: bytes) -> str:
    """'refused: <why>' from the form (400), or the import job's error once it has failed."""
    if status == 400:
        return "form"
    assert status == 302, (status, content[-2000:])
    job_id = int(headers["location"].rstrip("/").rsplit("/", 1)[-1])
    wait_until(lambda: Job.objects.get(pk=job_id).is_final, 60, interval=0.2, what="the import")
    job = Job.objects.get(pk=job_id)
    assert job.status == Job.Status.FAILED, (job.status, job.error)
    return f"job: {job.error}"


# --- 7: the same submission twice -----------------------------------------------------------
def _error_summary(body: bytes) -> str:
    """What a response says went wrong: Django's debug page's title and exception value (the
    server runs with DEBUG on in tests), else the body's end."""
    import html
    import re

    text = body.decode(errors="replace")
    parts = (re.findall(r"<title>(.*?)</title>", text, re.S)[:1]
             + re.findall(r'<pre class="exception_value">(.*?)</pre>', text, re.S)[:1])
    return " | ".join(html.unescape(p.strip()) for p in parts) or text[-500:]


def test_7_a_double_click_makes_one_job(teams, demo_variant, web, worker_row):
    alice = session_headers(teams["alice"])

    def twice(send) -> list:
        results, threads = [], [threading.Thread(target=lambda: results.append(send())) for _ in "ab"]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
            assert not t.is_alive(), "a submission got no answer within 60 s"
        assert len(results) == 2, results  # both answered (a failed one raised in its thread)
        return results

    form = twice(lambda: post_body(web, "/jobs/new", (
        f"variant={demo_variant.pk}&method=gguf&types=Q2_K").encode(), {
        **alice, "Content-Type": "application/x-www-form-urlencoded", "Referer": web + "/jobs/new"}))
    api = twice(lambda: post_body(web, "/api/jobs/", json.dumps({
        "variant": demo_variant.pk, "method": "gguf", "params": {"types": ["Q3_K_M"]}}).encode(),
        {**alice, "Content-Type": "application/json"}))
    assert [r[0] for r in form] == [302, 302], [(r[0], _error_summary(r[2])) for r in form]
    assert len({r[1]["location"] for r in form}) == 1
    assert [r[0] for r in api] == [201, 201]
    assert len({json.loads(r[2])["job"] for r in api}) == 1
    assert Job.objects.count() == 2
    for job in Job.objects.all():
        job_cancel(job=job)  # nothing needs to run
    form_jobs = len({r[1]["location"] for r in form})
    api_jobs = len({json.loads(r[2])["job"] for r in api})
    record(7, "double submit", f"2 simultaneous POSTs -> {form_jobs} job through the form, "
           f"{api_jobs} through the API")


# --- 8: pickle payloads -------------------------------------------------------------------------
class Payload:
    """Unpickling this creates the marker file: proof that a pickle was loaded."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def torch_style_zip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", data)
        zf.writestr("archive/version", "3\n")
    return buf.getvalue()


def test_8_pickle_payloads_are_refused_and_never_run(teams, web, worker_row):
    marker = settings.ARTIFACT_ROOT.parent / f"pwned-{uuid.uuid4().hex}"
    evil = pickle.dumps(Payload(marker))
    config = json.dumps({"model_type": "llama"}).encode()
    cases = {
        "pytorch_model.bin": [("config.json", config), ("pytorch_model.bin", evil)],
        "model.pt (torch zip)": [("config.json", config), ("model.pt", torch_style_zip(evil))],
        "pickle named .safetensors": [("config.json", config), ("model.safetensors", evil)],
        "pickle named .gguf": [("evil.gguf", evil)],
        ".bin inside a .zip": [("model.zip", zip_of({"m/config.json": config,
                                                      "m/pytorch_model.bin": evil}))],
    }
    outcomes = {}
    for name, files in cases.items():
        outcomes[name] = import_outcome(*upload(web, teams["alice"], teams["red"].pk, files)[:3])
    assert not marker.exists(), "a pickle payload ran"
    assert not Model.objects.exists() and not Variant.objects.exists()
    assert temp_entries() == []
    refused_by = ", ".join(f"{k}: {'form 400' if v == 'form' else 'import job failed'}"
                           for k, v in outcomes.items())
    record(8, "pickle payload", f"{len(cases)}/{len(cases)} refused ({refused_by}); marker file "
           "never created, 0 models")


# --- 10: archives -------------------------------------------------------------------------------
def zip_of(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, target)
    return buf.getvalue()


def tar_of(members: list[tarfile.TarInfo | tuple[str, bytes]], gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tf.addfile(info, io.BytesIO(member[1]))
    return buf.getvalue()


def link(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def test_10_hostile_archives_write_nothing_outside_and_bombs_stop_at_the_cap(
        teams, web, worker_row, tmp_path):
    tag = uuid.uuid4().hex
    outside = Path("/tmp") / f"escape-{tag}"  # where an escaping member would land
    config = b'{"model_type": "llama"}'
    zeros = b"\0" * (64 * 1024**2)
    cases = {
        "zip ../": ("m.zip", zip_of({"m/config.json": config, f"../../../../../../tmp/escape-{tag}": b"x"})),
        "zip absolute": ("m.zip", zip_of({"m/config.json": config, str(outside): b"x"})),
        "zip symlink": ("m.zip", zip_of({"m/config.json": config}, {"m/link": "/tmp"})),
        "tar ../": ("m.tar", tar_of([("m/config.json", config), (f"../../../../../tmp/escape-{tag}", b"x")])),
        "tar absolute": ("m.tar", tar_of([("m/config.json", config), (str(outside), b"x")])),
        "tar symlink then file through it": ("m.tar", tar_of([
            link("m/link", "/tmp"), (f"m/link/escape-{tag}", b"x")])),
        "tar hard link": ("m.tar", tar_of([link("m/passwd", "/etc/passwd", hard=True)])),
        "zip bomb (64 MiB of zeros)": ("bomb.zip", zip_of({"m/zeros.txt": zeros})),
        "tar.gz bomb (64 MiB of zeros)": ("bomb.tar.gz", tar_of([("m/zeros.txt", zeros)], gz=True)),
    }
    errors = {}
    for name, (filename, data) in cases.items():
        outcome = import_outcome(*upload(web, teams["alice"], teams["red"].pk, [(filename, data)])[:3])
        assert outcome != "form" or "bomb" not in name
        errors[name] = outcome
    assert not outside.exists() and not list(Path("/tmp").glob(f"*{tag}*"))
    assert not [p for p in settings.ARTIFACT_ROOT.parent.rglob(f"*{tag}*")]
    assert not Model.objects.exists() and not Variant.objects.exists()
    assert temp_entries() == []
    for name in ("zip bomb (64 MiB of zeros)", "tar.gz bomb (64 MiB of zeros)"):
        assert "decompression bomb" in errors[name], errors[name]
    # How far the same extraction gets before it stops (the job removed what it wrote).
    written = {}
    for name in ("zip bomb (64 MiB of zeros)", "tar.gz bomb (64 MiB of zeros)"):
        filename, data = cases[name]
        archive = tmp_path / filename
        archive.write_bytes(data)
        out = tmp_path / f"out-{filename}"
        with pytest.raises(CatalogError, match="decompression bomb"):
            extract_archive(archive, out)
        written[name] = (sum(p.stat().st_size for p in out.rglob("*") if p.is_file()), len(data))
    figures = "; ".join(f"{n.split(' (')[0]} {len(zeros) >> 20} MiB from {a / 1024:.0f} KiB stopped "
                        f"after {w / 1024**2:.1f} MiB written" for n, (w, a) in written.items())
    record(10, "hostile archives", f"{len(cases) - 2}/{len(cases) - 2} escaping/link archives "
           f"refused, 0 bytes written outside the upload folder; {figures}")
