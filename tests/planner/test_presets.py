"""Presets of current models: the estimator's total equals what transformers builds from the same
config.json, and is the total the model card publishes; the picker groups presets by family.

TRANSFORMERS_TEXT / TRANSFORMERS_FULL were measured once with `python bench/preset_param_counts.py`
(transformers 5.23 on the meta device: parameters, tied weights once, plus persistent buffers such
as DeepSeek-V3's router `e_score_correction_bias`). TEXT is the language model, what the estimator
counts; FULL adds the vision tower and projector of multimodal checkpoints.

CARDS are the published totals, with where they were published. Most cards state two or three
significant digits; a card figure is met when the total is within 0.5 % of it or, for the cards
whose precision is coarser than that, rounds (or, where the publisher truncates, truncates) to it.

Every preset, the 2024 ones too, also passes the check a pasted config.json gets: transformers builds
it on the meta device and the estimator must equal it in total, vision part and per layer.
"""

import pytest

from planner.estimator import Architecture, EstimatorError
from planner.model_definition import check_architecture, model_definition
from planner.presets import CURRENT, PRESETS, preset_architecture, preset_choices
from tests.planner.published_configs import GEMMA4_26B_A4B

B = 10**9

TRANSFORMERS_TEXT = {
    "qwen3-0.6b": 596_049_920, "qwen3-1.7b": 1_720_574_976, "qwen3-4b": 4_022_468_096,
    "qwen3-8b": 8_190_735_360, "qwen3-14b": 14_768_307_200, "qwen3-32b": 32_762_123_264,
    "qwen3-30b-a3b": 30_532_122_624, "qwen3-235b-a22b": 235_093_634_560,
    "qwen3-next-80b-a3b": 79_674_391_296,
    "qwen3.5-27b": 26_895_998_464, "qwen3.5-35b-a3b": 34_660_610_688, "qwen3.5-122b-a10b": 122_111_526_912,
    "qwen3.5-397b-a17b": 396_346_350_336,
    "gemma-3-1b": 999_885_952, "gemma-3-4b": 3_880_263_168, "gemma-3-12b": 11_766_034_176,
    "gemma-3-27b": 27_009_346_304,
    "gpt-oss-20b": 20_914_757_184, "gpt-oss-120b": 116_829_156_672,
    "deepseek-v3": 671_026_419_200, "deepseek-r1": 671_026_419_200, "kimi-k2": 1_026_408_232_448,
    "llama-4-scout": 107_769_861_120, "llama-4-maverick": 400_711_848_960,
    "mistral-small-3.2-24b": 23_572_403_200, "phi-4": 14_659_507_200, "glm-4.5-air": 106_852_251_264,
    "granite-4.0-h-small": 32_207_337_984, "granite-4.0-h-tiny": 6_939_037_248,
    "nemotron-h-8b": 8_100_852_736, "nemotron-h-56b": 56_324_350_464, "glm-5": 743_911_218_432,
    "ernie-4.5-21b-a3b": 21_825_437_888, "minimax-m2.5": 228_689_764_864, "smollm3-3b": 3_075_098_624,
    "deepseek-v3.2": 671_877_944_064, "gemma-4-26b-a4b": 25_233_141_790, "gemma-4-31b": 30_697_345_340,
    "mistral-small-3.1-24b": 23_572_403_200, "olmo-3-7b": 7_298_011_136, "olmo-3-32b": 32_233_522_176,
}
TRANSFORMERS_FULL = {  # with the vision tower and multimodal projector
    "gemma-3-4b": 4_300_079_472, "gemma-3-12b": 12_187_325_040, "gemma-3-27b": 27_432_406_640,
    "llama-4-scout": 108_641_793_536, "llama-4-maverick": 401_583_781_376,
    "mistral-small-3.2-24b": 24_011_361_280, "mistral-small-3.1-24b": 24_011_361_280,
    "qwen3.5-27b": 27_356_728_560, "qwen3.5-35b-a3b": 35_107_181_936, "qwen3.5-122b-a10b": 122_562_817_776,
    "qwen3.5-397b-a17b": 396_802_360_816,
}

# key -> (published total, scope, stated precision, how the publisher rounds, source)
CARDS = {
    "qwen3-0.6b": (0.6 * B, "text", 0.1 * B, "round", "Qwen/Qwen3-0.6B card: Number of Parameters 0.6B"),
    "qwen3-1.7b": (1.7 * B, "text", 0.1 * B, "round", "Qwen/Qwen3-1.7B card: 1.7B"),
    "qwen3-4b": (4.0 * B, "text", 0.1 * B, "round", "Qwen/Qwen3-4B card: 4.0B"),
    "qwen3-8b": (8.2 * B, "text", 0.1 * B, "round", "Qwen/Qwen3-8B card: 8.2B"),
    "qwen3-14b": (14.8 * B, "text", 0.1 * B, "round", "Qwen/Qwen3-14B card: 14.8B"),
    "qwen3-32b": (32.8 * B, "text", 0.1 * B, "round", "Qwen/Qwen3-32B card: 32.8B"),
    "qwen3-30b-a3b": (30.5 * B, "text", 0.1 * B, "round", "Qwen/Qwen3-30B-A3B card: 30.5B total, 3.3B active"),
    "qwen3-235b-a22b": (235 * B, "text", 1 * B, "round", "Qwen/Qwen3-235B-A22B card: 235B total, 22B active"),
    "qwen3-next-80b-a3b": (80 * B, "text", 1 * B, "round", "Qwen/Qwen3-Next-80B-A3B-Instruct card: 80B total"),
    # Qwen3.5 is natively multimodal: its figures are the whole checkpoint's
    "qwen3.5-27b": (27 * B, "full", 1 * B, "round", "Qwen/Qwen3.5-27B: 27B, its name (no other figure found)"),
    "qwen3.5-35b-a3b": (35 * B, "full", 1 * B, "round",
                        "transformers docs, model_doc/qwen3_5_moe.md: Qwen/Qwen3.5-35B-A3B (35B total/3B active)"),
    "qwen3.5-122b-a10b": (122 * B, "full", 1 * B, "round",
                          "Qwen/Qwen3.5-122B-A10B: 122B total, 10B active, its name (no other figure found)"),
    "qwen3.5-397b-a17b": (397 * B, "full", 1 * B, "round",
                          "Qwen3.5 release post (qwen.ai/blog?id=qwen3.5): 397B total, 17B active"),
    # Gemma 3 Technical Report (arXiv:2503.19786) Table 1: embedding + non-embedding parameters
    "gemma-3-1b": ((302 + 698) * 10**6, "text", 10**6, "round", "Gemma 3 report Table 1: 302M + 698M"),
    "gemma-3-4b": ((675 + 3209) * 10**6, "text", 10**6, "round", "Gemma 3 report Table 1: 675M + 3,209M"),
    "gemma-3-12b": ((1012 + 10759) * 10**6, "text", 10**6, "round", "Gemma 3 report Table 1: 1,012M + 10,759M"),
    "gemma-3-27b": ((1416 + 25600) * 10**6, "text", 10**6, "round", "Gemma 3 report Table 1: 1,416M + 25,600M"),
    # gpt-oss-120b & gpt-oss-20b model card (arXiv:2508.10925) Table 1
    "gpt-oss-20b": (20.91 * B, "text", 0.01 * B, "round", "gpt-oss model card Table 1: 20.91B total"),
    "gpt-oss-120b": (116.83 * B, "text", 0.01 * B, "round", "gpt-oss model card Table 1: 116.83B total"),
    "deepseek-v3": (671 * B, "text", 1 * B, "round", "DeepSeek-V3 README: 671B total (685B with the MTP module)"),
    "deepseek-r1": (671 * B, "text", 1 * B, "round", "DeepSeek-R1 README: 671B total"),
    "kimi-k2": (10**12, "text", 10**12, "round", "Kimi-K2-Instruct card: 1T total, 32B activated"),
    "llama-4-scout": (109 * B, "full", 1 * B, "round", "Llama-4-Scout card: 109B total, 17B active"),
    "llama-4-maverick": (400 * B, "full", 1 * B, "round", "Llama-4-Maverick card: 400B total, 17B active"),
    "mistral-small-3.2-24b": (24 * B, "full", 1 * B, "round", "Mistral-Small-3.2-24B card: 24B"),
    "phi-4": (14 * B, "text", 1 * B, "truncate", "microsoft/phi-4 card: 14B parameters"),
    "glm-4.5-air": (106 * B, "text", 1 * B, "truncate", "GLM-4.5 report (arXiv:2508.06471) Table 1: 106B total"),
    "granite-4.0-h-small": (32 * B, "text", 1 * B, "round", "granite-4.0-h-small card: 32B total, 9B active"),
    "granite-4.0-h-tiny": (7 * B, "text", 1 * B, "round", "granite-4.0-h-tiny card: 7B total, 1B active"),
    "nemotron-h-8b": (8 * B, "text", 1 * B, "round",
                      "NVIDIA ADLR Nemotron-H page: \"a series of 8B models (Nemotron-H-8B-Base, ...)\""),
    "nemotron-h-56b": (56 * B, "text", 1 * B, "round",
                       "nvidia/Nemotron-H-56B-Base-8K card: \"This model has 56B model parameters\""),
    "glm-5": (744 * B, "text", 1 * B, "round", "GLM-5 report (arXiv:2602.15763) architecture table: 744B total, 40B "
                                               "activated"),
    "ernie-4.5-21b-a3b": (21 * B, "text", 1 * B, "truncate",
                          "transformers docs, model_doc/ernie4_5_moe.md: 21B total, 3B active"),
    # M2.5 shares M2's architecture and sizes (transformers' MiniMaxM2Config defaults are both's)
    "minimax-m2.5": (230 * B, "text", 10 * B, "round", "MiniMax-AI/MiniMax-M2 README: \"230 billion total parameters "
                                                         "with 10 billion active parameters\""),
    "smollm3-3b": (3 * B, "text", 1 * B, "round", "SmolLM3 release post (huggingface/blog smollm3.md): \"3B model\""),
    # DeepSeek-V3.2 keeps V3's size; the indexer adds 0.85B (not counted in the name)
    "deepseek-v3.2": (671 * B, "text", 1 * B, "round",
                      "deepseek-ai/DeepSeek-V3.2-Exp README: its inference config is config_671B_v3.2.json"),
    # Gemma 4 model card, model table: the language model's figures (transformers builds the published
    # multimodal files at 25,805,936,206 and 31,273,088,876 with the vision tower, which would not make them)
    "gemma-4-26b-a4b": (25.2 * B, "text", 0.1 * B, "round", "Gemma 4 model card: 26B A4B, 25.2B total, 3.8B active"),
    "gemma-4-31b": (30.7 * B, "text", 0.1 * B, "round", "Gemma 4 model card: 31B dense, 30.7B"),
    "mistral-small-3.1-24b": (24 * B, "full", 1 * B, "round",
                              "transformers docs, model_doc/mistral3.md: Mistral Small 3.1 (2503) \"With 24 billion "
                              "parameters\""),
    "olmo-3-7b": (7 * B, "text", 1 * B, "round", "Olmo 3 report (arXiv:2512.13961) abstract: 7B and 32B scales"),
    "olmo-3-32b": (32 * B, "text", 1 * B, "round", "Olmo 3 report (arXiv:2512.13961) abstract: 7B and 32B scales"),
}

def test_every_current_preset_is_pinned():
    assert set(CURRENT) == set(TRANSFORMERS_TEXT) == set(CARDS)


@pytest.mark.parametrize("key", sorted(TRANSFORMERS_TEXT))
def test_total_equals_transformers(key):
    assert preset_architecture(key).total_params == TRANSFORMERS_TEXT[key]


@pytest.mark.parametrize("key", sorted(CARDS))
def test_total_is_the_published_one(key):
    card, scope, unit, rounding, source = CARDS[key]
    total = preset_architecture(key).total_params
    if scope == "full":  # the vision tower as transformers builds it
        total += TRANSFORMERS_FULL[key] - TRANSFORMERS_TEXT[key]
    if abs(total - card) <= 0.005 * card:
        return
    stated = card / unit
    shown = round(total / unit) if rounding == "round" else total // unit
    assert shown == round(stated), f"{key}: {total:,} does not make {source}"


def test_strictly_within_half_a_percent_of_the_card():
    """Which cards the 0.5 % bound holds for; the rest state too few digits (see CARDS)."""
    coarse = {k for k, (card, scope, *_rest) in CARDS.items()
              if abs(TRANSFORMERS_TEXT[k] + (TRANSFORMERS_FULL[k] - TRANSFORMERS_TEXT[k] if scope == "full" else 0)
                     - card) > 0.005 * card}
    assert coarse == {"qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "kimi-k2", "phi-4", "glm-4.5-air",
                      "granite-4.0-h-small", "granite-4.0-h-tiny", "nemotron-h-8b", "nemotron-h-56b", "qwen3.5-27b",
                      "ernie-4.5-21b-a3b", "minimax-m2.5", "smollm3-3b", "olmo-3-7b", "olmo-3-32b"}


# model_type -> the one transformers registers the checkpoint's class under: moonshotai/Kimi-K2-Instruct
# declares kimi_k2 (remote code) with architectures ["DeepseekV3ForCausalLM"].
TRANSFORMERS_MODEL_TYPE = {"kimi_k2": "deepseek_v3"}


@pytest.mark.parametrize("key", sorted(PRESETS))
def test_estimator_equals_the_transformers_build(key):
    """Every preset passes the check a pasted config.json gets (model_definition.check_architecture):
    the estimator's parameters equal what transformers builds from the same config on the meta device,
    in total, in the vision part and layer by layer, so a preset cannot drift from its model."""
    config = PRESETS[key]["config"]
    model_type = TRANSFORMERS_MODEL_TYPE.get(config["model_type"], config["model_type"])
    definition = model_definition({**config, "model_type": model_type})
    arch = preset_architecture(key)
    check_architecture(arch, definition)
    assert sorted(definition.layer_params()) == list(range(arch.n_layers))  # the per-layer check ran


def test_active_parameters_of_the_moe_presets():
    # gpt-oss model card Table 1 "active parameters per token" leaves out the embedding table
    # (the unembedding is counted): 3.61B and 5.13B.
    for key, active in (("gpt-oss-20b", 3.61 * B), ("gpt-oss-120b", 5.13 * B)):
        arch = preset_architecture(key)
        assert abs(arch.active_params - arch.embedding_params - active) < 0.005 * active
    # The other cards truncate the active count (all weights used per token, embeddings included):
    for key, stated, unit in (("qwen3-30b-a3b", 33, 10**8), ("qwen3-235b-a22b", 22, B), ("deepseek-v3", 37, B),
                              ("kimi-k2", 32, B), ("llama-4-scout", 17, B), ("llama-4-maverick", 17, B),
                              ("gemma-4-26b-a4b", 38, 10**8)):
        assert preset_architecture(key).active_params // unit == stated, key


def test_the_published_gemma4_file_is_refused_and_its_language_model_is_the_preset():
    """The multimodal config.json as published is refused (the estimator does not count the gemma4
    vision tower); its text_config alone plans the language model the preset holds."""
    with pytest.raises(EstimatorError) as refused:
        Architecture.from_config(GEMMA4_26B_A4B)
    assert refused.value.field == "vision_config" and "gemma4" in refused.value.message
    text = Architecture.from_config(GEMMA4_26B_A4B["text_config"])
    assert text.total_params == TRANSFORMERS_TEXT["gemma-4-26b-a4b"]


def test_every_preset_names_its_repo_and_family():
    for key, preset in PRESETS.items():
        assert preset["repo"].count("/") == 1 and preset["family"] not in ("", "Other"), key


def test_choices_group_every_preset_once_by_family():
    groups = preset_choices()
    keys = [key for _, items in groups for key, _ in items]
    assert sorted(keys) == sorted(PRESETS)
    families = [family for family, _ in groups]
    assert families[:3] == ["Qwen", "gpt-oss", "DeepSeek"] and len(set(families)) == len(families)
    qwen = dict(groups)["Qwen"]
    assert qwen[0] == ("qwen3-0.6b", "Qwen3 0.6B") and qwen[-1][0] == "qwen2.5-72b"  # current first
    assert [k for k, _ in dict(groups)["gpt-oss"]] == ["gpt-oss-20b", "gpt-oss-120b"]


def test_plan_form_offers_the_grouped_choices():
    from planner.forms import PlanForm

    field = PlanForm.base_fields["preset"]
    assert field.valid_value("gpt-oss-20b") and not field.valid_value("Qwen")
    assert [family for family, _ in field.choices][:2] == ["Qwen", "gpt-oss"]
