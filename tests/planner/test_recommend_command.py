"""python manage.py recommend: the Choose answer on the command line, for built-in, node, team and
custom hardware. The model and its measurements are tests/planner/test_choose.py's (see its
docstring for the hand-checked fits); the page/API/CLI agreement is checked there too."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from catalog.models import Model, Variant
from jobs.models import Worker
from planner.models import HardwareProfile
from tests.planner.test_choose import llama  # noqa: F401  (the measured Llama 3.1 8B family)
from tests.planner.test_node_hardware import MEASUREMENT

pytestmark = pytest.mark.django_db


def recommend(*args) -> str:
    out = StringIO()
    call_command("recommend", *map(str, args), stdout=out)
    return out.getvalue()


def picks(*args) -> dict:
    return {p["kind"]: p["variant"] for p in json.loads(recommend(*args, "--json"))["picks"]}


def test_text_output_names_the_picks_their_reasons_and_commands(llama):  # noqa: F811
    text = recommend(llama["F16"].model_id, "--hardware", "m1-8gb", "--context", 4096)
    q3 = llama["Q3_K_M"].pk
    assert f"Best quality that fits: #{q3} GGUF Q3_K_M\n" in text
    assert "  lowest mean KLD of the variants that fit fully on Apple M1 8 GB at context 4,096: mean KLD 0.0895 ± " \
           "0.0006" in text
    assert "  llama-server -m Meta-Llama-3.1-8B-Instruct-Q3_K_M.gguf -c 4096 -ngl 99 -fa off\n" in text
    assert "Smallest within mean KLD ≤ 0.05: none\n" in text
    # one line per variant: the frontier starred, the unusable ones saying why not
    assert f"*#{q3:<5} GGUF Q3_K_M" in text and f" #{llama['Q3_K_L'].pk:<5} GGUF Q3_K_L" in text
    line = next(s for s in text.splitlines() if f"#{llama['IQ4_XS'].pk} " in s)
    assert "skipped" in line and "does not fit" in line


def test_a_node_of_ours_as_hardware(llama, settings):  # noqa: F811
    """The node of tests/planner/test_node_hardware.py: a CPU with 24 GiB, 10 GB/s measured and one
    decode efficiency (1.0, from its Q4_K_M llama-bench run) that every scheme takes. The planner lets
    llama.cpp fill 90 % × 95 % of 24 GiB = 20.5 GiB: the F16 (15.0 GiB of weights + 0.5 KV + compute and
    the process) fits, so it is the best; with one efficiency for all, decode speed goes with the bytes
    read a token, so the fastest within mean KLD ≤ 0.05 is the smallest, Q4_K_M."""
    settings.WORKER_STALE_SECONDS = 3600  # live throughout: the first config build imports torch (seconds)
    Worker.objects.create(hostname="node-a@test", memory_bytes=24 * 2**30, last_seen=timezone.now(),
                          measurements=MEASUREMENT, measured_at=timezone.now())
    data = json.loads(recommend(llama["F16"].model_id, "--hardware", "node:node-a@test", "--context", 4096, "--json"))
    assert data["hardware"]["name"] == "our nodes: node-a@test"
    speeds = {c["variant"]: c["tokens_per_s"] for c in data["candidates"]}
    assert speeds[llama["Q4_K_M"].pk] > speeds[llama["Q5_K_M"].pk] > speeds[llama["Q8_0"].pk] > 0
    assert picks(llama["F16"].model_id, "--hardware", "node:node-a@test", "--context", 4096) == {
        "best": llama["F16"].pk, "smallest": llama["Q4_K_M"].pk, "fastest": llama["Q4_K_M"].pk}


def test_a_teams_saved_profile_as_hardware(llama, teams):  # noqa: F811
    """A saved 12 GiB GPU: 11.4 GiB to fill. Q8_0 needs 7.95 GiB weights + 0.5 KV + 0.30 compute +
    0.49 CUDA context = 9.24 GiB and fits; the F16 (16.25 GiB) runs only with offload. No published
    or measured speed stands behind a hand-described card, so the planner gives none: no fastest."""
    profile = HardwareProfile.objects.create(team=teams["red"], name="Workstation 12 GB", kind="gpu", memory_gb=12,
                                             bandwidth_gbs=500, tflops=60, ram_gb=64)
    data = json.loads(recommend(llama["F16"].model_id, "--hardware", profile.key, "--context", 4096, "--json"))
    fits = {c["variant"]: c["fit"] for c in data["candidates"]}
    assert fits[llama["Q8_0"].pk] == "device" and fits[llama["F16"].pk] == "offload"
    got = {p["kind"]: p["variant"] for p in data["picks"]}
    assert (got["best"], got["smallest"]) == (llama["Q8_0"].pk, llama["Q4_K_M"].pk)


def test_more_devices_and_ram_are_passed_to_the_planner(llama):  # noqa: F811
    """Two RTX 4090s: 45.6 GiB to fill, the F16 still the best. And --ram-gb on a GPU changes what
    offload can hold: a 6 GiB card beside 4 GiB of RAM can't hold the F16's 10 GiB that don't fit on
    the card, while the Q3_K_M still fits on the card alone."""
    data = json.loads(recommend(llama["F16"].model_id, "--hardware", "rtx-4090", "--devices", 2, "--context", 4096,
                                "--json"))
    assert data["hardware"]["device_count"] == 2 and data["picks"][0]["variant"] == llama["F16"].pk
    fits = {c["variant"]: c["fit"] for c in json.loads(recommend(
        llama["F16"].model_id, "--hardware", "custom", "--memory-gb", 6, "--ram-gb", 4, "--context", 4096,
        "--json"))["candidates"]}
    assert fits[llama["F16"].pk] == "none" and fits[llama["Q3_K_M"].pk] == "device"


@pytest.mark.parametrize("args, message", [
    (["--hardware", "no-such-card", "--context", 4096], "hardware: unknown profile 'no-such-card'"),
    (["--hardware", "rtx-4090", "--context", 0], "context: "),
    (["--hardware", "node:gone@nowhere", "--context", 4096], "hardware: no live, measured node 'gone@nowhere'"),
    (["--hardware", "custom", "--context", 4096], "memory_gb: --hardware custom needs --memory-gb"),
    (["--hardware", "rtx-4090", "--context", 4096, "--headroom-gb", -1], "headroom_gb: must be from 0"),
    (["--hardware", "m1-8gb", "--ram-gb", 16, "--context", 4096], "ram_gb: system RAM is an input for GPU"),
])
def test_bad_input_names_the_field(llama, args, message):  # noqa: F811
    with pytest.raises(CommandError, match="^" + message.replace("(", r"\(").replace("'", "'")):
        recommend(llama["F16"].model_id, *args)


def test_an_unknown_model_id():
    with pytest.raises(CommandError, match="model_id: no model 999999"):
        recommend(999999, "--hardware", "rtx-4090", "--context", 4096)


def test_a_model_the_planner_cannot_plan_is_still_shown_with_why(teams):
    model = Model.objects.create(team=teams["red"], name="Mystery", config={})
    Variant.objects.create(model=model, format="gguf", quant_type="Q4_K_M")
    data = json.loads(recommend(model.pk, "--hardware", "rtx-4090", "--context", 4096, "--json"))
    assert data["planner_refused"] == "Mystery has neither a config nor a parameter count"
    assert data["candidates"][0]["fit"] == "refused"
    assert all(p["variant"] is None and p["reason"].startswith("no fit: Mystery has neither")
               for p in data["picks"])
