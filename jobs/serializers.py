"""Plain dicts for JSON output of jobs (CLI and API share these)."""

from catalog.serializers import variant_json
from jobs.models import Job


def job_json(job: Job) -> dict:
    return {
        "job": job.pk,
        "kind": job.kind,
        "method": job.method,
        "status": job.status,
        "queue": job.queue,
        "input_variant": job.input_variant_id,
        "params": job.params,
        "progress": round(job.progress, 1),
        "stage": job.stage,
        "eta_seconds": job.eta_seconds,
        "attempts": job.attempts,
        "error": job.error,
        "estimate": job.estimate,
        "worker": job.worker,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        # sorted() over .all(), not .order_by(): a list view prefetches outputs and their files,
        # and a new queryset would discard that (two queries per job).
        "outputs": [
            {**variant_json(v), "quant_type": v.quant_type}
            for v in sorted(job.outputs.all(), key=lambda v: v.pk)
        ],
    }
