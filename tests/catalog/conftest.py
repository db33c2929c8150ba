import shutil
from pathlib import Path

import pytest
from django.conf import settings

from tests.catalog.factories import tiny_hf_model


@pytest.fixture(scope="session")
def tiny_hf(tmp_path_factory) -> tuple[Path, int]:
    """A tiny real HF Llama folder (made once per session) and its exact parameter count."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    return folder, tiny_hf_model(folder)


@pytest.fixture
def artifacts():
    """ARTIFACT_ROOT, emptied before the test so leftovers can be asserted on."""
    root = Path(settings.ARTIFACT_ROOT)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return root


def leftover_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture(autouse=True)
def import_worker(db):
    """A registered worker that runs every method, so imports can be submitted (routing)."""
    from django.utils import timezone

    from jobs.methods import method_names
    from jobs.models import Worker

    return Worker.objects.create(hostname="catalog-tests@local", queues=["cpu"],
                                 memory_bytes=24 * 2**30, methods=method_names(device="cpu"),
                                 last_seen=timezone.now())


def run_queued_jobs() -> list:
    """Runs the queued jobs here, as a worker would (the runner itself, no Celery), and returns
    them refreshed."""
    from jobs import runner
    from jobs.models import Job

    jobs = list(Job.objects.filter(status=Job.Status.QUEUED).order_by("pk"))
    for job in jobs:
        runner.execute(job_id=job.pk, worker="catalog-tests@local")
        job.refresh_from_db()
    return jobs
