import pytest
from django.utils import timezone

from jobs.methods.base import JobError
from jobs.models import Job, Worker
from jobs.services import job_cancel, job_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def cpu_worker(db):
    return Worker.objects.create(hostname="cpu@node1", queues=["cpu"], device="cpu",
                                 memory_bytes=24 * 2**30, methods=["gguf"], last_seen=timezone.now())


def _submit(teams, variant, **kw):
    args = {"team": teams["red"], "user": teams["alice"], "method": "gguf",
            "params": {"types": ["Q8_0", "Q4_K_M"]}, "input_variant": variant}
    args.update(kw)
    return job_submit(**args)


def test_submit_saves_a_routed_job_with_the_planner_estimate(teams, demo_variant, cpu_worker):
    job = _submit(teams, demo_variant)
    assert job.status == Job.Status.QUEUED
    assert job.queue == "cpu"
    assert job.params["types"] == ["Q8_0", "Q4_K_M"]
    assert "requantizing a Q4_1 GGUF" in job.params["warning"]
    # Output bytes = the tensor bytes the estimator predicts, measured equal to llama.cpp's files
    # minus their 1,785,664-byte header (see tests/planner for the per-type pins).
    assert job.estimate["output_bytes_by_type"] == {"Q8_0": 143_025_408, "Q4_K_M": 103_668_480}


def test_the_same_submission_twice_is_one_job(teams, demo_variant, cpu_worker):
    first = _submit(teams, demo_variant)
    second = _submit(teams, demo_variant)
    assert first.pk == second.pk
    assert Job.objects.count() == 1


def test_a_different_submission_is_another_job(teams, demo_variant, cpu_worker):
    _submit(teams, demo_variant)
    _submit(teams, demo_variant, params={"types": ["Q6_K"]})
    assert Job.objects.count() == 2


@pytest.mark.parametrize("params, field, words", [
    ({"types": []}, "types", "at least one"),
    ({"types": ["Q9_9"]}, "types", "Q9_9"),
    ({"types": ["IQ2_XS"]}, "types", "IQ2_XS"),  # needs an importance matrix
])
def test_bad_parameters_name_the_field(teams, demo_variant, cpu_worker, params, field, words):
    with pytest.raises(JobError) as info:
        _submit(teams, demo_variant, params=params)
    assert field in info.value.errors
    assert words in info.value.errors[field]
    assert Job.objects.count() == 0


def test_an_unknown_method_is_refused(teams, demo_variant, cpu_worker):
    with pytest.raises(JobError) as info:
        _submit(teams, demo_variant, method="awq-magic")
    assert "method" in info.value.errors


def test_another_teams_variant_is_refused(teams, demo_variant, cpu_worker):
    with pytest.raises(JobError, match="not in this team"):
        _submit(teams, demo_variant, team=teams["blue"], user=teams["bob"])


def test_a_job_no_worker_could_ever_run_is_refused(teams, demo_variant):
    Worker.objects.create(hostname="tiny@node", queues=["cpu"], methods=["gguf"],
                          memory_bytes=64 * 2**20, last_seen=timezone.now())
    with pytest.raises(JobError, match="largest worker that runs it has 0.1 GiB"):
        _submit(teams, demo_variant)
    Worker.objects.all().delete()
    with pytest.raises(JobError, match="no worker node can run gguf"):
        _submit(teams, demo_variant)


def test_gpu_queue_is_chosen_only_for_a_gpu_worker(teams, demo_variant, cpu_worker):
    Worker.objects.create(hostname="gpu@node2", queues=["gpu"], device="cuda", methods=["gguf"],
                          memory_bytes=80 * 2**30, last_seen=timezone.now())
    assert _submit(teams, demo_variant).queue == "gpu"


def test_cancel_of_a_queued_job_is_immediate(teams, demo_variant, cpu_worker):
    job = job_cancel(job=_submit(teams, demo_variant))
    assert job.status == Job.Status.CANCELLED
