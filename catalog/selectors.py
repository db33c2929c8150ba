"""Team-scoped reads: every catalog query a view makes goes through these."""

from dataclasses import dataclass, field

from django.db.models import Q, QuerySet, Sum

from catalog.models import Dataset, File, Model, Variant


def models_visible_to(user) -> QuerySet[Model]:
    if not user.is_authenticated:
        return Model.objects.none()
    return Model.objects.filter(team__in=user.teams.all())


def variants_visible_to(user) -> QuerySet[Variant]:
    if not user.is_authenticated:
        return Variant.objects.none()
    return Variant.objects.filter(model__team__in=user.teams.all())


def files_visible_to(user) -> QuerySet[File]:
    if not user.is_authenticated:
        return File.objects.none()
    return File.objects.filter(variant__model__team__in=user.teams.all())


def datasets_visible_to(user) -> QuerySet[Dataset]:
    if not user.is_authenticated:
        return Dataset.objects.none()
    return Dataset.objects.filter(team__in=user.teams.all())


SORTS = {
    "name": "name", "-name": "-name",
    "params": "param_count", "-params": "-param_count",
    "size": "disk_bytes", "-size": "-disk_bytes",
    "newest": "-created_at", "oldest": "created_at",
}


@dataclass
class CatalogFilters:
    """The list page's query string, already cleaned (see catalog.forms.CatalogFilterForm)."""

    q: str = ""
    format: str = ""
    team: int | None = None
    tag: str = ""
    min_params: int | None = None  # parameter counts, e.g. 100_000_000 for "100M"
    max_params: int | None = None
    sort: str = "name"


def catalog_search(user, filters: CatalogFilters) -> list[Model]:
    models = models_visible_to(user).select_related("team").annotate(
        disk_bytes=Sum("variants__files__bytes")
    )
    if filters.q:
        models = models.filter(Q(name__icontains=filters.q) | Q(architecture__icontains=filters.q))
    if filters.format:
        models = models.filter(pk__in=Variant.objects.filter(format=filters.format)
                               .values("model_id"))
    if filters.team:
        models = models.filter(team_id=filters.team)
    if filters.min_params is not None:
        models = models.filter(param_count__gte=filters.min_params)
    if filters.max_params is not None:
        models = models.filter(param_count__lte=filters.max_params)
    models = models.order_by(SORTS.get(filters.sort, "name"), "pk").prefetch_related("variants")
    result = list(models)
    if filters.tag:  # JSON list membership, done here because SQLite has no JSON `contains`
        tag = filters.tag.lower()
        result = [m for m in result if tag in {str(t).lower() for t in m.tags}]
    return result


def tags_visible_to(user) -> list[str]:
    tags: set[str] = set()
    for model_tags in models_visible_to(user).values_list("tags", flat=True):
        tags.update(str(t) for t in model_tags or [])
    return sorted(tags)


@dataclass
class LineageNode:
    variant: Variant
    children: list["LineageNode"] = field(default_factory=list)


def lineage(model: Model) -> list[LineageNode]:
    """The model's variants as a forest following parent links (base → F16 → Q4_K_M ...)."""
    variants = list(model.variants.prefetch_related("files").order_by("created_at", "pk"))
    nodes = {v.pk: LineageNode(v) for v in variants}
    roots = []
    for v in variants:
        parent = nodes.get(v.parent_id)
        (parent.children if parent else roots).append(nodes[v.pk])
    return roots
