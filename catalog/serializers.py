"""Plain dicts for JSON output of catalog objects (CLI and API share these)."""

from django.urls import reverse

from catalog.models import Dataset, File, Model, TaskSet, Variant


def file_json(f: File, *, api: bool = False) -> dict:
    if api:  # clients get a download URL, not a server path
        return {"id": f.pk, "path": f.path, "bytes": f.bytes, "sha256": f.sha256,
                "download": reverse("catalog:download", args=[f.pk])}
    return {"path": str(f.absolute_path), "bytes": f.bytes, "sha256": f.sha256}


def variant_json(v: Variant, *, api: bool = False) -> dict:
    data = {
        "id": v.pk,
        "format": v.format,
        "quant_type": v.quant_type,
        "bits_per_weight": v.bits_per_weight,
        "parent": v.parent_id,
        "files": [file_json(f, api=api) for f in v.files.all()],
    }
    if api:
        data.update(model=v.model_id, params=v.params, metrics=v.metrics,
                    tool_versions=v.tool_versions, created_at=v.created_at.isoformat())
    return data


def model_json(m: Model, *, variants: bool = True) -> dict:
    data = {
        "id": m.pk, "name": m.name, "team": m.team.name, "architecture": m.architecture,
        "param_count": m.param_count, "license": m.license, "tags": m.tags, "source": m.source,
        "created_at": m.created_at.isoformat(),
    }
    if variants:
        data["config"] = m.config
        data["model_card"] = m.model_card
        data["variants"] = [variant_json(v, api=True) for v in m.variants.all()]
    else:
        data["variants"] = [v.pk for v in m.variants.all()]
    return data


def dataset_json(d: Dataset) -> dict:
    return {"id": d.pk, "name": d.name, "kind": d.kind, "path": d.path, "hub_id": d.hub_id,
            "bytes": d.bytes, "sha256": d.sha256, "records": d.records,
            "token_count": d.token_count, "token_counter": "whitespace"}


def taskset_json(t: TaskSet) -> dict:
    return {"id": t.pk, "name": t.name, "team": t.team.name, "kind": t.kind, "records": t.records,
            "bytes": t.bytes, "sha256": t.sha256, "config": t.config,
            "created_at": t.created_at.isoformat()}


def model_import_json(model: Model) -> dict:
    return {"model": model.pk, "variants": [variant_json(v) for v in model.variants.all()]}
