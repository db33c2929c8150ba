"""python manage.py recommend MODEL_ID --hardware KEY [--devices N] [--ram-gb N] --context N
[--metric kl|kl_p99_9|ratio|same_top|task_<protocol>] [--x disk|memory] [--headroom-gb N] [--tolerance T] [--json]

The Choose page's answer on the command line: the same planner.choose.choose() and the same JSON as
GET /api/planner/choose/<id>. Hardware as `manage.py estimate` takes it: a built-in profile,
node:<hostname> (one of our measured nodes), team:<id> (a saved profile) or custom with its sizes."""

import json

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Model
from planner.choose import AXES, METRICS, ChooseError, choice_json, choose
from planner.cli_hardware import add_hardware_arguments, hardware_from_options
from planner.estimator import EstimatorError, Workload
from planner.forms import catalog_architecture
from planner.presentation import human_bytes


class Command(BaseCommand):
    help = "Recommend a variant of a catalog model for a machine and context (best quality, smallest, fastest)."

    def add_arguments(self, parser):
        parser.add_argument("model_id", type=int)
        add_hardware_arguments(parser, required=True)
        parser.add_argument("--context", type=int, required=True)
        parser.add_argument("--metric", default="kl",
                            help=f"{', '.join(sorted(METRICS))}, or task_<protocol> for a task the model was "
                                 "scored on (an unknown metric's error lists them)")
        parser.add_argument("--x", default="disk", choices=sorted(AXES), help="the size axis of the frontier")
        parser.add_argument("--headroom-gb", type=float, default=0.0,
                            help="GiB the best-quality pick must leave free on the device")
        parser.add_argument("--tolerance", type=float, default=None,
                            help="quality tolerance in the metric's terms (default: the metric's)")
        parser.add_argument("--json", action="store_true", help="print the answer as the API gives it")

    def handle(self, *args, **opts):
        model = Model.objects.filter(pk=opts["model_id"]).first()
        if model is None:
            raise CommandError(f"model_id: no model {opts['model_id']}")
        try:
            hardware = hardware_from_options(opts)
            workload = Workload(runtime="llama.cpp", context=opts["context"])
        except EstimatorError as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from None
        arch, refused = None, ""
        try:
            arch = catalog_architecture(model)
        except EstimatorError as exc:
            refused = exc.message
        try:
            choice = choose(model=model, arch=arch, hardware=hardware if arch else None, workload=workload,
                            metric=opts["metric"], axis=opts["x"], headroom_gb=opts["headroom_gb"],
                            tolerance=opts["tolerance"], planner_refused=refused)
        except ChooseError as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from None
        if opts["json"]:
            self.stdout.write(json.dumps(choice_json(choice), indent=2))
            return
        self.stdout.write(f"{model.name} on {hardware.name} × {hardware.device_count}, context {workload.context:,}; "
                          f"{choice.metric.title}, tolerance {choice.tolerance_text}\n")
        if refused:
            self.stdout.write(f"the planner can't plan this model: {refused}\n")
        for pick in choice.picks:
            c = pick.candidate
            self.stdout.write(f"{pick.title}: " + (f"#{c.variant.pk} {c.variant.label}" if c else "none"))
            self.stdout.write(f"  {pick.reason}")
            if c and c.command:
                self.stdout.write(f"  {c.command}")
        self.stdout.write("\nvariant                          on disk   planned  quality              fit")
        for c in choice.candidates:
            quality = (f"{c.value:g}" + (f" ± {c.unc:g}" if c.unc is not None else "")) if c.usable else c.status
            mark = "*" if c.frontier else " "
            self.stdout.write(f"{mark}#{c.variant.pk:<5} {c.variant.label[:24]:<24} {human_bytes(c.disk_bytes):>9} "
                              f"{human_bytes(c.memory_bytes):>9}  {quality:<20} {c.fit_words}")
        self.stdout.write("* on the frontier")
        if choice.sweep:
            s = choice.sweep
            self.stdout.write(f"\nnothing measured yet: a sweep would make {', '.join(s['types'])} and measure "
                              f"{', '.join(s['measures'])} over {s['chunks']} × {s['context']} tokens; "
                              + (f"the planner puts its scoring at {s['seconds']} s on {s['hardware']} (not counted: "
                                 f"{s['not_counted']})" if s["seconds"] is not None
                                 else f"no planner time: {s['seconds_note']}"))
