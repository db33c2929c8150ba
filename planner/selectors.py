"""Team-scoped reads for the planner."""

from django.db.models import QuerySet

from planner.models import HardwareProfile


def hardware_profiles_visible_to(user) -> QuerySet[HardwareProfile]:
    if not user.is_authenticated:
        return HardwareProfile.objects.none()
    return HardwareProfile.objects.filter(team__in=user.teams.all()).select_related("team")
