"""`manage.py runtime_supervisor [runtime_server options]`: runs the runtime server and restarts it
when it exits (runtime/supervisor.py). Options after the command go to runtime_server unchanged."""

import logging
import sys

from django.core.management.base import BaseCommand

from runtime.supervisor import supervise


class Command(BaseCommand):
    help = "Run runtime_server and restart it whenever it exits."

    def add_arguments(self, parser) -> None:
        parser.add_argument("server_args", nargs="*", help="passed to runtime_server (after --)")

    def handle(self, *args, server_args: list[str], **opts) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        sys.exit(supervise(server_args))
