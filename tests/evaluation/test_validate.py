"""The evaluate method's web half: parameters, the KL reference, the planner estimate."""

import pytest

from catalog.models import Variant
from jobs.methods import get_method
from jobs.methods.base import JobError
from jobs.methods.evaluate import planner_scheme
from tests.support.processes import WIKITEXT

TEXT = str(WIKITEXT / "test.txt")


def child(parent, fmt="gguf", quant_type="Q8_0"):
    return Variant.objects.create(model=parent.model, parent=parent, format=fmt, quant_type=quant_type)


def test_quick_defaults_and_the_lineage_root_as_reference(teams, demo_variant):
    q8 = child(demo_variant)
    cleaned = get_method("evaluate").validate({"dataset_path": TEXT}, q8)
    assert {k: cleaned[k] for k in ("mode", "context", "chunks", "speed", "prompt_tokens",
                                    "gen_tokens", "threads", "dataset_path")} == {
        "mode": "quick", "context": 256, "chunks": 4, "speed": True, "prompt_tokens": 128,
        "gen_tokens": 32, "threads": 2, "dataset_path": TEXT}
    assert cleaned["reference"] == demo_variant.pk
    assert cleaned["reference_format"] == "gguf"
    assert cleaned["reference_files"] == [str(f.absolute_path) for f in demo_variant.files.all()]


def test_full_mode_is_every_chunk_of_512(teams, demo_variant):
    cleaned = get_method("evaluate").validate({"dataset_path": TEXT, "mode": "full"}, demo_variant)
    assert (cleaned["context"], cleaned["chunks"]) == (512, 0)


def test_the_root_itself_has_no_reference_and_none_turns_kl_off(teams, demo_variant):
    assert get_method("evaluate").validate({"dataset_path": TEXT}, demo_variant)["reference"] is None
    q8 = child(demo_variant)
    assert get_method("evaluate").validate({"dataset_path": TEXT, "reference": "none"}, q8)["reference"] is None


def test_a_reference_in_another_team_is_refused(teams, demo_variant):
    from catalog.imports.demo import demo_model_import

    blue = demo_model_import(team=teams["blue"]).variants.get()
    with pytest.raises(JobError) as err:
        get_method("evaluate").validate({"dataset_path": TEXT, "reference": blue.pk}, demo_variant)
    assert err.value.errors == {"reference": f"no variant {blue.pk} in this team"}


@pytest.mark.parametrize("params, field", [
    ({"context": 255}, "context"), ({"context": 8}, "context"), ({"chunks": -1}, "chunks"),
    ({"mode": "slow"}, "mode"), ({"threads": 0}, "threads"), ({"dataset_path": ""}, "dataset"),
    ({"reference": "abc"}, "reference"), ({"temperature": 1}, "temperature"),
])
def test_bad_parameters_name_their_field(teams, demo_variant, params, field):
    with pytest.raises(JobError) as err:
        get_method("evaluate").validate({"dataset_path": TEXT, **params}, demo_variant)
    assert field in err.value.errors


def test_a_hub_dataset_offline_fails_at_once_naming_the_field(teams, demo_variant, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(JobError) as err:
        get_method("evaluate").validate({"hub_dataset": "Salesforce/wikitext"}, demo_variant)
    assert "HF_HUB_OFFLINE" in err.value.errors["hub_dataset"]
    assert "upload the text as a catalog dataset" in err.value.errors["hub_dataset"]


def test_planner_scheme_names_follow_the_variant():
    def v(fmt, qt):
        return Variant(format=fmt, quant_type=qt)

    assert [planner_scheme(x) for x in (
        v("gguf", "Q4_K_M"), v("gguf", "F32"), v("hf", "F16"), v("bnb-nf4", "nf4-dq"),
        v("bnb-nf4", "nf4"), v("bnb-int8", "int8"), v("gptq", "4bit-g64-act"))] == [
        "Q4_K_M", "FP32", "FP16", "NF4-DQ", "NF4", "INT8", "GPTQ-4bit-g64"]


def test_estimate_is_the_planners_total_plus_the_reference_weights(teams, demo_variant):
    method = get_method("evaluate")
    alone = method.estimate(method.validate({"dataset_path": TEXT}, demo_variant), demo_variant)
    assert alone["planner"]["scheme"] == "Q4_1" and alone["planner"]["runtime"] == "llama.cpp"
    assert alone["planner"]["context"] == 256
    assert alone["peak_memory_bytes"] == alone["planner"]["total_bytes"]
    q8 = child(demo_variant)
    with_ref = method.estimate(method.validate({"dataset_path": TEXT}, q8), q8)
    assert with_ref["planner"]["scheme"] == "Q8_0"
    assert with_ref["peak_memory_bytes"] > with_ref["planner"]["total_bytes"] + 512 * 1024**2
