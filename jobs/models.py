from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Team


class Worker(models.Model):
    """A Celery worker node, as it declares itself in its heartbeat.

    The worker writes this row when it starts and every WORKER_HEARTBEAT_SECONDS after; routing
    reads it to know which queues have workers able to run a method with a job's memory needs.
    """

    hostname = models.CharField(max_length=255, unique=True)
    queues = models.JSONField(default=list)
    device = models.CharField(max_length=20, default="cpu", help_text="cpu or cuda")
    device_name = models.CharField(max_length=200, blank=True)
    memory_bytes = models.BigIntegerField(default=0, help_text="RAM, or GPU memory on a gpu node")
    ram_bytes = models.BigIntegerField(default=0, help_text="the host's RAM (on a gpu node: what llama.cpp can "
                                                            "keep layers and experts in beside the GPU)")
    methods = models.JSONField(default=list, help_text="job methods this worker can run")
    started_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    # What the node measured of itself (jobs/node_bench.py): bandwidth, llama-bench pp/tg per scheme,
    # conditions; {"status": "measuring"} while a measurement runs. The heartbeat never writes these.
    measurements = models.JSONField(default=dict, blank=True)
    measured_at = models.DateTimeField(null=True, blank=True)
    # A cuda node's GPU memory as nvidia-smi reported it at the last heartbeat: {"used_bytes",
    # "total_bytes"} or {"error"}; {} on a cpu node.
    gpu_memory = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname

    @property
    def is_alive(self) -> bool:
        return timezone.now() - self.last_seen < timedelta(seconds=settings.WORKER_STALE_SECONDS)


class Job(models.Model):
    """One unit of background work: an import, a quantization or an evaluation.

    The row is the single source of truth. Status moves only through the lifecycle methods in
    jobs.services, along these transitions:

        queued  -> running | cancelled
        running -> succeeded | failed | cancelled | queued (retry after a lost worker)
    """

    class Kind(models.TextChoices):
        IMPORT = "import"
        QUANTIZE = "quantize"
        EVALUATE = "evaluate"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="jobs")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    method = models.CharField(max_length=40)
    params = models.JSONField(default=dict, blank=True)
    # A deleted variant keeps its jobs' history (catalog refuses deleting one a live job uses).
    input_variant = models.ForeignKey(
        "catalog.Variant", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    queue = models.CharField(max_length=255, default="cpu", help_text="cpu, gpu or node.<worker>")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    needs_enqueue = models.BooleanField(default=False, help_text="its message never reached Redis")
    progress = models.FloatField(default=0)
    stage = models.CharField(max_length=60, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    estimate = models.JSONField(default=dict, blank=True, help_text="planner's peak memory/output size")
    outputs = models.ManyToManyField("catalog.Variant", blank=True, related_name="made_by_jobs")
    # What an evaluate job measured (catalog rows; the catalog layer has no link back to jobs).
    evaluations = models.ManyToManyField("catalog.Evaluation", blank=True, related_name="jobs")
    worker = models.CharField(max_length=255, blank=True)
    idempotency_key = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    # The sweep this job is a step of (jobs/sweeps.py), and which step ("quantize:Q4_K_M" ...).
    sweep = models.ForeignKey("jobs.Sweep", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="jobs")
    sweep_step = models.CharField(max_length=60, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Job {self.pk} {self.kind}/{self.method} {self.status}"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    @property
    def subject(self) -> str:
        """What the job works on, for pages: the input model, or what an import brings in."""
        if self.input_variant_id and self.input_variant:
            return f"{self.input_variant.model.name} ({self.input_variant.label})"
        p = self.params
        return str(p.get("name") or p.get("repo_id") or p.get("path") or "upload")


class Sweep(models.Model):
    """"Measure quants" on one base variant: an importance matrix, the candidate quantizations and
    one evaluation of each against the base, run as ordinary jobs (Job.sweep) by jobs/sweeps.py.

    The row holds what was asked (params); the steps and their states are worked out from the
    jobs and the catalog each time (jobs.sweeps.sweep_steps), so nothing here can disagree with
    them. `advancing_until` is a short lease, taken with a conditional update, so that only one
    process submits a sweep's next steps at a time; `advance_pending` asks its holder to look once
    more. `finished_at` is set once no step can move any more."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="sweeps")
    # A sweep is about its base: deleting the base deletes the sweep (its jobs stay, unlinked).
    base = models.ForeignKey("catalog.Variant", on_delete=models.CASCADE, related_name="sweeps")
    params = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    cancel_requested = models.BooleanField(default=False)
    finished_at = models.DateTimeField(null=True, blank=True)
    advancing_until = models.DateTimeField(null=True, blank=True)
    advance_pending = models.BooleanField(default=False)
    # Steps whose job submission was refused ({step key: why}): not tried again by this sweep.
    refused = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Sweep {self.pk} of variant {self.base_id}"
