"""Registers what a job method produced as catalog variants, all or nothing."""

import shutil
from pathlib import Path

from catalog.models import Variant
from catalog.registration import registering, staged_files, variant_register
from jobs.models import Job


def register_outputs(*, job: Job, outputs: list[dict], workdir: Path) -> list[Variant]:
    """Creates one Variant per output (parent: another output named by parent_key, else the
    job's input) through catalog.registration.variant_register, which moves its folder into
    place and records each file's size and sha256.

    Every output is checked and hashed before the transaction; the moves are renames on the
    same filesystem. If anything fails, all rows roll back and every moved folder is removed.
    Bits per weight is the method's own figure (measured against the input's weight count).
    """
    workdir = workdir.resolve()
    prepared = []
    for out in outputs:
        directory = Path(out["directory"]).resolve()
        if workdir not in directory.parents and directory != workdir:
            raise ValueError(f"output {out['key']} lies outside the job's work folder")
        files = staged_files(directory)
        if not files:
            raise ValueError(f"output {out['key']} has no files")
        prepared.append((out, directory, files))

    created: list[Variant] = []
    model = job.input_variant.model
    with registering() as moved:
        by_key: dict[str, Variant] = {}
        for out, directory, files in prepared:
            parent = by_key[out["parent_key"]] if out.get("parent_key") else job.input_variant
            variant = variant_register(
                staged=directory, model=model, format=out["format"],
                quant_type=out["quant_type"], parent_id=parent.pk,
                params={**out.get("params", {}), "job": job.pk, "method": job.method,
                        **({"metrics": out["metrics"]} if out.get("metrics") else {})},
                tool_versions=out.get("tool_versions", {}),
                measured_bits_per_weight=out.get("bits_per_weight"), files=files, moved=moved)
            created.append(variant)
            by_key[out["key"]] = variant
    return created


def variants_discard(*, variants: list[Variant]) -> None:
    """Removes freshly registered outputs again (newest first: children before parents)."""
    for variant in reversed(variants):
        directory = variant.directory
        variant.delete()
        shutil.rmtree(directory, ignore_errors=True)
