"""Vision towers and projectors (Gemma 3's SigLIP, Qwen2.5-VL's ViT, Llama 4's, Pixtral) counted apart.

Pinned: transformers 5.23.0 building the model from these configs on the meta device
(`with torch.device("meta"): AutoModelForImageTextToText.from_config(cfg)`, or the
*ForConditionalGeneration class) and summing the parameters outside the language model:
`vision_tower` + `multi_modal_projector` (Gemma 3, Mistral 3), `visual` (Qwen2.5-VL),
`vision_model` + `multi_modal_projector` (Llama 4). The Llama 4 and Mistral Small 3.2 figures
were measured from planner/preset_configs.py's LLAMA4_SCOUT / LLAMA4_MAVERICK / MISTRAL_SMALL_32
and equal TRANSFORMERS_FULL - TRANSFORMERS_TEXT in tests/planner/test_presets.py.
"""

import pytest

from planner.estimator import Architecture, EstimatorError, estimate, HARDWARE_PROFILES, Workload
from planner.estimator.vision import vision_params
from planner.preset_configs import LLAMA4_MAVERICK, LLAMA4_SCOUT as LLAMA4_SCOUT_FULL, MISTRAL_SMALL_32
from tests.planner.published_configs import GEMMA3_27B, GEMMA3_27B_VISION, QWEN2_5_VL_7B, LLAMA4_SCOUT


def test_gemma3_27b_vision_tower_and_projector():
    a = Architecture.from_config({**GEMMA3_27B, "vision_config": GEMMA3_27B_VISION})
    assert a.vision_params == 423_060_336   # SigLIP so400m (~0.4B) + 1152 × 5376 projection
    assert a.total_params == Architecture.from_config(GEMMA3_27B).total_params   # the text model alone
    assert any("vision tower" in n for n in a.notes)


def test_qwen2_5_vl_7b_vision_tower():
    a = Architecture.from_config(QWEN2_5_VL_7B)
    assert a.vision_params == 676_550_144
    # transformers counts 8,292,166,656 for the whole Qwen2_5_VLForConditionalGeneration (the card's "8B"):
    # the text model (qwen2-like, q/k/v biases; llama.cpp arch qwen2vl) plus this tower
    assert a.arch == "qwen2vl"
    assert a.total_params + a.vision_params == 8_292_166_656


def test_llama4_vision_model_and_projector():
    # measured: vision_model 850,960,896 (of which vision_adapter 39,845,888) + multi_modal_projector 20,971,520
    for cfg in (LLAMA4_SCOUT_FULL, LLAMA4_MAVERICK):
        a = Architecture.from_config(cfg)
        assert a.vision_params == 871_932_416
        assert not any("not counted" in n for n in a.notes)
    # the text model's figure is unchanged by the tower (the loader counts it apart)
    assert Architecture.from_config(LLAMA4_SCOUT_FULL).total_params == Architecture.from_config(
        {k: v for k, v in LLAMA4_SCOUT_FULL.items() if k != "vision_config"}).total_params


def test_mistral_small_3_2_pixtral_tower_and_projector():
    # measured: vision_tower 403,305,472 + multi_modal_projector 35,652,608 (norm, patch merger, linear_1/2)
    a = Architecture.from_config(MISTRAL_SMALL_32)
    assert a.vision_params == 438_958_080
    # with projector biases and two feature layers (Mistral3Config fields), measured by building
    # PixtralVisionModel (403,305,472) + Mistral3MultiModalProjector (40,905,728) on the meta device
    n = vision_params({**MISTRAL_SMALL_32, "multimodal_projector_bias": True, "vision_feature_layer": [-1, -2]}, [])
    assert n == 444_211_200


def test_vision_figure_reaches_the_estimate_and_unknown_towers_are_refused():
    a = Architecture.from_config({**GEMMA3_27B, "vision_config": GEMMA3_27B_VISION})
    est = estimate(a, HARDWARE_PROFILES["rtx-4090"], Workload(), ["Q4_K_M"])
    assert est.to_dict()["model"]["vision_params"] == 423_060_336
    with pytest.raises(EstimatorError, match="vision tower of 'llava' is not one the estimator counts"):
        vision_params({"model_type": "llava", "vision_config": {"hidden_size": 1024}}, [])
    assert Architecture.from_config(LLAMA4_SCOUT).vision_params == 0   # text-only config: no tower
