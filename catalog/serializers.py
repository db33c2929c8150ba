"""Plain dicts for JSON output of catalog objects (CLI and API share these)."""

from catalog.models import File, Model, Variant


def file_json(f: File) -> dict:
    return {"path": str(f.absolute_path), "bytes": f.bytes, "sha256": f.sha256}


def variant_json(v: Variant) -> dict:
    return {
        "id": v.pk,
        "format": v.format,
        "quant_type": v.quant_type,
        "bits_per_weight": v.bits_per_weight,
        "parent": v.parent_id,
        "files": [file_json(f) for f in v.files.all()],
    }


def model_import_json(model: Model) -> dict:
    return {"model": model.pk, "variants": [variant_json(v) for v in model.variants.all()]}
