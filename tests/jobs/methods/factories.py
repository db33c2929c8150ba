"""Catalog rows for validate()/estimate() tests."""

SMOLLM2_CONFIG = {
    "model_type": "llama", "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
    "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64, "vocab_size": 49152,
    "max_position_embeddings": 8192, "tie_word_embeddings": True,
}


def make_variant(*, fmt: str = "hf", config: dict | None = None, name: str = "SmolLM2-135M-Instruct",
                 files: dict[str, int] | None = None):
    """A variant of a model with `config`; `files` maps file names to byte counts (File rows)."""
    from accounts.models import Team
    from catalog.models import File, Model, Variant

    team, _ = Team.objects.get_or_create(name="methods")
    model = Model.objects.create(team=team, name=name, config=config or SMOLLM2_CONFIG)
    variant = Variant.objects.create(model=model, format=fmt, quant_type="f32" if fmt == "hf" else "Q4_1")
    for path, size in (files or {}).items():
        File.objects.create(variant=variant, path=path, bytes=size, sha256="0" * 64)
    return variant
