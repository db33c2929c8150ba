"""Writes for the planner: team hardware profiles."""

from django.db import IntegrityError, transaction

from accounts.models import Team
from planner.estimator import EstimatorError, Hardware
from planner.models import HardwareProfile


@transaction.atomic
def hardware_profile_create(*, team: Team, user, name: str, kind: str, memory_gb: float,
                            bandwidth_gbs: float, tflops: float, ram_gb: float = 64.0) -> HardwareProfile:
    """Validates through the estimator (so the profile is usable) and saves it.

    Raises EstimatorError(field, message) for bad numbers or a duplicate name in the team.
    """
    name = (name or "").strip()
    if not name:
        raise EstimatorError("name", "is required")
    if team.members.filter(pk=user.pk).count() == 0:
        raise EstimatorError("team", "you are not a member of that team")
    Hardware.custom(name, memory_gb, bandwidth_gbs, tflops, kind=kind, ram_gb=ram_gb)  # raises on bad input
    try:
        with transaction.atomic():
            return HardwareProfile.objects.create(team=team, name=name[:100], kind=kind, memory_gb=memory_gb,
                                                  bandwidth_gbs=bandwidth_gbs, tflops=tflops, ram_gb=ram_gb,
                                                  created_by=user)
    except IntegrityError:
        raise EstimatorError("name", f"team {team.name} already has a profile named {name!r}") from None


def hardware_profile_delete(*, profile: HardwareProfile) -> None:
    profile.delete()


def hardware_from_profile(profile: HardwareProfile, device_count: int = 1) -> Hardware:
    return Hardware.custom(profile.name, profile.memory_gb, profile.bandwidth_gbs, profile.tflops,
                           kind=profile.kind, device_count=device_count, ram_gb=profile.ram_gb,
                           key=profile.key)
