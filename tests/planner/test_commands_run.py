"""Every command the planner prints runs as printed, or carries a placeholder in <brackets> that a
note names: never a made-up file or repo. The planner knows a model's shape, never where a GGUF
file of it lies, so `llama-server -m` is always a placeholder; `vllm serve` names the model only
where the input did (a preset's repo, --repo, a config's _name_or_path or folder, a catalog model
imported from the Hub). The commands are run by a real bash, with llama-server and vllm as shell
functions that print the arguments they were given."""

import json
import shlex
import subprocess
from urllib.parse import quote

import pytest
from django.core.management import call_command

from catalog.models import Model
from tests.jobs.methods.factories import SMOLLM2_CONFIG

pytestmark = pytest.mark.django_db

STUBS = 'llama-server() { printf "%s\\n" "$@"; }; vllm() { printf "%s\\n" "$@"; }; '


def bash(command: str, cwd) -> subprocess.CompletedProcess:
    """Run a printed command as a user pasting it would, the programs replaced by argument printers."""
    return subprocess.run(["bash", "-c", STUBS + command], cwd=cwd, capture_output=True, text=True, timeout=10)


@pytest.fixture
def alice(client, teams):
    client.force_login(teams["alice"])
    return client


def _plan(client, query: str) -> dict:
    response = client.get(f"/api/planner/estimate?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def _config_query(config: dict) -> str:
    return f"source=config&hardware=rtx-4090&config={quote(json.dumps(config))}"


def test_a_bare_count_prints_placeholders_the_notes_name(alice):
    for runtime in ("llama.cpp", "vllm"):
        plan = _plan(alice, f"source=params&params=7B&hardware=rtx-4090&runtime={runtime}")
        fit, vllm = plan["fit"], plan["vllm_fit"]
        if runtime == "llama.cpp":
            scheme = fit["scheme"]
            assert shlex.split(fit["command"])[:3] == ["llama-server", "-m", f"<path/to/your-model-{scheme}.gguf>"]
            assert fit["command_note"] == (f"replace <path/to/your-model-{scheme}.gguf> with the path of a {scheme} "
                                           "GGUF file of your model (a GGUF quantize job makes one)")
        assert vllm["command"].startswith("vllm serve <your-model-id> --max-model-len ")
        assert vllm["command_note"] == ("replace <your-model-id> with the model's Hub id or local folder "
                                        "(its config.json and .safetensors)")
        # the modelled-on reference is the plan's business, not a name to serve
        assert "modelled" not in json.dumps([fit, vllm])


def test_an_unfilled_placeholder_does_not_run_and_a_filled_one_does(alice, tmp_path):
    plan = _plan(alice, "source=params&params=7B&hardware=rtx-4090")
    command = plan["fit"]["command"]
    placeholder = shlex.split(command)[2]
    unfilled = bash(command, tmp_path)
    assert unfilled.returncode != 0 and unfilled.stdout == ""          # llama-server never started
    assert "path/to/your-model-" in unfilled.stderr and "No such file or directory" in unfilled.stderr
    assert list(tmp_path.iterdir()) == []                              # and no stray file made
    filled = bash(command.replace(placeholder, shlex.quote("/models/my 7b/q.gguf")), tmp_path)
    assert filled.returncode == 0 and filled.stdout.splitlines()[:2] == ["-m", "/models/my 7b/q.gguf"]


def test_a_preset_serves_its_repo_as_printed_and_names_the_gguf_to_supply(alice, tmp_path):
    plan = _plan(alice, "preset=llama-3.1-8b&hardware=rtx-4090&context=4096")
    fit, vllm = plan["fit"], plan["vllm_fit"]
    scheme = fit["scheme"]   # the solver's pick; the file name follows it
    assert fit["command"].startswith(f"llama-server -m <path/to/Llama-3.1-8B-{scheme}.gguf> -c ")
    assert fit["command_note"] == (f"replace <path/to/Llama-3.1-8B-{scheme}.gguf> with the path of a {scheme} "
                                   "GGUF file of Llama 3.1 8B (a GGUF quantize job makes one)")
    assert vllm["command_note"] == ""
    ran = bash(vllm["command"], tmp_path)
    assert ran.returncode == 0 and ran.stdout.splitlines()[:2] == ["serve", "meta-llama/Llama-3.1-8B"]


def test_a_pasted_config_serves_its_name_or_path_quoted(alice, tmp_path):
    plain = _plan(alice, _config_query(SMOLLM2_CONFIG))
    assert plain["vllm_fit"]["command"].startswith("vllm serve <your-model-id> ")
    assert plain["fit"]["command"].startswith("llama-server -m <path/to/your-model-")
    assert plain["fit"]["command_note"] and plain["vllm_fit"]["command_note"]

    hub = _plan(alice, _config_query({**SMOLLM2_CONFIG, "_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct"}))
    assert hub["vllm_fit"]["command"].startswith("vllm serve HuggingFaceTB/SmolLM2-135M-Instruct --max-model-len ")
    assert hub["vllm_fit"]["command_note"] == ""
    assert hub["fit"]["command"].startswith("llama-server -m <path/to/HuggingFaceTB-SmolLM2-135M-Instruct-")

    # whatever the config says, the line pastes into a shell as one argument and runs nothing else
    odd = "/srv/my models/smol; touch pwned"
    named = _plan(alice, _config_query({**SMOLLM2_CONFIG, "_name_or_path": odd}))
    ran = bash(named["vllm_fit"]["command"], tmp_path)
    assert ran.returncode == 0 and ran.stdout.splitlines()[:3] == ["serve", odd, "--max-model-len"]
    assert not (tmp_path / "pwned").exists()
    # the GGUF placeholder keeps only shell-safe characters of that name
    assert shlex.split(named["fit"]["command"])[2].startswith("<path/to/srv-my-models-smol-touch-pwned-")


def test_a_catalog_model_serves_its_hub_repo_else_a_placeholder(alice, teams):
    revision = "12fd25f77366fa6b3b4b768ec3050bf629380bac"
    hub = Model.objects.create(team=teams["red"], name="SmolLM2-135M-Instruct", config=SMOLLM2_CONFIG,
                               source=f"hub:HuggingFaceTB/SmolLM2-135M-Instruct@{revision}")
    uploaded = Model.objects.create(team=teams["red"], name="SmolLM2 135M (mine)", config=SMOLLM2_CONFIG,
                                    source="upload")
    served = _plan(alice, f"source=catalog&model={hub.pk}&hardware=rtx-4090")["vllm_fit"]
    assert served["command"].startswith("vllm serve HuggingFaceTB/SmolLM2-135M-Instruct --max-model-len ")
    assert served["command_note"] == ""
    plan = _plan(alice, f"source=catalog&model={uploaded.pk}&hardware=rtx-4090")
    assert plan["vllm_fit"]["command"].startswith("vllm serve <path/to/SmolLM2-135M-mine> --max-model-len ")
    assert plan["vllm_fit"]["command_note"] == ("replace <path/to/SmolLM2-135M-mine> with SmolLM2 135M (mine)'s "
                                                "Hub id or local folder (its config.json and .safetensors)")
    assert plan["fit"]["command"].startswith("llama-server -m <path/to/SmolLM2-135M-mine-")


def test_the_page_shows_each_placeholder_with_its_note(alice):
    html = alice.get("/planner/?source=params&params=7B&hardware=rtx-4090").content.decode()
    assert '<code id="fit-command">llama-server -m &lt;path/to/your-model-' in html
    assert '<code id="vllm-command">vllm serve &lt;your-model-id&gt; --max-model-len ' in html
    assert ('<p class="meta command-note" id="vllm-command-note"><strong>Before running:</strong> replace '
            '&lt;your-model-id&gt; with the model&#x27;s Hub id or local folder') in html
    assert 'id="fit-command-note"><strong>Before running:</strong> replace &lt;path/to/your-model-' in html


def _cli(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("estimate", *args, stdout=out)
    return out.getvalue()


def test_the_cli_names_a_config_folder_that_holds_the_checkpoint(tmp_path):
    out = _cli("--params", "7B", "--hardware", "rtx-4090")
    assert "llama-server -m <path/to/your-model-" in out and "vllm serve <your-model-id> " in out
    assert "  note: replace <your-model-id> with the model's Hub id or local folder" in out
    assert "vllm serve org/my-7b " in _cli("--params", "7B", "--hardware", "rtx-4090", "--repo", "org/my-7b")

    folder = tmp_path / "smol lm"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(SMOLLM2_CONFIG))
    out = _cli("--config", str(folder / "config.json"), "--hardware", "rtx-4090")
    assert "vllm serve '<path/to/" not in out
    assert "vllm serve <path/to/smol-lm> --max-model-len " in out and "  note: replace <path/to/smol-lm> with" in out
    (folder / "model.safetensors").write_bytes(b"")   # vLLM loads the folder itself: it runs as printed
    out = _cli("--config", str(folder / "config.json"), "--hardware", "rtx-4090")
    line = next(s for s in out.splitlines() if s.startswith("vLLM ("))
    assert shlex.split(line.split(": ", 1)[1])[:3] == ["vllm", "serve", str(folder)]
    assert "<" not in line


def test_the_cli_table_folds_a_scheme_that_does_nothing_for_the_model():
    out = _cli("--preset", "llama-3.1-8b", "--hardware", "rtx-4090")
    lines = [s for s in out.splitlines() if s.startswith("MXFP4_MOE")]
    assert lines == ["MXFP4_MOE        not useful for this model: MXFP4_MOE quantizes only the expert (MoE) "
                     "tensors; this model has none, so every matrix becomes Q8_0: the same file as Q8_0"]
    moe = [s for s in _cli("--preset", "mixtral-8x7b", "--hardware", "rtx-4090").splitlines()
           if s.startswith("MXFP4_MOE")]
    assert len(moe) == 1 and "not useful" not in moe[0]
