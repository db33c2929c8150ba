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


# --- routing across several workers (jobs.routing) ----------------------------------------------
def _worker(hostname, *, gb, methods=("gguf",), queues=("cpu",), device="cpu"):
    from jobs.heartbeat import node_queue

    return Worker.objects.create(hostname=hostname, queues=[*queues, node_queue(hostname)],
                                 device=device, memory_bytes=int(gb * 2**30), methods=list(methods),
                                 last_seen=timezone.now())


def test_a_shared_queue_is_chosen_when_every_worker_on_it_can_run_the_job(teams, demo_variant):
    _worker("a@n1", gb=24)
    _worker("b@n2", gb=16)
    assert _submit(teams, demo_variant).queue == "cpu"


def test_a_job_too_big_for_one_worker_goes_to_the_node_queue_of_one_with_room(teams, demo_variant):
    _worker("big@n1", gb=24)
    _worker("small@n2", gb=0.6)  # the demo's gguf job needs about 0.74 GiB
    assert _submit(teams, demo_variant).queue == "node.big@n1"


def test_a_method_only_one_worker_declares_goes_to_that_worker(teams, demo_variant):
    _worker("quant@n1", gb=24, methods=["gguf"])
    _worker("imports@n2", gb=24, methods=["import-path"])
    assert _submit(teams, demo_variant).queue == "node.quant@n1"


def test_among_capable_workers_the_least_busy_gets_it(teams, demo_variant):
    _worker("busy@n1", gb=24)
    _worker("idle@n2", gb=24)
    _worker("small@n3", gb=0.6)
    Job.objects.create(team=teams["red"], kind="quantize", method="gguf", status=Job.Status.RUNNING,
                       worker="busy@n1", input_variant=demo_variant)
    assert _submit(teams, demo_variant).queue == "node.idle@n2"


def test_a_silent_worker_is_not_chosen_while_a_live_one_can_run_it(teams, demo_variant):
    _worker("gone@n1", gb=24)
    _worker("up@n2", gb=24)
    _worker("small@n3", gb=0.6)
    Worker.objects.filter(hostname="gone@n1").update(last_seen=timezone.now() - timezone.timedelta(hours=1))
    assert _submit(teams, demo_variant).queue == "node.up@n2"


def test_a_reaped_job_is_routed_away_from_the_worker_that_lost_it(teams, demo_variant, settings):
    from jobs.services import jobs_reap

    _worker("lost@n1", gb=24)  # still looks alive: its row goes stale later than the job's heartbeat
    _worker("rescuer@n2", gb=24)
    _worker("small@n3", gb=0.6)
    job = Job.objects.create(team=teams["red"], kind="quantize", method="gguf", queue="node.lost@n1",
                             status=Job.Status.RUNNING, attempts=1, worker="lost@n1",
                             input_variant=demo_variant, estimate={"peak_memory_bytes": 2**30},
                             heartbeat=timezone.now() - timezone.timedelta(minutes=5))
    assert jobs_reap() == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.queue) == (Job.Status.QUEUED, "node.rescuer@n2")
