from django.conf import settings
from django.db import models


class Team(models.Model):
    """A group of users that owns models, datasets, jobs and conversations.

    A user belongs to one or more teams; everything a user may see is scoped by their teams.
    """

    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
