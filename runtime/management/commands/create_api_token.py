"""`manage.py create_api_token USERNAME [--name NAME]`: makes an API token and prints it once."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from runtime.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for the OpenAI-compatible API and print it (it is not stored)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="command line")

    def handle(self, *args, username: str, name: str, **opts) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        _token, raw = api_token_create(user=user, name=name)
        self.stdout.write(raw)
