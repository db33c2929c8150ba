"""The Hub, server-path and CLI import routes, and cleanup when an import fails part-way."""

import json
import time

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from catalog.imports import import_hf_folder, import_hub, import_server_path
from catalog.models import Model, Variant
from catalog.services import CatalogError, demo_model_path
from tests.catalog.conftest import leftover_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def hub_unreachable(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there


def test_hub_import_fails_fast_with_a_clear_message_offline(client, teams, hub_unreachable):
    client.force_login(teams["alice"])
    started = time.monotonic()
    response = client.post(reverse("jobs:import"), {
        "source": "hub", "team": teams["red"].pk, "repo_id": "HuggingFaceTB/SmolLM2-135M"})
    assert time.monotonic() - started < 5
    assert response.status_code == 400
    assert b"the Hugging Face Hub is not reachable from this server" in response.content


def test_hf_hub_offline_setting_is_respected(teams, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CatalogError, match="HF_HUB_OFFLINE"):
        import_hub(team_id=teams["red"].pk, user_id=None, repo_id="a/b")


def test_server_path_import_is_for_staff(teams, tiny_hf, artifacts):
    folder, params = tiny_hf
    with pytest.raises(CatalogError, match="only staff"):
        import_server_path(team_id=teams["red"].pk, user_id=teams["alice"].pk, path=str(folder))
    teams["alice"].is_staff = True
    teams["alice"].save()
    variant = import_server_path(team_id=teams["red"].pk, user_id=teams["alice"].pk,
                                 path=str(folder), name="from-path")
    assert variant.model.param_count == params
    assert variant.model.source == f"path:{folder}"
    assert (folder / "config.json").exists()  # the source is copied, not moved


def test_import_model_command_prints_the_import_json(capsys, tiny_hf, artifacts):
    call_command("import_model", str(demo_model_path()), "--team", "research", "--json")
    data = json.loads(capsys.readouterr().out)
    [variant] = data["variants"]
    assert variant["quant_type"] == "Q4_1" and variant["files"][0]["bytes"] == 98_362_432
    assert Model.objects.get(pk=data["model"]).team.name == "research"
    call_command("import_model", str(tiny_hf[0]), "--team", "research", "--name", "tiny", "--json")
    assert json.loads(capsys.readouterr().out)["variants"][0]["format"] == "hf"


def test_import_model_command_errors(hub_unreachable):
    with pytest.raises(CommandError, match="not reachable"):
        call_command("import_model", "--hub", "HuggingFaceTB/SmolLM2-135M", "--team", "t")
    with pytest.raises(CommandError, match="either PATH or --hub"):
        call_command("import_model", "--team", "t")


def test_import_interrupted_while_hashing_leaves_no_rows_and_no_files(teams, tiny_hf, artifacts):
    """A job cancelled from its progress callback is the realistic mid-import failure."""

    class Cancelled(Exception):
        pass

    def progress(fraction: float, stage: str) -> None:
        if stage == "hashing":
            raise Cancelled()

    with pytest.raises(Cancelled):
        import_hf_folder(team_id=teams["red"].pk, user_id=None, folder=str(tiny_hf[0]),
                         name="x", progress=progress)
    assert not Model.objects.exists() and not Variant.objects.exists()
    assert leftover_files(artifacts) == []


def test_name_clash_is_refused_and_leaves_nothing(teams, tiny_hf, artifacts):
    import_hf_folder(team_id=teams["red"].pk, user_id=None, folder=str(tiny_hf[0]), name="dup")
    before = leftover_files(artifacts)
    with pytest.raises(CatalogError, match="already has a model named 'dup'"):
        import_hf_folder(team_id=teams["red"].pk, user_id=None, folder=str(tiny_hf[0]), name="dup")
    assert Variant.objects.count() == 1
    assert leftover_files(artifacts) == before


def test_progress_is_reported_from_zero_to_done(teams, tiny_hf, artifacts):
    seen: list[tuple[float, str]] = []
    import_hf_folder(team_id=teams["red"].pk, user_id=None, folder=str(tiny_hf[0]), name="p",
                     progress=lambda f, s: seen.append((f, s)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and seen[-1] == (1.0, "done")
