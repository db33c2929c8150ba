import json
import socket
import time

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Variant
from jobs import runner
from jobs.methods.base import JobError
from jobs.models import Job
from jobs.serializers import job_json
from jobs.services import job_submit


class Command(BaseCommand):
    help = "Quantizes a catalog variant: queue it (default), wait for a worker, or run it inline."

    def add_arguments(self, parser):
        parser.add_argument("variant_id", type=int)
        parser.add_argument("--method", required=True, choices=["gguf", "bnb-int8", "bnb-nf4", "gptq"])
        parser.add_argument("--types", help="GGUF types, e.g. Q8_0,Q4_K_M")
        parser.add_argument("--bits", type=int)
        parser.add_argument("--group-size", type=int)
        parser.add_argument("--dataset", help="calibration dataset id or a text file path")
        parser.add_argument("--samples", type=int)
        parser.add_argument("--seq-len", type=int)
        how = parser.add_mutually_exclusive_group()
        how.add_argument("--wait", action="store_true", help="queue it and wait for the result")
        how.add_argument("--inline", action="store_true", help="run it in this process, no worker")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        variant = Variant.objects.select_related("model__team").filter(pk=o["variant_id"]).first()
        if variant is None:
            raise CommandError(f"no variant {o['variant_id']}")
        params = {k: v for k, v in {
            "types": o["types"], "bits": o["bits"], "group_size": o["group_size"],
            "dataset": o["dataset"], "samples": o["samples"], "seq_len": o["seq_len"],
        }.items() if v is not None}
        try:
            job = job_submit(team=variant.model.team, user=None, method=o["method"], params=params,
                             input_variant=variant, enqueue=not o["inline"])
        except JobError as exc:
            raise CommandError(str(exc)) from exc
        if o["inline"]:
            runner.execute(job_id=job.pk, worker=f"inline@{socket.gethostname()}")
        elif o["wait"]:
            while not Job.objects.get(pk=job.pk).is_final:
                time.sleep(1)
        job.refresh_from_db()
        if o["json"]:
            self.stdout.write(json.dumps(job_json(job), indent=2))
        else:
            self.stdout.write(f"job {job.pk}: {job.status} {job.error}".rstrip())
        if job.status in (Job.Status.FAILED, Job.Status.CANCELLED):
            raise CommandError(f"job {job.pk} {job.status}: {job.error}")
