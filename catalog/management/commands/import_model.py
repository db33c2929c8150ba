import json as jsonlib
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.services import team_get_or_create
from formats.archives import is_archive
from catalog.imports import import_hub
from catalog.imports.gguf import import_gguf_file
from catalog.imports.hf import import_archive, import_hf_folder
from catalog.serializers import model_import_json
from catalog.services import CatalogError


class Command(BaseCommand):
    help = ("Imports a model into a team's catalog: a .gguf file, an HF model folder, an archive "
            "of one, or a Hugging Face Hub repository (--hub).")

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help=".gguf file, model folder or .zip/.tar(.gz)")
        parser.add_argument("--hub", metavar="REPO_ID", help="a Hub repository id instead of a path")
        parser.add_argument("--revision", default="main")
        parser.add_argument("--team", required=True, help="team name (created if missing)")
        parser.add_argument("--name", default="", help="model name (default: from metadata)")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, path, hub, revision, team, name, json: bool, **options):
        if bool(path) == bool(hub):
            raise CommandError("give either PATH or --hub REPO_ID")
        team_row = team_get_or_create(name=team)
        common = dict(team_id=team_row.pk, user_id=None, name=name)
        try:
            if hub:
                variant = import_hub(repo_id=hub, revision=revision, **common)
            else:
                src = Path(path).resolve()
                source = f"path:{src}"
                if src.is_dir():
                    variant = import_hf_folder(folder=str(src), source=source, **common)
                elif src.suffix.lower() == ".gguf":
                    variant = import_gguf_file(path=str(src), source=source, **common)
                elif is_archive(src.name):
                    variant = import_archive(archive=str(src), source=source, **common)
                elif not src.exists():
                    raise CatalogError(f"{path} does not exist")
                else:
                    raise CatalogError(f"{src.name}: expected a .gguf, a folder or an archive")
        except CatalogError as exc:
            raise CommandError(str(exc)) from exc
        model = variant.model
        if json:
            self.stdout.write(_dumps(model_import_json(model)))
        else:
            self.stdout.write(f"Imported {model.name} ({variant.label}) into team '{team}' "
                              f"(model {model.pk}, variant {variant.pk}).")


def _dumps(data: dict) -> str:
    return jsonlib.dumps(data, indent=2)
