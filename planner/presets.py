"""Preset models: the config.json fields that decide size, from each model's Hugging Face repo.

Only shape fields are kept (no tokenizer or rope details beyond what changes the tensor list).
`PRESETS[key] = {"name": ..., "repo": ..., "config": {...}}`; build with
`Architecture.from_config(PRESETS[key]["config"], name=PRESETS[key]["name"])`.
"""

from __future__ import annotations

from typing import Any


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


def _preset(name: str, repo: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "repo": repo, "config": config}


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


def preset_architecture(key: str):  # -> Architecture (import kept local: presets has no hard deps)
    """Architecture for a preset key; raises EstimatorError('preset', ...) for unknown keys."""
    from planner.estimator import Architecture, EstimatorError

    if key not in PRESETS:
        raise EstimatorError("preset", f"unknown preset {key!r}")
    preset = PRESETS[key]
    return Architecture.from_config(preset["config"], name=preset["name"])
