"""Registers what a job method produced as catalog variants, all or nothing."""

import shutil
from pathlib import Path

from django.db import transaction

from catalog.models import File, Variant
from catalog.services import file_sha256, move_into_place
from jobs.models import Job


def _files_below(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and not p.is_symlink())


def register_outputs(*, job: Job, outputs: list[dict], workdir: Path) -> list[Variant]:
    """Creates one Variant per output (parent: another output named by parent_key, else the
    job's input), moves its files into the variant's folder and records size and sha256.

    Hashing happens before the transaction; the moves are renames on the same filesystem. If
    anything fails, rows roll back and moved folders are removed.
    """
    workdir = workdir.resolve()
    prepared = []
    for out in outputs:
        directory = Path(out["directory"]).resolve()
        if workdir not in directory.parents and directory != workdir:
            raise ValueError(f"output {out['key']} lies outside the job's work folder")
        files = _files_below(directory)
        if not files:
            raise ValueError(f"output {out['key']} has no files")
        prepared.append((out, directory, [(p, p.stat().st_size, file_sha256(p)) for p in files]))

    created: list[Variant] = []
    try:
        with transaction.atomic():
            by_key: dict[str, Variant] = {}
            for out, directory, files in prepared:
                parent = by_key[out["parent_key"]] if out.get("parent_key") else job.input_variant
                variant = Variant.objects.create(
                    model=job.input_variant.model, parent=parent, format=out["format"],
                    quant_type=out["quant_type"], bits_per_weight=out.get("bits_per_weight"),
                    params={**out.get("params", {}), "job": job.pk, "method": job.method,
                            **({"metrics": out["metrics"]} if out.get("metrics") else {})},
                    tool_versions=out.get("tool_versions", {}),
                )
                created.append(variant)
                by_key[out["key"]] = variant
                move_into_place(directory, variant.directory)
                for path, size, sha in files:
                    File.objects.create(
                        variant=variant, path=str(path.relative_to(directory)), bytes=size,
                        sha256=sha)
    except BaseException:
        for variant in created:
            shutil.rmtree(variant.directory, ignore_errors=True)
        raise
    return created


def variants_discard(*, variants: list[Variant]) -> None:
    """Removes freshly registered outputs again (newest first: children before parents)."""
    for variant in reversed(variants):
        directory = variant.directory
        variant.delete()
        shutil.rmtree(directory, ignore_errors=True)
