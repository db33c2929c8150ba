import json
import socket
import time

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Variant
from jobs import runner
from jobs.methods.base import JobError
from jobs.models import Job
from jobs.services import job_submit


class Command(BaseCommand):
    help = ("Evaluates a catalog variant (perplexity, KL vs a reference, speed, memory): queue it "
            "(default), wait for a worker, or run it inline; prints the scores and how they were measured.")

    def add_arguments(self, parser):
        parser.add_argument("variant_id", type=int)
        parser.add_argument("--dataset", required=True, help="catalog dataset id or a text file path")
        parser.add_argument("--mode", choices=["quick", "full"])
        parser.add_argument("--context", type=int)
        parser.add_argument("--chunks", type=int, help="0 = every chunk the text has")
        parser.add_argument("--reference", help="variant id for KL, 'root' (default) or 'none'")
        parser.add_argument("--no-speed", action="store_true")
        parser.add_argument("--threads", type=int)
        how = parser.add_mutually_exclusive_group()
        how.add_argument("--wait", action="store_true", help="queue it and wait for the result")
        how.add_argument("--inline", action="store_true", help="run it in this process, no worker")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        variant = Variant.objects.select_related("model__team").filter(pk=o["variant_id"]).first()
        if variant is None:
            raise CommandError(f"no variant {o['variant_id']}")
        params = {k: v for k, v in {
            "dataset": o["dataset"], "mode": o["mode"], "context": o["context"],
            "chunks": o["chunks"], "reference": o["reference"], "threads": o["threads"],
            "speed": False if o["no_speed"] else None,
        }.items() if v is not None}
        try:
            job = job_submit(team=variant.model.team, user=None, method="evaluate", params=params,
                             input_variant=variant, enqueue=not o["inline"])
        except JobError as exc:
            raise CommandError(str(exc)) from exc
        if o["inline"]:
            runner.execute(job_id=job.pk, worker=f"inline@{socket.gethostname()}")
        elif o["wait"]:
            while not Job.objects.get(pk=job.pk).is_final:
                time.sleep(1)
        job.refresh_from_db()
        evaluations = list(job.evaluations.order_by("pk"))
        if o["json"]:
            self.stdout.write(json.dumps({
                "job": job.pk, "status": job.status, "error": job.error, "variant": variant.pk,
                "evaluations": [{"id": e.pk, "kind": e.kind, "metrics": e.metrics, "method": e.method}
                                for e in evaluations]}, indent=2))
        else:
            self.stdout.write(f"job {job.pk}: {job.status} {job.error}".rstrip())
            for e in evaluations:
                numbers = ", ".join(f"{k}={v}" for k, v in e.metrics.items())
                self.stdout.write(f"{e.kind}: {numbers}")
            if evaluations:
                m = evaluations[0].method
                self.stdout.write(f"method: {m.get('scheme', '')}; context {m.get('context')}, "
                                  f"{m.get('chunks')} chunks, tokenizer {m.get('tokenizer')}, "
                                  f"engine {m.get('engine')}, tokens sha256 {m.get('tokens_sha256')}")
        if job.status in (Job.Status.FAILED, Job.Status.CANCELLED):
            raise CommandError(f"job {job.pk} {job.status}: {job.error}")
