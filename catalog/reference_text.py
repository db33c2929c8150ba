"""WikiText-2 in one click, for the evaluation forms' dataset picker: a new user has no dataset
until they upload one, and perplexity is usually measured on WikiText-2's raw test split.

Where the Hub answers, the split's Parquet file (Salesforce/wikitext, wikitext-2-raw-v1: one row
per line of the original file, with its newline; the original's blank lines, " \\n", are empty
rows) is downloaded and written back out as the original plain text, wiki.test.raw or
wiki.valid.raw, then registered like an uploaded .txt dataset. Where it doesn't, the Hub probe
fails within seconds (catalog/imports/hub.py) and the error says which file to upload instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import hf_hub_download

from catalog.datasets import dataset_upload
from catalog.imports.common import staging
from catalog.imports.hub import PROBE_TIMEOUT, hub_info
from catalog.models import Dataset
from catalog.services import CatalogError

REPO_ID = "Salesforce/wikitext"


@dataclass(frozen=True)
class Split:
    key: str
    label: str
    parquet: str  # the file in REPO_ID
    filename: str  # the original file's name, what to upload by hand

    @property
    def dataset_name(self) -> str:
        return f"WikiText-2 raw {self.label}"

    @property
    def upload_hint(self) -> str:
        return (f"upload {self.filename} from WikiText-2 (raw, wikitext-2-raw-v1) as plain UTF-8 "
                "text on the datasets page")


SPLITS = {
    "test": Split("test", "test", "wikitext-2-raw-v1/test-00000-of-00001.parquet", "wiki.test.raw"),
    "valid": Split("valid", "valid", "wikitext-2-raw-v1/validation-00000-of-00001.parquet",
                   "wiki.valid.raw"),
}


def wikitext_parquet_to_text(parquet: Path, target: Path) -> None:
    """Writes the plain text a WikiText Parquet file was made from: each row as it is, an empty
    row as the blank line " \\n" the original has there."""
    import pyarrow as pa  # only here: pyarrow takes a while to import (catalog/datasets.py too)
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(parquet)
        column = pf.schema_arrow.field("text") if "text" in pf.schema_arrow.names else None
        if column is None or not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise CatalogError(f"{parquet.name} has no text column: not a WikiText file")
        with open(target, "w", encoding="utf-8", newline="") as out:
            for batch in pf.iter_batches(batch_size=8192, columns=["text"]):
                out.write("".join(line or " \n" for line in batch.column(0).to_pylist()))
    except (pa.ArrowException, OSError) as exc:
        raise CatalogError(f"{parquet.name} is not a readable Parquet file: {exc}") from None


def wikitext_import(*, team_id: int, user_id: int | None, split: str = "test") -> Dataset:
    """Downloads a WikiText-2 raw split from the Hub and registers it as a text dataset named
    "WikiText-2 raw <split>". Fails fast when the Hub is unreachable, saying what to upload."""
    chosen = SPLITS.get(split)
    if chosen is None:
        raise CatalogError(f"WikiText-2 has no split {split!r}: choose test or valid")
    if Dataset.objects.filter(team_id=team_id, name=chosen.dataset_name).exists():
        raise CatalogError(f"this team already has {chosen.dataset_name}: pick it in the list")
    try:
        info = hub_info(repo_id=REPO_ID, repo_type="dataset")
    except CatalogError as exc:
        raise CatalogError(f"{exc}: {chosen.upload_hint}") from None
    with staging("wikitext") as staged:
        try:
            parquet = hf_hub_download(REPO_ID, chosen.parquet, repo_type="dataset",
                                      revision=getattr(info, "sha", None) or "main",
                                      local_dir=str(staged / "hub"), etag_timeout=PROBE_TIMEOUT)
        except Exception as exc:  # network and Hub errors alike: the hint is the way out
            raise CatalogError(f"downloading {REPO_ID} {chosen.parquet} failed ({exc}): "
                               f"{chosen.upload_hint}") from None
        text = staged / chosen.filename
        wikitext_parquet_to_text(Path(parquet), text)
        return dataset_upload(team_id=team_id, user_id=user_id, path=str(text),
                              name=chosen.dataset_name, consume=True)
