import json

from django.core.management.base import BaseCommand, CommandError

from accounts.services import DEFAULT_TEAM, team_get_or_create
from catalog.serializers import model_import_json
from catalog.imports.demo import demo_model_import
from catalog.services import CatalogError


class Command(BaseCommand):
    help = "Registers the demo model (SmolLM2-135M-Instruct Q4_1 GGUF) in a team's catalog."

    def add_arguments(self, parser):
        parser.add_argument("--team", default=DEFAULT_TEAM, help="team name (created if missing)")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, team: str, json: bool, **options):
        try:
            model = demo_model_import(team=team_get_or_create(name=team))
        except CatalogError as exc:
            raise CommandError(str(exc)) from exc
        if json:
            self.stdout.write(_dumps(model_import_json(model)))
        else:
            self.stdout.write(f"Demo model '{model.name}' is in team '{team}' (id {model.pk}).")


def _dumps(data: dict) -> str:
    return json.dumps(data, indent=2)
