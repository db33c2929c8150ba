"""Team-scoped reads: every catalog query a view makes goes through these."""

from dataclasses import dataclass, field

from django.db.models import Q, QuerySet, Sum

from catalog.models import Dataset, File, Model, TaskSet, Variant


def models_visible_to(user) -> QuerySet[Model]:
    if not user.is_authenticated:
        return Model.objects.none()
    return Model.objects.filter(team__in=user.teams.all())


def variants_visible_to(user) -> QuerySet[Variant]:
    if not user.is_authenticated:
        return Variant.objects.none()
    return Variant.objects.filter(model__team__in=user.teams.all())


def runnable_variants_visible_to(user) -> QuerySet[Variant]:
    """The variants that are model weights one can chat with, evaluate or quantize: every visible
    variant but the artifacts made to quantize others (importance matrices)."""
    return variants_visible_to(user).exclude(format=Variant.Format.IMATRIX)


def imatrices_visible_to(user, *, model_id: int | None = None) -> QuerySet[Variant]:
    """The importance matrices the user may see, newest first (of one model, given its id)."""
    imatrices = variants_visible_to(user).filter(format=Variant.Format.IMATRIX)
    if model_id is not None:
        imatrices = imatrices.filter(model_id=model_id)
    return imatrices.order_by("-created_at", "-pk")


@dataclass
class ImatrixInfo:
    """What an importance matrix was computed from, as its imatrix job recorded it in params
    (jobs/methods/imatrix.py imatrix_params: "dataset" {"id", "name", "sha256"}, "chunks_used"
    / "chunks_requested", "context"), with the dataset's current name when it still exists."""

    variant: Variant | None  # None: made in a GGUF job and known only from its record
    dataset: str
    chunks: int | None
    context: int | None

    @property
    def lineage_label(self) -> str:
        return f"Importance matrix · {self.dataset} · {self.chunks or '?'} chunks × {self.context or '?'}"

    @property
    def choice_label(self) -> str:
        made = self.variant.created_at.strftime("%Y-%m-%d %H:%M") if self.variant.created_at else "?"
        return f"{self.dataset}, {self.chunks or '?'} × {self.context or '?'}, {made} (#{self.variant.pk})"


def _recorded_dataset(params: dict) -> tuple[int | None, str | None]:
    dataset = params.get("dataset")
    if isinstance(dataset, dict):
        dataset_id = dataset.get("id")
        return (dataset_id if isinstance(dataset_id, int) else None), dataset.get("name")
    return (dataset if isinstance(dataset, int) else None), params.get("dataset_name")


def imatrix_infos(variants) -> dict[int, ImatrixInfo]:
    """{variant id: ImatrixInfo} for the importance matrices among `variants` (one query for
    their datasets' current names)."""
    imatrices = [v for v in variants if v.format == Variant.Format.IMATRIX]
    recorded = {v.pk: _recorded_dataset(v.params or {}) for v in imatrices}
    ids = {dataset_id for dataset_id, _ in recorded.values() if dataset_id is not None}
    names = dict(Dataset.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
    infos = {}
    for v in imatrices:
        dataset_id, name = recorded[v.pk]
        p = v.params or {}
        infos[v.pk] = ImatrixInfo(
            v, names.get(dataset_id) or name or "unknown dataset",
            p.get("chunks_used") or p.get("chunks_requested"), p.get("context"))
    return infos


def files_visible_to(user) -> QuerySet[File]:
    if not user.is_authenticated:
        return File.objects.none()
    return File.objects.filter(variant__model__team__in=user.teams.all())


def datasets_visible_to(user) -> QuerySet[Dataset]:
    if not user.is_authenticated:
        return Dataset.objects.none()
    return Dataset.objects.filter(team__in=user.teams.all())


def tasksets_visible_to(user) -> QuerySet[TaskSet]:
    if not user.is_authenticated:
        return TaskSet.objects.none()
    return TaskSet.objects.filter(team__in=user.teams.all())


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
    # This variant is an importance matrix: what it was computed from.
    imatrix: ImatrixInfo | None = None
    # This variant was quantized with an importance matrix (its params["imatrix"]): which one.
    quantized_with: ImatrixInfo | None = None


def lineage(model: Model) -> list[LineageNode]:
    """The model's variants as a forest following parent links (base → F16 → Q4_K_M ...); an
    importance matrix hangs under the variant it was computed on."""
    variants = list(model.variants.prefetch_related("files").order_by("created_at", "pk"))
    infos = imatrix_infos(variants)
    nodes = {v.pk: LineageNode(v, imatrix=infos.get(v.pk), quantized_with=_used_imatrix(v, infos))
             for v in variants}
    roots = []
    for v in variants:
        parent = nodes.get(v.parent_id)
        (parent.children if parent else roots).append(nodes[v.pk])
    return roots


def _used_imatrix(variant: Variant, infos: dict[int, ImatrixInfo]) -> ImatrixInfo | None:
    """The importance matrix a GGUF variant was quantized with, from the record its job wrote in
    params["imatrix"] ({"variant": id or None when made in the job, "dataset", "chunks_used",
    "context"}): the catalog one when it is among the model's, else what the record says."""
    record = (variant.params or {}).get("imatrix")
    if not isinstance(record, dict):
        return None
    if isinstance(record.get("variant"), int) and record["variant"] in infos:
        return infos[record["variant"]]
    _, name = _recorded_dataset(record)
    return ImatrixInfo(None, name or "unknown dataset", record.get("chunks_used"), record.get("context"))
