"""The rule of thumb beside every row: parameters × nominal bytes per parameter, in decimal GB."""

import pytest

from planner.estimator import HARDWARE_PROFILES, Architecture, Workload, estimate
from planner.presets import preset_architecture


@pytest.mark.parametrize("scheme,expected", [("FP32", 29.2e9), ("FP16", 14.6e9), ("BF16", 14.6e9), ("FP8", 7.3e9),
                                             ("INT8", 7.3e9), ("Q8_0", 7.3e9), ("INT4", 3.65e9), ("NF4", 3.65e9),
                                             ("Q4_K_M", 3.65e9), ("AWQ-4bit-g128", 3.65e9), ("Q2_K", 1.825e9),
                                             ("MXFP4", 3.65e9), ("NVFP4", 3.65e9), ("MXFP4_MOE", 3.65e9),
                                             ("FP8-128x128", 7.3e9)])
def test_quick_mode_uses_the_count_the_user_gave(scheme, expected):
    """7.3B × 4 B = 29.2 GB, × 2 B = 14.6 GB, × 1 B = 7.3 GB, × 0.5 B = 3.65 GB, × 0.25 B = 1.825 GB —
    although the shape (Mistral 7B v0.3) has 7,248,023,552 parameters."""
    row = estimate(Architecture.from_param_count("7.3B"), HARDWARE_PROFILES["rtx-4090"], Workload(),
                   [scheme]).rows[0]
    assert row.rule_of_thumb_bytes == expected
    assert row.rule_of_thumb_bytes < row.total_bytes


def test_a_config_uses_its_total_and_the_note_says_what_the_estimate_adds():
    """Llama 3.1 8B: 8,030,261,248 parameters (published) × 2 B = 16,060,522,496 B; at 8192 context the f16
    KV cache is 32 layers × 2 × 8 × 128 × 8192 × 2 B = 1,073,741,824 B = 1.07 GB."""
    rows = {r.scheme: r for r in estimate(preset_architecture("llama-3.1-8b"), HARDWARE_PROFILES["rtx-4090"],
                                             Workload(context=8192), ["FP16", "Q4_K_M"]).rows}
    assert rows["FP16"].rule_of_thumb_bytes == 16_060_522_496
    assert rows["FP16"].rule_of_thumb_note.startswith("8.03B × 2 B = 16.1 GB; the estimate: +1.07 GB KV cache")
    note = rows["Q4_K_M"].rule_of_thumb_note
    assert note.startswith("8.03B × 0.5 B = 4.02 GB; the estimate: +")
    assert "not 4: scales, output" in note and "+1.07 GB KV cache" in note and "compute buffers" in note


def test_training_rows_name_the_training_state():
    row = estimate(preset_architecture("smollm2-135m"), HARDWARE_PROFILES["t4"], Workload(mode="lora"),
                   ["BF16"]).rows[0]
    assert row.rule_of_thumb_bytes == 2 * 134_515_008
    assert "training state" in row.rule_of_thumb_note and "KV cache" not in row.rule_of_thumb_note
