"""Team-scoped reads: every catalog query a view makes goes through these."""

from django.db.models import QuerySet

from catalog.models import Model, Variant


def models_visible_to(user) -> QuerySet[Model]:
    if not user.is_authenticated:
        return Model.objects.none()
    return Model.objects.filter(team__members=user).distinct()


def variants_visible_to(user) -> QuerySet[Variant]:
    if not user.is_authenticated:
        return Variant.objects.none()
    return Variant.objects.filter(model__team__members=user).distinct()
