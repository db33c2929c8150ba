"""Size-targeted GGUF mixes: the byte-budget type chooser on small cases whose answers are worked
out by hand below (every mix enumerated in the comments), and the GGUF job's target_size on the
demo model — refusals naming the field, and a real run on a worker."""

import re

import pytest

from jobs.methods.size_target import (BudgetError, LayerUpgrade, Option, choose_types, fill_layers,
                                      group_costs, override_args, reachable_bytes, tensor_plan)

# A: 10 B err 5, 20 B err 4, 30 B err 0.   B: 10 B err 1, 20 B err 0.
# All mixes (bytes, error): a0b0 (20, 6) a1b0 (30, 5) a0b1 (30, 5) a1b1 (40, 4) a2b0 (40, 1)
# a2b1 (50, 0).
GROUPS = {
    "A": [Option("a0", 10, 5.0), Option("a1", 20, 4.0), Option("a2", 30, 0.0)],
    "B": [Option("b0", 10, 1.0), Option("b1", 20, 0.0)],
}


def test_reachable_range_is_cheapest_and_dearest_mix():
    assert reachable_bytes(GROUPS) == (20, 50)


def test_takes_the_big_step_a_gain_per_byte_greedy_would_miss():
    # Step by step, a0->a1 and b0->b1 both gain 1 per 10 B, so a greedy pass ends at a1b1
    # (40 B, error 4); the best mix within 40 B is a2b0 (40 B, error 1).
    choice = choose_types(GROUPS, 40)
    assert choice.types == {"A": "a2", "B": "b0"}
    assert (choice.bytes, choice.error) == (40, 1.0)


def test_budget_between_mixes_rounds_down_to_the_best_that_fits():
    # 39 B: a1b1 and a2b0 (40 B) no longer fit; a1b0 and a0b1 (30 B, error 5) tie on error and
    # bytes, either is right.
    choice = choose_types(GROUPS, 39)
    assert (choice.bytes, choice.error) == (30, 5.0)
    assert choice.types in ({"A": "a1", "B": "b0"}, {"A": "a0", "B": "b1"})


def test_smallest_budget_gives_the_cheapest_types():
    choice = choose_types(GROUPS, 20)
    assert choice.types == {"A": "a0", "B": "b0"}
    assert (choice.bytes, choice.error) == (20, 6.0)


def test_ample_budget_gives_the_least_error():
    choice = choose_types(GROUPS, 1000)
    assert choice.types == {"A": "a2", "B": "b1"}
    assert (choice.bytes, choice.error) == (50, 0.0)


def test_equal_error_prefers_fewer_bytes():
    # C's dearer type buys nothing, so it is never chosen, whatever the budget.
    groups = {**GROUPS, "C": [Option("c0", 5, 0.5), Option("c1", 15, 0.5)]}
    choice = choose_types(groups, 1000)
    assert choice.types == {"A": "a2", "B": "b1", "C": "c0"}
    assert choice.bytes == 55


def test_three_groups_exact_optimum():
    # With D (10 B err 3, 25 B err 0) added, budget 60: candidates that fit —
    # a2b0d0 (50, 4), a2b1d0 (60, 3), a0b0d1 (45, 6), a1b0d1 (55, 5), a0b1d1 (55, 5),
    # a1b1d1 (65) over, a2b0d1 (65) over. Best is a2b1d0: 60 B, error 3.
    groups = {**GROUPS, "D": [Option("d0", 10, 3.0), Option("d1", 25, 0.0)]}
    choice = choose_types(groups, 60)
    assert choice.types == {"A": "a2", "B": "b1", "D": "d0"}
    assert (choice.bytes, choice.error) == (60, 3.0)


def test_budget_below_the_smallest_mix_is_refused_with_the_range():
    with pytest.raises(BudgetError, match=r"below the smallest mix .*\(20 bytes\)"):
        choose_types(GROUPS, 19)


def test_group_without_options_is_refused():
    with pytest.raises(BudgetError, match="group E has no type"):
        choose_types({**GROUPS, "E": []}, 100)


# A toy GGUF: a 32×32 token_embd, four 32×32 attn_v (one per layer), a 512-wide ffn_down, a norm.
# 1024 elements = 32 blocks of 32: iq4_nl 32 × 18 = 576 B, q5_0 32 × 22 = 704 B, q8_0 32 × 34 =
# 1088 B (ggml.c type_traits). ffn_down 512 × 2 = 4 blocks of 256: q3_K 4 × 110 = 440 B, q4_K
# 4 × 144 = 576, q5_K 4 × 176 = 704, q6_K 4 × 210 = 840.
TENSORS = [("token_embd.weight", (32, 32)), ("output_norm.weight", (32,))] + [
    (f"blk.{i}.attn_v.weight", (32, 32)) for i in range(4)] + [("blk.0.ffn_down.weight", (512, 2))]


def test_group_costs_follow_block_sizes_and_row_width():
    assert group_costs(TENSORS) == {
        "token_embd": {"iq4_nl": 576, "q5_0": 704, "q8_0": 1088},
        "attn_v": {"iq4_nl": 2304, "q5_0": 2816, "q8_0": 4352},
        "ffn_down": {"q3_K": 440, "q4_K": 576, "q5_K": 704, "q6_K": 840},
    }


# token_embd: 576 B err 1.0, 1088 B err 0.   attn_v: 2304 B err 0.4, 2816 B err 0.35, 4352 B err 0.
TOY = {"token_embd": [Option("iq4_nl", 576, 1.0), Option("q8_0", 1088, 0.0)],
       "attn_v": [Option("iq4_nl", 2304, 0.4), Option("q5_0", 2816, 0.35),
                  Option("q8_0", 4352, 0.0)]}


@pytest.mark.parametrize("budget, layers, spent, error", [
    # Mixes within 4500 B: embd q8_0 + v q5_0 = 3904 B err 0.35 is best (v q8_0 needs 4928+ B).
    # 596 B left; v q5_0 -> q8_0 is 384 B a layer: one layer, 384/1536 of the 0.35 saved.
    (4500, (0,), 384, -0.35 * 0.25),
    # 1364 B left: three layers, ends first (0, 3, then 1), 1152 B, 3/4 of 0.35.
    (5268, (0, 1, 3), 1152, -0.35 * 0.75),
])
def test_leftover_bytes_go_to_whole_layers_from_the_ends(budget, layers, spent, error):
    choice = choose_types(TOY, budget)
    assert choice.types == {"token_embd": "q8_0", "attn_v": "q5_0"} and choice.bytes == 3904
    [upgrade] = fill_layers(TOY, choice, TENSORS, budget)
    assert (upgrade.group, upgrade.type, upgrade.layers, upgrade.bytes) == (
        "attn_v", "q8_0", layers, spent)
    assert upgrade.error == pytest.approx(error)


def test_nothing_is_filled_when_no_layer_fits():
    # 3904 B chosen, 96 B left: less than one layer's 384.
    assert fill_layers(TOY, choose_types(TOY, 4000), TENSORS, 4000) == []


def test_overrides_name_layers_first_and_every_group():
    upgrade = LayerUpgrade("attn_v", "q8_0", (0, 3), 768, -0.175)
    types = {"token_embd": "q8_0", "attn_v": "q5_0", "ffn_down": "q4_K"}
    # llama-quantize takes the first --tensor-type whose regex is found in the name.
    assert override_args(types, [upgrade]) == [
        "--tensor-type", r"^blk\.(0|3)\.attn_v\.weight$=q8_0",
        "--token-embedding-type", "q8_0",
        "--tensor-type", r"\.attn_v\.weight=q5_0",
        "--tensor-type", r"\.ffn_down\.weight=q4_K"]
    assert tensor_plan(TENSORS, types, [upgrade]) == {
        "token_embd.weight": "q8_0", "blk.0.attn_v.weight": "q8_0", "blk.1.attn_v.weight": "q5_0",
        "blk.2.attn_v.weight": "q5_0", "blk.3.attn_v.weight": "q8_0",
        "blk.0.ffn_down.weight": "q4_K"}


# --- The GGUF job's target_size, on the demo model ---------------------------------------------

def refused(teams, variant, params):
    from jobs.methods.base import JobError
    from jobs.services import job_submit

    with pytest.raises(JobError) as info:
        job_submit(team=teams["red"], user=teams["alice"], method="gguf", params=params,
                   input_variant=variant, enqueue=False)
    return info.value


def calibration_text(teams):
    from catalog.datasets import dataset_upload
    from tests.support.processes import WIKITEXT

    return dataset_upload(team_id=teams["red"].pk, user_id=None, path=str(WIKITEXT / "valid.txt"),
                          name="wikitext-2 valid")


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["5.5", "5.5 bits", "GiB", "-1 GiB", "nan bpw", "inf GiB"])
def test_a_size_that_is_not_gib_or_bpw_is_refused(teams, demo_variant, value):
    text = calibration_text(teams)
    error = refused(teams, demo_variant, {"target_size": value, "imatrix_dataset": text.pk})
    assert set(error.errors) == {"target_size"} and "'<number> GiB'" in error.errors["target_size"]


@pytest.mark.django_db
def test_a_size_target_needs_a_calibration_text_and_no_overrides(teams, demo_variant):
    error = refused(teams, demo_variant, {"target_size": "5.5 bpw"})
    assert set(error.errors) == {"target_size"} and "imatrix_dataset" in error.errors["target_size"]
    text = calibration_text(teams)
    error = refused(teams, demo_variant, {"target_size": "5.5 bpw", "imatrix_dataset": text.pk,
                                          "tensor_types": "attn_v=q8_0"})
    assert "leave tensor_types empty" in error.errors["target_size"]


@pytest.mark.django_db
def test_too_few_scored_tokens_for_llama_perplexitys_statistics_are_refused(teams, demo_variant):
    # One 128-token chunk scores 63 tokens (its second half less one); llama-perplexity prints KL
    # statistics only from 100 (perplexity.cpp: "if (kld.count < 100) return;").
    text = calibration_text(teams)
    error = refused(teams, demo_variant, {"target_size": "5.5 bpw", "imatrix_dataset": text.pk,
                                          "imatrix_context": 128, "target_chunks": 1})
    assert set(error.errors) == {"target_chunks"} and "score 63 tokens" in error.errors["target_chunks"]


@pytest.mark.django_db
@pytest.mark.parametrize("value, low, high, places", [("4.2 bpw", 4.298, 8.124, 0.002),
                                                      ("8.2 bpw", 4.298, 8.124, 0.002),
                                                      ("0.06 GiB", 0.068961, 0.128879, 0.0002)])
def test_a_size_outside_the_reachable_range_is_refused_with_the_range(teams, demo_variant, value,
                                                                       low, high, places):
    # low / high: the files llama-quantize writes from the demo Q4_1 with every group at its
    # cheapest type (iq4_nl, ffn_down q3_K: 74 046 272 B) and at its dearest (q8_0, ffn_down q6_K:
    # 138 383 168 B), in bits per weight as the GGUF job reports them and in GiB.
    text = calibration_text(teams)
    error = refused(teams, demo_variant, {"target_size": value, "imatrix_dataset": text.pk})
    message = error.errors["target_size"]
    found = re.search(r"reach: ([0-9.]+) to ([0-9.]+)", message)
    assert found, message
    assert float(found.group(1)) == pytest.approx(low, abs=places)
    assert float(found.group(2)) == pytest.approx(high, abs=places)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_size_target_makes_a_file_within_it_with_its_recipe(teams, demo_variant, celery_worker):
    from jobs.models import Job
    from jobs.services import job_submit
    from tests.jobs.methods.test_gguf_options import header_types, wait_final, worker_ready

    text = calibration_text(teams)
    worker_ready()
    job = job_submit(team=teams["red"], user=teams["alice"], method="gguf",
                     input_variant=demo_variant,
                     params={"target_size": "5.5 bpw", "imatrix_dataset": text.pk,
                             "imatrix_chunks": 2, "imatrix_context": 128, "target_chunks": 2})
    job = wait_final(job, 600)
    assert job.status == Job.Status.SUCCEEDED, job.error + job.log_tail[-3000:]
    outputs = {v.format: v for v in job.outputs.all()}
    assert set(outputs) == {"imatrix", "gguf"}
    targeted = outputs["gguf"]
    assert 5.5 * 0.99 <= targeted.bits_per_weight <= 5.5
    recipe, sensitivity = targeted.params["recipe"], targeted.params["sensitivity"]
    table = sensitivity["table"]
    # Seven 576-wide groups with three types each, ffn_down (1536-wide rows) with four.
    assert sorted(table) == ["attn_k", "attn_output", "attn_q", "attn_v", "ffn_down", "ffn_gate",
                             "ffn_up", "token_embd"]
    assert sorted(table["ffn_down"]) == ["q3_K", "q4_K", "q5_K", "q6_K"]
    assert all(sorted(table[g]) == ["iq4_nl", "q5_0", "q8_0"] for g in table if g != "ffn_down")
    # The embedding (tied to the output) and ffn_down at q3_K are the costly steps: bench/
    # size_targeted.py measured +0.076 and +0.145 on 8 × 256 tokens.
    assert table["token_embd"]["iq4_nl"]["mean_kld_increase"] > 0.02
    assert table["ffn_down"]["q3_K"]["mean_kld_increase"] > 0.05
    [f] = targeted.files.all()
    written = header_types(f.absolute_path)
    for group, ggml_type in recipe["group_types"].items():
        upgraded = {f"blk.{i}.{group}.weight" for u in recipe["layer_types"] if u["group"] == group
                    for i in u["layers"]}
        names = ["token_embd.weight"] if group == "token_embd" else [
            n for n in written if n.endswith(f".{group}.weight")]
        assert {written[n] for n in names if n not in upgraded} == {ggml_type.upper()}
    assert targeted.params["file_bytes"] == f.bytes
