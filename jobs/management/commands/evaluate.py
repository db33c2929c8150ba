from django.core.management.base import BaseCommand

from jobs.cli import (add_run_arguments, evaluations_json, raise_if_failed, status_line, submit_and_finish,
                      variant_or_error)


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
        add_run_arguments(parser)

    def handle(self, *args, **o):
        variant = variant_or_error(o["variant_id"])
        params = {k: v for k, v in {
            "dataset": o["dataset"], "mode": o["mode"], "context": o["context"],
            "chunks": o["chunks"], "reference": o["reference"], "threads": o["threads"],
            "speed": False if o["no_speed"] else None,
        }.items() if v is not None}
        job = submit_and_finish(variant=variant, method="evaluate", params=params,
                                inline=o["inline"], wait=o["wait"], another_copy=o["another_copy"])
        evaluations = list(job.evaluations.order_by("pk"))
        if o["json"]:
            self.stdout.write(evaluations_json(job, variant))
        else:
            self.stdout.write(status_line(job))
            for e in evaluations:
                numbers = ", ".join(f"{k}={v}" for k, v in e.metrics.items())
                self.stdout.write(f"{e.kind}: {numbers}")
            if evaluations:
                m = evaluations[0].method
                self.stdout.write(f"method: {m.get('scheme', '')}; context {m.get('context')}, "
                                  f"{m.get('chunks')} chunks, tokenizer {m.get('tokenizer')}, "
                                  f"engine {m.get('engine')}, tokens sha256 {m.get('tokens_sha256')}")
        raise_if_failed(job)
