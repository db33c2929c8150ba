"""In-worker jobs (imports) have no child process to kill: their progress callback enforces the
soft time limit, and the import's cleanup leaves no rows or files behind."""

import shutil
import uuid

import pytest
from django.utils import timezone

from catalog.models import Model
from catalog.services import demo_model_path
from catalog.uploads import uploads_root
from jobs import runner
from jobs.models import Job, Worker
from jobs.services import job_submit

pytestmark = pytest.mark.django_db  # on_commit never fires: nothing is enqueued


def test_an_import_past_its_soft_time_limit_fails_as_timed_out(teams, settings):
    Worker.objects.create(hostname="imports@n1", queues=["cpu"], device="cpu",
                          memory_bytes=8 * 2**30, methods=["import-upload"], last_seen=timezone.now())
    settings.JOB_TIME_LIMIT_OVERRIDES = {"import-upload": [0.001, 0.001]}
    folder = uploads_root() / uuid.uuid4().hex
    folder.mkdir(parents=True)
    shutil.copy(demo_model_path(), folder / "demo.gguf")
    job = job_submit(team=teams["red"], user=teams["alice"], method="import-upload",
                     params={"staged": str(folder), "name": "demo"}, input_variant=None)
    runner.execute(job_id=job.pk, worker="test@host")
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == "timed out: soft time limit of 0.001 s"
    assert not Model.objects.exists() and not folder.exists()
    assert list((settings.ARTIFACT_ROOT / "tmp").iterdir()) == []
