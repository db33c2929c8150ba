"""Preset models: the config.json fields that decide size, from each model's Hugging Face repo.

Only shape fields are kept (no tokenizer or rope details beyond what changes the tensor list).
`PRESETS[key] = {"name": ..., "repo": ..., "family": ..., "config": {...}}`; build with
`Architecture.from_config(PRESETS[key]["config"], name=PRESETS[key]["name"])`. The current models'
config.json files (2024-12 on) are in planner/preset_configs.py; `preset_choices()` groups the
presets by family for the picker, newest models first.
"""

from __future__ import annotations

from typing import Any

from planner import preset_configs as cfgs


def _llama(hidden: int, layers: int, heads: int, kv: int, inter: int, vocab: int, max_pos: int,
           tied: bool = False, head_dim: int | None = None, model_type: str = "llama",
           llama3_rope: bool = False, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "model_type": model_type,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "intermediate_size": inter,
        "vocab_size": vocab,
        "max_position_embeddings": max_pos,
        "tie_word_embeddings": tied,
    }
    if head_dim is not None:
        cfg["head_dim"] = head_dim
    if llama3_rope:
        cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    cfg.update(extra)
    return cfg


def _preset(name: str, repo: str, config: dict[str, Any], family: str = "") -> dict[str, Any]:
    return {"name": name, "repo": repo, "family": family or _family(repo), "config": config}


# Hugging Face organisation -> picker group, for the 2024 presets below.
_ORG_FAMILY = {"meta-llama": "Llama", "mistralai": "Mistral", "Qwen": "Qwen", "google": "Gemma",
               "microsoft": "Phi", "HuggingFaceTB": "SmolLM"}


def _family(repo: str) -> str:
    return _ORG_FAMILY.get(repo.split("/")[0], "Other")


PRESETS: dict[str, dict[str, Any]] = {
    "llama-2-7b": _preset("Llama 2 7B", "meta-llama/Llama-2-7b-hf",
                          _llama(4096, 32, 32, 32, 11008, 32000, 4096)),
    "llama-2-13b": _preset("Llama 2 13B", "meta-llama/Llama-2-13b-hf",
                           _llama(5120, 40, 40, 40, 13824, 32000, 4096)),
    "llama-2-70b": _preset("Llama 2 70B", "meta-llama/Llama-2-70b-hf",
                           _llama(8192, 80, 64, 8, 28672, 32000, 4096)),
    "llama-3.1-8b": _preset("Llama 3.1 8B", "meta-llama/Llama-3.1-8B",
                            _llama(4096, 32, 32, 8, 14336, 128256, 131072, llama3_rope=True)),
    "llama-3.1-70b": _preset("Llama 3.1 70B", "meta-llama/Llama-3.1-70B",
                             _llama(8192, 80, 64, 8, 28672, 128256, 131072, llama3_rope=True)),
    "llama-3.1-405b": _preset("Llama 3.1 405B", "meta-llama/Llama-3.1-405B",
                              _llama(16384, 126, 128, 8, 53248, 128256, 131072, llama3_rope=True)),
    "llama-3.2-1b": _preset("Llama 3.2 1B", "meta-llama/Llama-3.2-1B",
                            _llama(2048, 16, 32, 8, 8192, 128256, 131072, tied=True, head_dim=64,
                                   llama3_rope=True)),
    "llama-3.2-3b": _preset("Llama 3.2 3B", "meta-llama/Llama-3.2-3B",
                            _llama(3072, 28, 24, 8, 8192, 128256, 131072, tied=True, head_dim=128,
                                   llama3_rope=True)),
    "mistral-7b-v0.3": _preset("Mistral 7B v0.3", "mistralai/Mistral-7B-v0.3",
                               _llama(4096, 32, 32, 8, 14336, 32768, 32768, model_type="mistral",
                                      head_dim=128)),
    "mistral-nemo-12b": _preset("Mistral Nemo 12B", "mistralai/Mistral-Nemo-Base-2407",
                                _llama(5120, 40, 32, 8, 14336, 131072, 1024000, model_type="mistral",
                                       head_dim=128)),
    "mixtral-8x7b": _preset("Mixtral 8x7B", "mistralai/Mixtral-8x7B-v0.1",
                            _llama(4096, 32, 32, 8, 14336, 32000, 32768, model_type="mixtral",
                                   num_local_experts=8, num_experts_per_tok=2)),
    "mixtral-8x22b": _preset("Mixtral 8x22B", "mistralai/Mixtral-8x22B-v0.1",
                             _llama(6144, 56, 48, 8, 16384, 32000, 65536, model_type="mixtral",
                                    num_local_experts=8, num_experts_per_tok=2)),
    "codestral-22b": _preset("Codestral 22B", "mistralai/Codestral-22B-v0.1",
                             _llama(6144, 56, 48, 8, 16384, 32768, 32768, model_type="mistral",
                                    head_dim=128)),
    "mistral-large-2407": _preset("Mistral Large 2 (2407)", "mistralai/Mistral-Large-Instruct-2407",
                                  _llama(12288, 88, 96, 8, 28672, 32768, 131072, model_type="mistral",
                                         head_dim=128)),
    "qwen2.5-0.5b": _preset("Qwen2.5 0.5B", "Qwen/Qwen2.5-0.5B",
                            _llama(896, 24, 14, 2, 4864, 151936, 32768, tied=True, model_type="qwen2")),
    "qwen2.5-1.5b": _preset("Qwen2.5 1.5B", "Qwen/Qwen2.5-1.5B",
                            _llama(1536, 28, 12, 2, 8960, 151936, 131072, tied=True, model_type="qwen2")),
    "qwen2.5-3b": _preset("Qwen2.5 3B", "Qwen/Qwen2.5-3B",
                          _llama(2048, 36, 16, 2, 11008, 151936, 32768, tied=True, model_type="qwen2")),
    "qwen2.5-7b": _preset("Qwen2.5 7B", "Qwen/Qwen2.5-7B",
                          _llama(3584, 28, 28, 4, 18944, 152064, 131072, model_type="qwen2")),
    "qwen2.5-14b": _preset("Qwen2.5 14B", "Qwen/Qwen2.5-14B",
                           _llama(5120, 48, 40, 8, 13824, 152064, 131072, model_type="qwen2")),
    "qwen2.5-32b": _preset("Qwen2.5 32B", "Qwen/Qwen2.5-32B",
                           _llama(5120, 64, 40, 8, 27648, 152064, 131072, model_type="qwen2")),
    "qwen2.5-72b": _preset("Qwen2.5 72B", "Qwen/Qwen2.5-72B",
                           _llama(8192, 80, 64, 8, 29568, 152064, 131072, model_type="qwen2")),
    "gemma-2-2b": _preset("Gemma 2 2B", "google/gemma-2-2b",
                          _llama(2304, 26, 8, 4, 9216, 256000, 8192, tied=True, head_dim=256,
                                 model_type="gemma2", sliding_window=4096)),
    "gemma-2-9b": _preset("Gemma 2 9B", "google/gemma-2-9b",
                          _llama(3584, 42, 16, 8, 14336, 256000, 8192, tied=True, head_dim=256,
                                 model_type="gemma2", sliding_window=4096)),
    "gemma-2-27b": _preset("Gemma 2 27B", "google/gemma-2-27b",
                           _llama(4608, 46, 32, 16, 36864, 256000, 8192, tied=True, head_dim=128,
                                  model_type="gemma2", sliding_window=4096)),
    "phi-3-mini": _preset("Phi-3 mini 4k", "microsoft/Phi-3-mini-4k-instruct",
                          _llama(3072, 32, 32, 32, 8192, 32064, 4096, model_type="phi3")),
    "smollm2-135m": _preset("SmolLM2 135M", "HuggingFaceTB/SmolLM2-135M-Instruct",
                            _llama(576, 30, 9, 3, 1536, 49152, 8192, tied=True)),
    "smollm2-360m": _preset("SmolLM2 360M", "HuggingFaceTB/SmolLM2-360M-Instruct",
                            _llama(960, 32, 15, 5, 2560, 49152, 8192, tied=True)),
    "smollm2-1.7b": _preset("SmolLM2 1.7B", "HuggingFaceTB/SmolLM2-1.7B-Instruct",
                            _llama(2048, 24, 32, 32, 8192, 49152, 8192, tied=True)),
}


# Current models (planner/preset_configs.py has their config.json and its source notes).
CURRENT: dict[str, dict[str, Any]] = {
    "qwen3-0.6b": _preset("Qwen3 0.6B", "Qwen/Qwen3-0.6B", cfgs.QWEN3["qwen3-0.6b"], "Qwen"),
    "qwen3-1.7b": _preset("Qwen3 1.7B", "Qwen/Qwen3-1.7B", cfgs.QWEN3["qwen3-1.7b"], "Qwen"),
    "qwen3-4b": _preset("Qwen3 4B", "Qwen/Qwen3-4B", cfgs.QWEN3["qwen3-4b"], "Qwen"),
    "qwen3-8b": _preset("Qwen3 8B", "Qwen/Qwen3-8B", cfgs.QWEN3["qwen3-8b"], "Qwen"),
    "qwen3-14b": _preset("Qwen3 14B", "Qwen/Qwen3-14B", cfgs.QWEN3["qwen3-14b"], "Qwen"),
    "qwen3-32b": _preset("Qwen3 32B", "Qwen/Qwen3-32B", cfgs.QWEN3["qwen3-32b"], "Qwen"),
    "qwen3-30b-a3b": _preset("Qwen3 30B-A3B (MoE)", "Qwen/Qwen3-30B-A3B", cfgs.QWEN3["qwen3-30b-a3b"], "Qwen"),
    "qwen3-235b-a22b": _preset("Qwen3 235B-A22B (MoE)", "Qwen/Qwen3-235B-A22B",
                               cfgs.QWEN3["qwen3-235b-a22b"], "Qwen"),
    "qwen3-next-80b-a3b": _preset("Qwen3-Next 80B-A3B (hybrid MoE)", "Qwen/Qwen3-Next-80B-A3B-Instruct",
                                  cfgs.QWEN3_NEXT_80B, "Qwen"),
    "qwen3.5-27b": _preset("Qwen3.5 27B", "Qwen/Qwen3.5-27B", cfgs.QWEN3_5["qwen3.5-27b"], "Qwen"),
    "qwen3.5-35b-a3b": _preset("Qwen3.5 35B-A3B (MoE)", "Qwen/Qwen3.5-35B-A3B",
                               cfgs.QWEN3_5["qwen3.5-35b-a3b"], "Qwen"),
    "qwen3.5-122b-a10b": _preset("Qwen3.5 122B-A10B (MoE)", "Qwen/Qwen3.5-122B-A10B",
                                 cfgs.QWEN3_5["qwen3.5-122b-a10b"], "Qwen"),
    "qwen3.5-397b-a17b": _preset("Qwen3.5 397B-A17B (MoE)", "Qwen/Qwen3.5-397B-A17B",
                                 cfgs.QWEN3_5["qwen3.5-397b-a17b"], "Qwen"),
    "gemma-3-1b": _preset("Gemma 3 1B", "google/gemma-3-1b-it", cfgs.GEMMA3["gemma-3-1b"], "Gemma"),
    "gemma-3-4b": _preset("Gemma 3 4B", "google/gemma-3-4b-it", cfgs.GEMMA3["gemma-3-4b"], "Gemma"),
    "gemma-3-12b": _preset("Gemma 3 12B", "google/gemma-3-12b-it", cfgs.GEMMA3["gemma-3-12b"], "Gemma"),
    "gemma-3-27b": _preset("Gemma 3 27B", "google/gemma-3-27b-it", cfgs.GEMMA3["gemma-3-27b"], "Gemma"),
    "gemma-4-26b-a4b": _preset("Gemma 4 26B-A4B (MoE, text)", "google/gemma-4-26B-A4B",
                               cfgs.GEMMA4["gemma-4-26b-a4b"], "Gemma"),
    "gemma-4-31b": _preset("Gemma 4 31B (text)", "google/gemma-4-31B-it", cfgs.GEMMA4["gemma-4-31b"], "Gemma"),
    "gpt-oss-20b": _preset("gpt-oss-20b", "openai/gpt-oss-20b", cfgs.GPT_OSS_20B, "gpt-oss"),
    "gpt-oss-120b": _preset("gpt-oss-120b", "openai/gpt-oss-120b", cfgs.GPT_OSS_120B, "gpt-oss"),
    "deepseek-v3": _preset("DeepSeek-V3 671B", "deepseek-ai/DeepSeek-V3", cfgs.DEEPSEEK_V3, "DeepSeek"),
    "deepseek-r1": _preset("DeepSeek-R1 671B", "deepseek-ai/DeepSeek-R1", cfgs.DEEPSEEK_V3, "DeepSeek"),
    "deepseek-v3.2": _preset("DeepSeek-V3.2 671B (sparse attention)", "deepseek-ai/DeepSeek-V3.2", cfgs.DEEPSEEK_V32,
                             "DeepSeek"),
    "kimi-k2": _preset("Kimi K2 1T", "moonshotai/Kimi-K2-Instruct", cfgs.KIMI_K2, "Kimi"),
    "llama-4-scout": _preset("Llama 4 Scout 17B-16E", "meta-llama/Llama-4-Scout-17B-16E-Instruct",
                             cfgs.LLAMA4_SCOUT, "Llama"),
    "llama-4-maverick": _preset("Llama 4 Maverick 17B-128E", "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
                                cfgs.LLAMA4_MAVERICK, "Llama"),
    "mistral-small-3.2-24b": _preset("Mistral Small 3.2 24B", "mistralai/Mistral-Small-3.2-24B-Instruct-2506",
                                     cfgs.MISTRAL_SMALL_32, "Mistral"),
    "mistral-small-3.1-24b": _preset("Mistral Small 3.1 24B", "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
                                     cfgs.MISTRAL_SMALL_31, "Mistral"),
    "phi-4": _preset("Phi-4 14B", "microsoft/phi-4", cfgs.PHI4, "Phi"),
    "glm-4.5-air": _preset("GLM-4.5-Air 106B-A12B", "zai-org/GLM-4.5-Air", cfgs.GLM45_AIR, "GLM"),
    "glm-5": _preset("GLM-5 744B-A40B", "zai-org/GLM-5", cfgs.GLM5, "GLM"),
    "granite-4.0-h-small": _preset("Granite 4.0 H Small 32B-A9B", "ibm-granite/granite-4.0-h-small",
                                   cfgs.GRANITE4_H_SMALL, "Granite"),
    "granite-4.0-h-tiny": _preset("Granite 4.0 H Tiny 7B-A1B", "ibm-granite/granite-4.0-h-tiny",
                                  cfgs.GRANITE4_H_TINY, "Granite"),
    "nemotron-h-8b": _preset("Nemotron-H 8B (hybrid)", "nvidia/Nemotron-H-8B-Base-8K", cfgs.NEMOTRON_H_8B,
                             "Nemotron"),
    "nemotron-h-56b": _preset("Nemotron-H 56B (hybrid)", "nvidia/Nemotron-H-56B-Base-8K", cfgs.NEMOTRON_H_56B,
                              "Nemotron"),
    "ernie-4.5-21b-a3b": _preset("ERNIE 4.5 21B-A3B", "baidu/ERNIE-4.5-21B-A3B-PT", cfgs.ERNIE45_21B_A3B, "ERNIE"),
    "minimax-m2.5": _preset("MiniMax-M2.5 230B-A10B", "MiniMaxAI/MiniMax-M2.5", cfgs.MINIMAX_M25, "MiniMax"),
    "smollm3-3b": _preset("SmolLM3 3B", "HuggingFaceTB/SmolLM3-3B", cfgs.SMOLLM3_3B, "SmolLM"),
    "olmo-3-7b": _preset("OLMo 3 7B", "allenai/Olmo-3-1025-7B", cfgs.OLMO3["olmo-3-7b"], "OLMo"),
    "olmo-3-32b": _preset("OLMo 3 32B", "allenai/Olmo-3-1125-32B", cfgs.OLMO3["olmo-3-32b"], "OLMo"),
}
PRESETS.update(CURRENT)

# Picker order: families with current models first.
FAMILY_ORDER = ("Qwen", "gpt-oss", "DeepSeek", "Kimi", "GLM", "Llama", "Gemma", "Mistral", "Phi", "Granite",
                "Nemotron", "ERNIE", "MiniMax", "SmolLM", "OLMo")


def preset_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Django grouped choices: [(family, [(key, name), ...]), ...], families in FAMILY_ORDER (others
    after, alphabetically) and, inside each, the current models first, then the older ones."""
    groups: dict[str, list[tuple[str, str]]] = {}
    ordered = [k for k in PRESETS if k in CURRENT] + [k for k in PRESETS if k not in CURRENT]
    for key in ordered:
        groups.setdefault(PRESETS[key]["family"], []).append((key, PRESETS[key]["name"]))
    rank = {family: i for i, family in enumerate(FAMILY_ORDER)}
    return sorted(groups.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))


def preset_architecture(key: str):  # -> Architecture (import kept local: presets has no hard deps)
    """Architecture for a preset key; raises EstimatorError('preset', ...) for unknown keys."""
    from planner.estimator import Architecture, EstimatorError

    if key not in PRESETS:
        raise EstimatorError("preset", f"unknown preset {key!r}")
    preset = PRESETS[key]
    return Architecture.from_config(preset["config"], name=preset["name"])
