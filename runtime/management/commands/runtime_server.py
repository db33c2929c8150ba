"""`manage.py runtime_server`: the model-serving process (see runtime/server.py)."""

import logging
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from engines import gpu
from runtime.manager import ModelManager
from runtime.server import serve


class Command(BaseCommand):
    help = ("Serve models to the dashboard over loopback HTTP (generate, embed, cancel, status): "
            "Starlette under uvicorn.")
    # The runtime serves no Django URL, view or model: the system checks would only import the
    # dashboard's URLconf and slow every (re)start.
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8100)
        parser.add_argument("--memory-budget-gb", type=float, default=settings.RUNTIME_MEMORY_BUDGET_GB)
        parser.add_argument("--max-concurrent", type=int, default=settings.RUNTIME_MAX_CONCURRENT,
                            help="generations per variant at once")
        parser.add_argument("--queue", type=int, default=settings.RUNTIME_QUEUE,
                            help="requests per variant that may wait for a slot; more get 429")
        parser.add_argument("--queue-timeout", type=float, default=settings.RUNTIME_QUEUE_TIMEOUT)
        parser.add_argument("--idle-seconds", type=float, default=settings.RUNTIME_IDLE_SECONDS)
        parser.add_argument("--threads", type=int, default=settings.RUNTIME_THREADS)

    def handle(self, *args, **opts) -> None:
        if not settings.RUNTIME_TOKEN:
            raise CommandError("RUNTIME_TOKEN must be set")
        if opts["host"] not in {"127.0.0.1", "localhost", "::1"}:
            self.stderr.write(f"warning: listening on {opts['host']}, not loopback")
        if opts["max_concurrent"] < 1 or opts["queue"] < 0:
            raise CommandError("--max-concurrent must be >= 1 and --queue >= 0")
        logging.getLogger("runtime").setLevel(logging.INFO)
        try:  # a cuda node's budget is its GPU's free memory
            budget = gpu.runtime_memory_budget(int(opts["memory_budget_gb"] * 1024**3))
        except gpu.GpuUnavailable as exc:
            raise CommandError(str(exc)) from exc
        manager = ModelManager(
            memory_budget_bytes=budget,
            max_concurrent=opts["max_concurrent"], queue=opts["queue"],
            queue_timeout=opts["queue_timeout"], idle_seconds=opts["idle_seconds"],
            threads=opts["threads"], retry_after=settings.RUNTIME_RETRY_AFTER,
            busy_threads=settings.RUNTIME_THREADS_WHILE_JOB or None,
        )
        serve(host=opts["host"], port=opts["port"], manager=manager, token=settings.RUNTIME_TOKEN,
              artifact_root=Path(settings.ARTIFACT_ROOT))
