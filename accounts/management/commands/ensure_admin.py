import os

from django.core.management.base import BaseCommand

from accounts.services import admin_ensure


class Command(BaseCommand):
    help = (
        "Creates the first admin account from QUANTDASH_ADMIN_USER / QUANTDASH_ADMIN_PASSWORD / "
        "QUANTDASH_ADMIN_EMAIL (default user 'admin'; a generated password is printed once)."
    )

    def handle(self, *args, **options):
        username = os.environ.get("QUANTDASH_ADMIN_USER", "admin")
        password = os.environ.get("QUANTDASH_ADMIN_PASSWORD", "")
        email = os.environ.get("QUANTDASH_ADMIN_EMAIL", "")
        user, generated = admin_ensure(username=username, email=email, password=password)
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"Created admin '{username}' with password: {generated}\n"
                    "It is shown only this once; change it under /admin/."
                )
            )
        else:
            self.stdout.write(f"Admin '{user.get_username()}' is ready.")
