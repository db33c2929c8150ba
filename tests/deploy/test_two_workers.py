"""Several workers on one machine, standing in for a cluster: separate Celery processes that share
Redis, the database and ARTIFACT_ROOT, each declaring its own memory and methods
(WORKER_MEMORY_GB, WORKER_METHODS) and consuming the shared `cpu` queue plus its node queue.

- alpha: 24 GB, only gguf — the big quantization node.
- beta: 0.6 GB, every method — a small node (the demo's gguf job needs about 0.74 GiB).

Jobs land where they can run: by memory (gguf -> alpha), by capability (import-path -> beta);
and a job whose worker is killed with SIGKILL is retried by the reaper on another capable node.
"""

import os
import signal

import pytest

from jobs.models import Job, Worker
from jobs.services import job_submit
from tests.support import processes
from tests.support.fixtures import stop_workers_and_forget
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TYPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M", "Q3_K_M"]


class Node:
    def __init__(self, name: str, session_dir, **env: str):
        self.name = name
        self.process = processes.start_worker(hostname=f"{name}@%h", queues="cpu",
                                              log=session_dir / f"worker-{name}.log", **env)

    @property
    def hostname(self) -> str:
        row = Worker.objects.filter(hostname__startswith=f"{self.name}@").first()
        return row.hostname if row else ""

    def wait_declared(self) -> None:
        """Its heartbeat row is in (again: each test empties the tables; the next beat rewrites it)."""
        wait_until(lambda: self.process.poll() is not None or self.hostname, 60,
                   what=f"worker {self.name}'s heartbeat")
        assert self.process.poll() is None, f"worker {self.name} exited"

    def stop(self) -> None:
        processes.stop(self.process)


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker, redis_server, session_dir):
    nodes = {
        "alpha": Node("alpha", session_dir, WORKER_MEMORY_GB="24", WORKER_METHODS="gguf"),
        "beta": Node("beta", session_dir, WORKER_MEMORY_GB="0.6"),
    }
    yield nodes
    stop_workers_and_forget(django_db_blocker, [(node.process, f"{name}@%h")
                                                for name, node in nodes.items()])


@pytest.fixture
def nodes(cluster, db):
    for node in cluster.values():
        node.wait_declared()
    return cluster


def _wait_final(job: Job, timeout: float = 180) -> Job:
    wait_until(lambda: Job.objects.get(pk=job.pk).is_final, timeout, interval=0.5,
               what=f"job {job.pk} to finish")
    job.refresh_from_db()
    return job


def test_the_nodes_declare_their_memory_methods_and_node_queues(nodes):
    alpha = Worker.objects.get(hostname=nodes["alpha"].hostname)
    beta = Worker.objects.get(hostname=nodes["beta"].hostname)
    assert alpha.methods == ["gguf"]
    assert alpha.memory_bytes == 24 * 2**30
    assert "import-path" in beta.methods and "gguf" in beta.methods
    assert beta.memory_bytes == int(0.6 * 2**30)
    assert alpha.queues == sorted(["cpu", f"node.{alpha.hostname}"])
    assert beta.queues == sorted(["cpu", f"node.{beta.hostname}"])


def test_a_job_too_big_for_the_small_node_runs_on_the_big_one(nodes, teams, demo_variant):
    job = job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                     params={"types": ["Q8_0"]}, input_variant=demo_variant)
    assert job.estimate["peak_memory_bytes"] > 0.6 * 2**30
    assert job.queue == f"node.{nodes['alpha'].hostname}"
    job = _wait_final(job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.worker == nodes["alpha"].hostname
    assert [v.quant_type for v in job.outputs.all()] == ["Q8_0"]


def test_a_method_only_one_node_declares_runs_there(nodes, teams, demo_variant):
    teams["alice"].is_staff = True  # importing from a server path is for staff
    teams["alice"].save()
    job = job_submit(team=teams["red"], user=teams["alice"], method="import-path",
                     params={"path": str(demo_variant.files.get().absolute_path), "name": "copy"},
                     input_variant=None)
    assert job.queue == f"node.{nodes['beta'].hostname}"
    job = _wait_final(job, 120)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.worker == nodes["beta"].hostname


def test_a_job_whose_node_is_killed_finishes_on_another_node(
        nodes, teams, demo_variant, session_dir):
    """gamma joins (24 GB, gguf); the job goes to alpha or gamma by name (beta is too small), its
    node is killed with SIGKILL mid-job, the survivor's reaper requeues it to the survivor's node
    queue, and it finishes there once, with every output registered once."""
    gamma = Node("gamma", session_dir, WORKER_MEMORY_GB="24", WORKER_METHODS="gguf")
    try:
        gamma.wait_declared()
        job = job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                         params={"types": TYPES}, input_variant=demo_variant)
        wait_until(lambda: Job.objects.get(pk=job.pk).progress > 5, 120, what="the job to run")
        job.refresh_from_db()
        first = job.worker
        victim, survivor = ((nodes["alpha"], gamma) if first == nodes["alpha"].hostname
                            else (gamma, nodes["alpha"]))
        assert first == victim.hostname and job.queue == f"node.{first}"
        os.killpg(victim.process.pid, signal.SIGKILL)  # worker, pool process, and the job with them
        victim.process.wait(10)

        job = _wait_final(job, 240)
        assert job.status == Job.Status.SUCCEEDED, job.error
        assert job.attempts == 2
        assert job.worker == survivor.hostname
        assert job.queue == f"node.{survivor.hostname}"
        assert sorted(v.quant_type for v in job.outputs.all()) == sorted(TYPES)
    finally:
        gamma.stop()
