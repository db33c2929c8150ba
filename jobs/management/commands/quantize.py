import json

from django.core.management.base import BaseCommand

from jobs.cli import add_run_arguments, raise_if_failed, status_line, submit_and_finish, variant_or_error
from jobs.methods.gptq import DEFAULT_SAMPLES, DEFAULT_SEQ_LEN
from jobs.serializers import job_json


class Command(BaseCommand):
    help = "Quantizes a catalog variant: queue it (default), wait for a worker, or run it inline."

    def add_arguments(self, parser):
        parser.add_argument("variant_id", type=int)
        parser.add_argument("--method", required=True, choices=["gguf", "bnb-int8", "bnb-nf4", "gptq"])
        parser.add_argument("--types", help="GGUF types, e.g. Q8_0,Q4_K_M")
        parser.add_argument("--bits", type=int)
        parser.add_argument("--group-size", type=int)
        parser.add_argument("--dataset", help="calibration dataset id or a text file path")
        # the defaults are the web form's and the API's (one constant in jobs.methods.gptq)
        parser.add_argument("--samples", type=int,
                            help=f"GPTQ calibration windows (default {DEFAULT_SAMPLES}: sized for a CPU node; "
                                 "time grows with samples × seq-len)")
        parser.add_argument("--seq-len", type=int, help=f"GPTQ tokens per window (default {DEFAULT_SEQ_LEN})")
        add_run_arguments(parser)

    def handle(self, *args, **o):
        variant = variant_or_error(o["variant_id"])
        params = {k: v for k, v in {
            "types": o["types"], "bits": o["bits"], "group_size": o["group_size"],
            "dataset": o["dataset"], "samples": o["samples"], "seq_len": o["seq_len"],
        }.items() if v is not None}
        job = submit_and_finish(variant=variant, method=o["method"], params=params,
                                inline=o["inline"], wait=o["wait"], another_copy=o["another_copy"])
        if o["json"]:
            self.stdout.write(json.dumps(job_json(job), indent=2))
        else:
            self.stdout.write(status_line(job))
        raise_if_failed(job)
