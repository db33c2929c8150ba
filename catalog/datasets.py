"""Datasets: uploaded .txt / .jsonl / .parquet files, or references to Hub datasets.

Token counts are whitespace-split counts (str.split semantics), streamed over the file: for .txt
the whole text, for .jsonl the top-level string values of each object, for .parquet every string
column. They size a dataset; a model's own tokenizer typically gives 1.2–1.6x more tokens.
"""

import codecs
import json
from collections.abc import Iterator
from pathlib import Path

from django.contrib.auth import get_user_model

from accounts.models import Team
from catalog.imports.common import CHUNK, Progress, place, report, staging
from catalog.models import Dataset
from catalog.safety import require_free_disk
from catalog.services import CatalogError, create_in_place, delete_with_folder
from formats.digest import file_sha256

# .raw: WikiText's own files (wiki.test.raw) are plain text; they are uploaded as they come.
KINDS = {".txt": Dataset.Kind.TXT, ".raw": Dataset.Kind.TXT, ".jsonl": Dataset.Kind.JSONL,
         ".parquet": Dataset.Kind.PARQUET}
MAX_JSONL_LINE = 64 * 1024**2


def _count_txt(path: Path) -> tuple[int, int]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    tokens, lines, inside, offset = 0, 0, False, 0
    with open(path, "rb") as f:
        try:
            while chunk := f.read(CHUNK):
                if (nul := chunk.find(b"\0")) >= 0:  # valid UTF-8, but no text has NUL bytes
                    raise CatalogError(f"{path.name} is not text: it has a NUL byte at offset "
                                       f"{offset + nul:,} (a binary file?)")
                offset += len(chunk)
                text = decoder.decode(chunk)
                if not text:
                    continue
                lines += text.count("\n")
                words = text.split()
                tokens += len(words) - (1 if inside and words and not text[0].isspace() else 0)
                inside = not text[-1].isspace()
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise CatalogError(f"{path.name} is not UTF-8 text ({exc.reason} near offset "
                               f"{offset - len(chunk) + exc.start:,})") from None
    return lines, tokens


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON-lines file; CatalogError naming
    the line for one that is too long, not JSON, or not an object (task files read it too)."""
    with open(path, "rb") as f:
        for number, line in enumerate(iter(lambda: f.readline(MAX_JSONL_LINE + 1), b""), 1):
            if len(line) > MAX_JSONL_LINE:
                raise CatalogError(f"{path.name} line {number} is longer than {MAX_JSONL_LINE} bytes")
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                raise CatalogError(f"{path.name} line {number} is not valid JSON") from None
            if not isinstance(obj, dict):
                raise CatalogError(f"{path.name} line {number} is not a JSON object")
            yield number, obj


def _count_jsonl(path: Path) -> tuple[int, int]:
    records = tokens = 0
    for _, obj in jsonl_objects(path):
        records += 1
        tokens += sum(len(v.split()) for v in obj.values() if isinstance(v, str))
    if not records:
        raise CatalogError(f"{path.name} has no JSON objects")
    return records, tokens


def _count_parquet(path: Path) -> tuple[int, int]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(max(0, path.stat().st_size - 4))
        tail = f.read(4)
    if head != b"PAR1" or tail != b"PAR1":
        raise CatalogError(f"{path.name} is not a Parquet file (no PAR1 magic)")
    try:
        pf = pq.ParquetFile(path)
        columns = [f.name for f in pf.schema_arrow if pa.types.is_string(f.type)
                   or pa.types.is_large_string(f.type)]
        if not columns:
            raise CatalogError(f"{path.name} has no text (string) columns")
        tokens = 0
        for batch in pf.iter_batches(batch_size=8192, columns=columns):
            for col in batch.columns:
                lengths = pc.list_value_length(pc.utf8_split_whitespace(col))
                tokens += int(pc.sum(lengths).as_py() or 0)
        return pf.metadata.num_rows, tokens
    except (pa.ArrowException, OSError) as exc:
        raise CatalogError(f"{path.name} is not a readable Parquet file: {exc}") from None


COUNTERS = {Dataset.Kind.TXT: _count_txt, Dataset.Kind.JSONL: _count_jsonl,
            Dataset.Kind.PARQUET: _count_parquet}


def _create(team_id: int, user_id: int | None, **fields) -> Dataset:
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise CatalogError(f"team {team_id} does not exist")
    name = fields.pop("name").strip()
    if not name:
        raise CatalogError("a dataset needs a name")
    if Dataset.objects.filter(team=team, name=name).exists():
        raise CatalogError(f"team {team.name} already has a dataset named {name!r}")
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return Dataset.objects.create(team=team, name=name, created_by=user, **fields)


def dataset_upload(*, team_id: int, user_id: int | None, path: str, name: str = "",
                   filename: str = "", consume: bool = False,
                   progress: Progress | None = None) -> Dataset:
    """Registers a .txt/.jsonl/.parquet file (kind from `filename` or the path's suffix),
    validating and counting it first; stored at ARTIFACT_ROOT/datasets/<id>/<filename>."""
    src = Path(path)
    filename = Path(filename or src.name).name
    kind = KINDS.get(Path(filename).suffix.lower())
    if kind is None:
        raise CatalogError(f"{filename}: datasets must be .txt, .jsonl or .parquet files")
    if not consume:
        require_free_disk(needed_bytes=src.stat().st_size)
    report(progress, 0.0, "copying")
    with staging("dataset") as staged:
        target = staged / filename
        place(src, target, consume=consume)
        report(progress, 0.3, "counting")
        records, tokens = COUNTERS[kind](target)
        sha = file_sha256(target)
        dataset = create_in_place(
            lambda: _create(team_id, user_id, name=name or Path(filename).stem, kind=kind,
                            path=filename, bytes=target.stat().st_size, sha256=sha,
                            records=records, token_count=tokens), staged, "dataset")
    report(progress, 1.0, "done")
    return dataset


def dataset_from_hub(*, team_id: int, user_id: int | None, repo_id: str, name: str = "") -> Dataset:
    """Registers a Hub dataset by id after checking it exists (fails fast when offline). Nothing
    is downloaded now; an evaluation job fetches what it needs."""
    from catalog.imports.hub import hub_info

    info = hub_info(repo_id=repo_id, repo_type="dataset")
    return _create(team_id, user_id, name=name or repo_id, kind=Dataset.Kind.HUB,
                   hub_id=f"{repo_id}@{getattr(info, 'sha', '') or 'main'}")


def dataset_delete(*, dataset: Dataset, user) -> None:
    delete_with_folder(dataset)
