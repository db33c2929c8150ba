import json
import time

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Model
from jobs.methods.base import JobError
from jobs.models import Sweep
from jobs.sweeps import sweep_json, sweep_steps, sweep_submit


class Command(BaseCommand):
    help = ("Measure quants: quantizes a catalog model's base variant to several candidates and "
            "evaluates each against the base on a held-out text, as jobs; what already exists "
            "with the same inputs is used, not made again.")

    def add_arguments(self, parser):
        parser.add_argument("model_id", type=int)
        parser.add_argument("--base", type=int,
                            help="base variant id (default: the model's first GGUF or HF variant)")
        parser.add_argument("--types", help="GGUF types, e.g. Q8_0,Q4_K_M (default: the sweep's 8)")
        parser.add_argument("--hf-methods", help="HF base: bnb-nf4,bnb-int8,gptq ('' for none)")
        parser.add_argument("--calibration", help="calibration dataset id (matrix, GPTQ)")
        parser.add_argument("--evaluate-on", required=True, help="held-out dataset id")
        parser.add_argument("--context", type=int)
        parser.add_argument("--chunks", type=int)
        parser.add_argument("--no-speed", action="store_true", help="skip the speed measurement")
        parser.add_argument("--wait", action="store_true", help="wait until the sweep is final")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        model = Model.objects.select_related("team").filter(pk=o["model_id"]).first()
        if model is None:
            raise CommandError(f"no model {o['model_id']}")
        bases = model.variants.filter(format__in=["gguf", "hf"])
        base = bases.filter(pk=o["base"]).first() if o["base"] else bases.first()
        if base is None:
            raise CommandError(f"base: no GGUF or HF variant {o['base'] or ''} of {model.name}".replace("  ", " "))
        params = {k: v for k, v in {
            "types": o["types"], "hf_methods": o["hf_methods"], "calibration": o["calibration"],
            "evaluation": o["evaluate_on"], "context": o["context"], "chunks": o["chunks"],
            "speed": False if o["no_speed"] else None,
        }.items() if v is not None}
        try:
            sweep, steps = sweep_submit(team=model.team, user=None, base=base, params=params)
        except JobError as exc:
            raise CommandError(str(exc)) from exc
        while o["wait"] and sweep is not None and Sweep.objects.get(pk=sweep.pk).finished_at is None:
            time.sleep(1)
        if sweep is not None:
            sweep.refresh_from_db()
            steps = sweep_steps(team=sweep.team, base=base, params=sweep.params, sweep=sweep)
        data = sweep_json(sweep, steps)
        if o["json"]:
            self.stdout.write(json.dumps(data, indent=2))
        else:
            head = (f"sweep {sweep.pk}: {data['status']}, {data['finished']} of {data['total']} steps "
                    "finished" if sweep else "everything is already measured: nothing started")
            self.stdout.write(head)
            for s in data["steps"]:
                made = f" -> variant {s['output']}" if s["output"] else ""
                job = f" job {s['job'] or s['measured_by']}" if s["job"] or s["measured_by"] else ""
                self.stdout.write(f"  {s['label']}: {s['state']}{job}{made} {s['note']}".rstrip())
        if data["status"] in ("failed", "cancelled"):
            raise CommandError(f"sweep {sweep.pk} {data['status']}")
