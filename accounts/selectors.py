from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from accounts.models import Team


def teams_of(user: AbstractBaseUser) -> QuerySet[Team]:
    """The teams whose data this user may see."""
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(members=user)
