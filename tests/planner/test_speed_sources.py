"""Which cards show a speed: those with a llama-bench figure measured on a node of ours or published
for the card (planner/estimator/speed.py CITED); every other card shows none and says why, in the
table, the Fit card, the API and the CLI.

The published figures pinned here are read off github XiongjieDai/GPU-Benchmarks-on-LLM-Inference
(llama-bench, Llama 3 8B Instruct, May 2024): the README's "LLaMA 3" NVIDIA and Apple Silicon tables,
and for the A100 80GB SXM4 and RTX A6000 the notebooks "LLaMA 3/Professional GPUs/A100_SXM_v3.ipynb"
and "A6000_v3.ipynb". tg512's KV cache averages 256 positions: a 256-token context holds exactly
that many (Llama 3.1 8B has Llama 3 8B's shape), so the table's decode at context 256 is the run
that was published; pp512 is the prefill of a 512-token prompt.
"""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from planner.estimator import HARDWARE_PROFILES, Workload, estimate
from planner.estimator.fit import fit_estimate
from planner.presets import preset_architecture

LLAMA8 = preset_architecture("llama-3.1-8b")

# profile -> (Q4_K_M tg512, Q4_K_M pp512, F16 tg512 or None), as published
PUBLISHED = {
    "rtx-4090": (130.58, 7138.99, 54.84),
    "rtx-3090": (115.42, 4030.40, 47.40),
    "a100-80gb": (135.04, 5947.64, 53.49),
    "a6000": (105.39, 3780.55, 40.71),
    "m1-8gb": (10.20, 94.48, None),
    "m2-ultra-192gb": (78.81, 994.04, 36.90),
    "m3-max-64gb": (48.97, 693.32, 22.04),
}
# the same M3 Max chip (40-core GPU, 400 GB/s) with more or less memory beside it
SAME_CHIP = {"m3-max-48gb": "m3-max-64gb", "m3-max-128gb": "m3-max-64gb"}


@pytest.mark.parametrize("key", sorted(PUBLISHED))
def test_a_cited_cards_speed_is_the_published_figure(key):
    tg_q4, pp_q4, tg_f16 = PUBLISHED[key]
    hw = HARDWARE_PROFILES[key]
    q4 = estimate(LLAMA8, hw, Workload(context=256), ["Q4_K_M"]).rows[0]
    assert q4.decode_tokens_per_s == pytest.approx(tg_q4, abs=0.01)
    assert q4.decode_withheld == ""
    # pp512 less the KV cache's share of the one weight pass taken out of it (≤ 0.1 %)
    prefill = estimate(LLAMA8, hw, Workload(context=512), ["Q4_K_M"]).rows[0].prefill_seconds
    assert 512 / prefill == pytest.approx(pp_q4, rel=0.002)
    if tg_f16 is not None:
        f16 = estimate(LLAMA8, hw, Workload(context=256), ["F16"]).rows[0]
        assert f16.decode_tokens_per_s == pytest.approx(tg_f16, abs=0.01)


@pytest.mark.parametrize("key", sorted(SAME_CHIP))
def test_the_same_chip_shows_the_same_figure(key):
    rows = [estimate(LLAMA8, HARDWARE_PROFILES[k], Workload(context=256), ["Q4_K_M"]).rows[0]
            for k in (key, SAME_CHIP[key])]
    assert rows[0].decode_tokens_per_s == rows[1].decode_tokens_per_s == pytest.approx(48.97, abs=0.01)


UNCITED = sorted(set(HARDWARE_PROFILES) - set(PUBLISHED) - set(SAME_CHIP))


def test_the_uncited_profiles():
    """The profiles no published llama-bench figure was found for (see speed.py)."""
    assert UNCITED == ["a10", "a100-40gb", "cpu-2core-24gb", "cpu-ddr4-32gb", "cpu-ddr5-64gb", "h100-80gb", "h200",
                       "l4", "m1-16gb", "m1-ultra-128gb", "m1-ultra-64gb", "m2-max-32gb", "m2-max-64gb",
                       "m2-max-96gb", "m2-pro-16gb", "m2-pro-32gb", "m3-max-36gb", "m3-max-96gb", "phone-6gb", "phone-8gb",
                       "rtx-3060", "rtx-5090", "t4"]


@pytest.mark.parametrize("key", UNCITED)
def test_a_card_without_a_figure_shows_no_speed_and_says_why(key):
    hw = HARDWARE_PROFILES[key]
    why = f"no published llama.cpp figure for {hw.name}; measure it on a node of ours"
    est = estimate(LLAMA8, hw, Workload(context=512), ["Q4_K_M"])
    row = est.rows[0]
    assert row.decode_tokens_per_s is None and row.prefill_seconds is None
    assert row.decode_withheld == row.prefill_withheld == why
    assert row.formulas["decode_tokens_per_s"] == why
    fit = fit_estimate(est, "Q4_K_M")
    assert fit.decode_tokens_per_s is None and fit.decode_withheld == why
    assert any(r.startswith("decode: ") and r.endswith(f"; speed not shown: {why}") for r in fit.reasons)


def test_other_runtimes_show_no_speed_even_on_a_cited_card():
    """The citations and the node measurements are llama-bench's: they say nothing of vLLM or transformers."""
    for runtime in ("vllm", "transformers"):
        row = estimate(LLAMA8, HARDWARE_PROFILES["rtx-4090"], Workload(context=512, runtime=runtime)).rows[0]
        assert row.decode_tokens_per_s is None and row.prefill_seconds is None
        assert row.decode_withheld.startswith(f"no published {runtime} figure for GeForce RTX 4090 24 GB; "
                                              "measure it on a node of ours")


def test_reading_layers_from_system_ram_shows_no_speed():
    """Llama 3.1 70B Q4_K_M (about 40 GiB) on one 24 GiB RTX 4090 runs with layers in RAM: the RAM's
    speed under llama.cpp was not measured, so neither the table nor the Fit card shows a speed."""
    est = estimate(preset_architecture("llama-3.1-70b"), HARDWARE_PROFILES["rtx-4090"], Workload(context=4096),
                   ["Q4_K_M"])
    row = est.rows[0]
    assert not row.fits and row.runs_with_offload
    assert row.decode_tokens_per_s is None and "read from system RAM" in row.decode_withheld
    fit = fit_estimate(est, "Q4_K_M")
    assert fit.fits and not fit.fully_on_device
    assert fit.decode_tokens_per_s is None and "read from system RAM" in fit.decode_withheld


def test_a_batch_without_a_prefill_figure_shows_no_decode():
    """A node measured without a prefill figure: one sequence decodes at its measured rate, a batch of 8
    would need the achieved FLOP/s, which nobody measured."""
    from dataclasses import replace

    from planner.estimator.calibration import Calibration

    cal = Calibration(source="measured on node n1 (test)", measured=True, bandwidth_bytes_per_s=1e12,
                      bandwidth_source="measured on node n1", decode_efficiency=(("Q4_K_M", 0.5),))
    hw = replace(HARDWARE_PROFILES["h100-80gb"], calibration=cal)
    one = estimate(LLAMA8, hw, Workload(context=512), ["Q4_K_M"]).rows[0]
    assert one.decode_tokens_per_s is not None and one.prefill_seconds is None
    assert one.prefill_withheld == ("no measured llama.cpp prefill figure for NVIDIA H100 80 GB SXM; measure it on a "
                                    "node of ours")
    eight = estimate(LLAMA8, hw, Workload(context=512, batch=8), ["Q4_K_M"]).rows[0]
    assert eight.decode_tokens_per_s is None and "a batch of 8 needs the achieved FLOP/s" in eight.decode_withheld


def test_the_cli_says_why_it_shows_no_speed():
    out = StringIO()
    call_command("estimate", "--preset", "llama-3.1-8b", "--hardware", "h200", "--scheme", "Q4_K_M", stdout=out)
    assert ("speeds (decode tok/s, prefill s): not shown: no published llama.cpp figure for NVIDIA H200 141 GB; "
            "measure it on a node of ours") in out.getvalue()
    out = StringIO()
    call_command("estimate", "--preset", "llama-3.1-8b", "--hardware", "h200", "--scheme", "Q4_K_M", "--json",
                 stdout=out)
    row = json.loads(out.getvalue())["schemes"][0]
    assert row["decode_tokens_per_s"] is None and row["prefill_seconds"] is None
    assert row["decode_withheld"] == ("no published llama.cpp figure for NVIDIA H200 141 GB; measure it on a node "
                                      "of ours")
