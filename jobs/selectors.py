from django.db.models import QuerySet

from jobs.models import Job


def jobs_visible_to(user) -> QuerySet[Job]:
    if not user.is_authenticated:
        return Job.objects.none()
    return Job.objects.filter(team__members=user).distinct().select_related("team")
