import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import Team

DEFAULT_TEAM = "default"


def team_get_or_create(*, name: str) -> Team:
    team, _ = Team.objects.get_or_create(name=name)
    return team


@transaction.atomic
def admin_ensure(*, username: str, email: str = "", password: str = "") -> tuple[object, str | None]:
    """Creates the first admin if missing and puts it in the default team.

    Returns (user, generated_password). The password is generated (and returned, to be printed
    once) only when the user is new and none was given; an existing user is left as it is.
    """
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    generated = None
    if user is None:
        if not password:
            password = generated = secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=username, email=email, password=password)
    team_get_or_create(name=DEFAULT_TEAM).members.add(user)
    return user, generated
