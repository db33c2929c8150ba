"""Celery tasks: thin wrappers that take an id and call one service."""

from celery import shared_task
from django.conf import settings

from jobs import node_bench, runner


@shared_task(
    name="jobs.run_job", acks_late=True,
    # A backstop only: the runner enforces each method's own soft and hard limits on its child.
    time_limit=settings.JOB_HARD_TIME_LIMIT_MAX + 300,
)
def run_job(job_id: int) -> None:
    runner.execute(job_id=job_id, worker=run_job.request.hostname or "unknown")


@shared_task(name="jobs.measure_node", time_limit=1800)
def measure_node(hostname: str) -> None:
    """Sent to the node's own queue (Workers page); runs between jobs, like one."""
    node_bench.node_measure_and_store(hostname=hostname)
