"""What the API and the CLI say that a new user can act on: a bare parameter count's commands carry
a flagged placeholder for the model (a preset's carry its real id), and a scheme that does nothing
for the model (MXFP4_MOE on a dense one) is marked so, with the reason."""

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client, teams):
    client.force_login(teams["alice"])
    return client


def _plan(client, query):
    response = client.get(f"/api/planner/estimate?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_a_bare_count_plans_commands_with_a_flagged_placeholder(alice):
    plan = _plan(alice, "source=params&params=7B&hardware=rtx-4090")
    fit, vllm = plan["fit"], plan["vllm_fit"]
    assert fit["command"].startswith(f"llama-server -m <your-model-{fit['scheme']}.gguf> -c ")
    assert fit["command_note"] == (f"replace <your-model-{fit['scheme']}.gguf> with the path of the model's "
                                   f"{fit['scheme']} GGUF file")
    assert vllm["command"].startswith("vllm serve <your-model-id> --max-model-len ")
    assert vllm["command_note"] == "replace <your-model-id> with the model's Hub id or local path"
    assert "modelled" not in fit["command"] + vllm["command"]


def test_a_preset_plans_commands_with_its_real_id_and_nothing_to_replace(alice):
    plan = _plan(alice, "preset=llama-3.1-8b&hardware=rtx-4090")
    assert plan["vllm_fit"]["command"].startswith("vllm serve meta-llama/Llama-3.1-8B --max-model-len ")
    assert plan["fit"]["command"].startswith(f"llama-server -m Llama-3.1-8B-{plan['fit']['scheme']}.gguf -c ")
    assert plan["fit"]["command_note"] == plan["vllm_fit"]["command_note"] == ""


def test_a_pasted_config_names_its_model_only_through_name_or_path(alice):
    """save_pretrained writes _name_or_path; a config without it names no model to serve."""
    import json
    from urllib.parse import quote

    config = {"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
              "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
              "max_position_embeddings": 8192, "tie_word_embeddings": True}
    plain = _plan(alice, f"source=config&config={quote(json.dumps(config))}&hardware=rtx-4090")
    assert plain["vllm_fit"]["command"].startswith("vllm serve <your-model-id> ")
    assert plain["fit"]["command"].startswith(f"llama-server -m <your-model-{plain['fit']['scheme']}.gguf> ")
    assert plain["fit"]["command_note"] and plain["vllm_fit"]["command_note"]
    named = _plan(alice, "source=config&hardware=rtx-4090&config=" + quote(json.dumps(
        {**config, "_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct"})))
    assert named["vllm_fit"]["command"].startswith("vllm serve HuggingFaceTB/SmolLM2-135M-Instruct ")
    assert named["fit"]["command_note"] == named["vllm_fit"]["command_note"] == ""


def test_the_cli_prints_the_placeholder_and_the_note(capsys):
    call_command("estimate", "--params", "7B", "--hardware", "rtx-4090")
    out = capsys.readouterr().out
    assert "llama-server -m <your-model-" in out and "vllm serve <your-model-id> " in out
    assert "  note: replace <your-model-id> with the model's Hub id or local path" in out
    # --repo names the model: the vLLM command runs as printed
    call_command("estimate", "--params", "7B", "--hardware", "rtx-4090", "--repo", "org/my-7b")
    out = capsys.readouterr().out
    assert "vllm serve org/my-7b " in out and "<your-model-id>" not in out


def test_moe_only_schemes_are_marked_as_not_applying_to_a_dense_model(alice):
    rows = {r["scheme"]: r for r in _plan(alice, "preset=llama-3.1-8b&hardware=rtx-4090")["schemes"]}
    mxfp4 = rows["MXFP4_MOE"]
    assert mxfp4["applies"] is False
    assert mxfp4["applies_note"] == ("MXFP4_MOE quantizes only the expert (MoE) tensors; this model has none, "
                                     "so every matrix becomes Q8_0: the same file as Q8_0")
    assert mxfp4["weights_bytes"] == rows["Q8_0"]["weights_bytes"]   # what the note says
    assert all(r["applies"] and r["applies_note"] == "" for s, r in rows.items() if s != "MXFP4_MOE")

    moe = {r["scheme"]: r for r in _plan(alice, "preset=mixtral-8x7b&hardware=rtx-4090")["schemes"]}
    assert moe["MXFP4_MOE"]["applies"] is True and moe["MXFP4_MOE"]["applies_note"] == ""
