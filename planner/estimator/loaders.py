"""Build an Architecture from a HF config.json dict or GGUF metadata (a bare count: param_count.py).

Every input is validated; problems raise EstimatorError naming the offending field.
"""

from __future__ import annotations

from typing import Any

from .architecture import Architecture
from .errors import EstimatorError
from .fields import LIMITS, _bool, _int  # noqa: F401  (LIMITS re-exported)
from .classic import (CLASSIC_MODEL_TYPES, RECURRENT_MODEL_TYPES, afmoe_config, afmoe_fields, classic_config,
                      classic_fields, cohere2_moe_config, cohere2_moe_fields, hy_v3_fields, mellum_fields,
                      minicpm3_fields)
from .dense import DENSE_MODEL_TYPES, dense_config_defaults, dense_fields
from .hybrid import HYBRID_ARCHS, HYBRID_MODEL_TYPES, hybrid_fields, hybrid_gguf_fields
from .layouts import (DEEPSEEK_MODEL_TYPES, LLAMA4_CHUNK, LLAMA4_MODEL_TYPES, SWA_PATTERN, deepseek_fields, gguf_layout_fields,
                      llama4_fields, swa_fields, swa_pattern_layers)
from .moe_decoders import DSA_MODEL_TYPES, GGUF_METADATA_UNREAD, dsa_fields, ernie_moe_fields
from .gemma4 import gemma4_fields
from .gemma3n import GEMMA3N_MODEL_TYPES, gemma3n_config, gemma3n_fields
from .mimo_v2 import MIMO_V2_MODEL_TYPES, mimo_v2_config, mimo_v2_fields
from .laguna import LAGUNA_MODEL_TYPES, laguna_config, laguna_fields
from .dots3 import DOTS3_MODEL_TYPES, dots3_config, dots3_fields
from .hy_v4 import HY_V4_MODEL_TYPES, hy_v4_config, hy_v4_fields
from .deepseek_v4 import DEEPSEEK_V4_MODEL_TYPES, deepseek_v4_config, deepseek_v4_fields
from .kimi_linear import KIMI_LINEAR_MODEL_TYPES, kimi_linear_config, kimi_linear_fields
from .hrm_text import HRM_TEXT_MODEL_TYPES, hrm_text_config, hrm_text_fields
from .vision import MULTIMODAL_MODEL_TYPES, vision_fields

MAX_TOTAL_PARAMS = 10**15

# HF model_type -> llama.cpp architecture (convert_hf_to_gguf.py writes Mistral/Mixtral as "llama").
MODEL_TYPE_TO_ARCH = {
    "llama": "llama", "mistral": "llama", "mixtral": "llama", "smollm": "llama", "smollm2": "llama",
    "qwen2": "qwen2", "qwen2_5_vl": "qwen2vl", "qwen2_moe": "qwen2moe", "qwen3": "qwen3", "qwen3_moe": "qwen3moe",
    "gemma": "gemma", "gemma2": "gemma2", "gemma3": "gemma3", "gemma3_text": "gemma3", "phi3": "phi3",
    "deepseek_v2": "deepseek2", "deepseek_v3": "deepseek2", "kimi_k2": "deepseek2",
    "glm4_moe_lite": "deepseek2",   # conversion/glm.py Glm4MoeLiteModel(DeepseekV2Model)
    "youtu": "deepseek2",   # layouts.DEEPSEEK_MODEL_TYPES
    "llama4": "llama4", "llama4_text": "llama4", "gpt_oss": "gpt-oss", "glm4_moe": "glm4moe",
    "ernie4_5_moe": "ernie4_5-moe", **DSA_MODEL_TYPES,
    "gemma4_text": "gemma4",
    "smollm3": "smollm3", "minimax_m2": "minimax-m2",   # conversion/llama.py SmolLM3Model, conversion/minimax.py
    **HYBRID_MODEL_TYPES, **DENSE_MODEL_TYPES, **CLASSIC_MODEL_TYPES,
    "minicpm3": "minicpm3",   # conversion/minicpm.py MiniCPM3Model
    "granitemoe": "granitemoe", "granitemoeshared": "granitemoe", "olmoe": "olmoe",   # conversion/granite.py, olmo.py
    "solar_open": "glm4moe",   # conversion/glm.py SolarOpenModel(Glm4MoeModel)
    "exaone_moe": "exaone-moe",   # conversion/exaone.py ExaoneMoEModel
    "granite_swa": "granite_swa", "granitemoe_swa": "granite_swa",   # conversion/granite.py GraniteSWAModel
    "bitnet": "bitnet", "mellum": "mellum", "afmoe": "afmoe",   # conversion/bitnet.py, mellum.py, afmoe.py
    "cohere2_moe": "cohere2moe",   # conversion/command_r.py Cohere2MoeModel
    "hy_v3": "hy_v3",   # conversion/hunyuan.py HYV3Model
    **KIMI_LINEAR_MODEL_TYPES, **GEMMA3N_MODEL_TYPES, **MIMO_V2_MODEL_TYPES,   # kimi_linear.py, gemma3n.py, mimo_v2.py
    **HRM_TEXT_MODEL_TYPES,   # hrm_text.py
    **LAGUNA_MODEL_TYPES,   # laguna.py
    **DOTS3_MODEL_TYPES,   # dots3.py
    **HY_V4_MODEL_TYPES,   # hy_v4.py
    **DEEPSEEK_V4_MODEL_TYPES,   # deepseek_v4.py
    "granite": "granite", "internlm3": "llama", "iquestcoder": "llama", "ministral3": "mistral3", "ernie4_5": "ernie4_5",
}
# Decoders whose block is llama's tensor for tensor (transformers builds InternLM3 and IQuest-Coder
# with LlamaForCausalLM itself; Granite's multipliers and Ministral 3's YaRN/attention scaling are
# config values, not tensors); only what their config classes fill in for an omitted field differs
# (configuration_<type>.py: a key that is absent takes the default, an explicit null is derived).
LLAMA_BLOCK_DEFAULTS = {
    "granite": {},
    # Granite SWA (modeling_granite_swa.py, modeling_granitemoe_swa.py): llama's block with a learned
    # attention sink per head, sliding on the layers i % 4 != 0 unless layer_types says otherwise
    "granite_swa": {"tie_word_embeddings": True, "sliding_window": 128},
    "granitemoe_swa": {"sliding_window": 128},
    "bitnet": {},   # modeling_bitnet.py: llama's block plus attn_sub_norm and ffn_sub_norm
    "internlm3": {"head_dim": 128, "num_key_value_heads": 2},
    "iquestcoder": {"head_dim": 128, "num_key_value_heads": 8},
    "ministral3": {"head_dim": 128, "num_key_value_heads": 8},
    "ernie4_5": {"head_dim": 128, "num_key_value_heads": 2, "tie_word_embeddings": True},
}
# llama.cpp architectures read from config.json only: their MLA ranks, attention sinks, sub-norms and
# QK-norms are not read from GGUF metadata here
CONFIG_ONLY_ARCHS = {"minicpm3", "granite_swa", "bitnet", "mellum", "afmoe", "cohere2moe", "hy_v3",
                     *KIMI_LINEAR_MODEL_TYPES.values(), *GEMMA3N_MODEL_TYPES.values(), *MIMO_V2_MODEL_TYPES.values(),
                     *HRM_TEXT_MODEL_TYPES.values(),
                     *LAGUNA_MODEL_TYPES.values(), *DOTS3_MODEL_TYPES.values(), *HY_V4_MODEL_TYPES.values(),
                     *DEEPSEEK_V4_MODEL_TYPES.values()}
# other config classes' defaults for an omitted field
CONFIG_DEFAULTS = {"solar_open": {"head_dim": 128}}
# config classes whose tie_word_embeddings defaults to True
TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text", "gemma4_text", "gemma3n_text", "lfm2", "smollm3", "minicpm3", "youtu",
                   "cohere2_moe"}
GEMMA_NORMS = {"gemma2", "gemma3"}   # post-attention and post-FFN norms (2 extra per layer)
# MiniMax-M2 (modeling_minimax_m2.py): q/k RMSNorms over the whole projection and the router's
# e_score_correction_bias (a buffer the checkpoint stores; the converter writes exp_probs_b.bias)
MINIMAX_M2_LAYOUT = {"qk_norm": True, "qk_norm_full": True, "expert_bias": True}


def _check_total(arch: Architecture) -> Architecture:
    if arch.total_params > MAX_TOTAL_PARAMS:
        raise EstimatorError("total_params", f"{arch.total_params:.3e} parameters is beyond 1e15")
    return arch


def _check_estimated_size(hidden: int, layers: int, inter: int, vocab: int, experts: int) -> None:
    """Refuse before building the tensor list when the model would be absurdly large."""
    rough = layers * (4 * hidden * hidden + 3 * hidden * inter * max(1, experts)) + 2 * vocab * hidden
    if rough > MAX_TOTAL_PARAMS:
        raise EstimatorError("total_params", f"about {rough:.3e} parameters is beyond 1e15")


def _llama_block_config(cfg: dict, model_type: str) -> dict:
    out = {**LLAMA_BLOCK_DEFAULTS[model_type], **cfg}
    for key in ("head_dim", "num_key_value_heads"):
        if key in out and out[key] is None:   # the config class derives an explicit null
            out.pop(key)
    if model_type in ("granite_swa", "granitemoe_swa") and out.get("layer_types") is None:
        layers = _int(out, "num_hidden_layers")
        out["layer_types"] = ["full_attention" if i % 4 == 0 else "sliding_attention" for i in range(layers)]
    if model_type == "ministral3":   # modeling_ministral3.py: no linear has a bias, whatever the config says
        out.update(attention_bias=False, mlp_bias=False)
    elif model_type == "ernie4_5":   # modeling_ernie4_5.py: use_bias on q/k/v/o and the MLP, never lm_head
        out.update(attention_bias=_bool(cfg, "use_bias", False), mlp_bias=_bool(cfg, "use_bias", False))
    return out


# Families whose module fills in their config class's defaults itself (config.json → complete config).
FAMILY_CONFIG = {"afmoe": afmoe_config, "cohere2_moe": cohere2_moe_config, **{
    t: fill for types, fill in ((KIMI_LINEAR_MODEL_TYPES, kimi_linear_config), (GEMMA3N_MODEL_TYPES, gemma3n_config),
                                (HRM_TEXT_MODEL_TYPES, hrm_text_config), (MIMO_V2_MODEL_TYPES, mimo_v2_config),
                                (LAGUNA_MODEL_TYPES, laguna_config), (DOTS3_MODEL_TYPES, dots3_config),
                                (HY_V4_MODEL_TYPES, hy_v4_config), (DEEPSEEK_V4_MODEL_TYPES, deepseek_v4_config))
    for t in types}}


def architecture_from_config(cfg: Any, name: str = "") -> Architecture:
    """HF `config.json` → Architecture. Multimodal configs with `text_config` use that part."""
    if not isinstance(cfg, dict):
        raise EstimatorError("config", f"must be a JSON object, got {type(cfg).__name__}")
    vision_notes: list[str] = []
    vision = vision_fields(cfg, vision_notes)   # counted before the text part replaces cfg
    if isinstance(cfg.get("text_config"), dict):
        outer = cfg.get("model_type")
        if outer not in MULTIMODAL_MODEL_TYPES:
            raise EstimatorError("model_type", f"{outer!r}: a multimodal architecture whose other towers the "
                                               "estimator does not count, so it refuses rather than guess")
        # transformers ties the output to the embedding by the outer config's flag when it has one
        # (PreTrainedModel.tie_weights reads self.config of the whole model)
        tie = {"tie_word_embeddings": cfg["tie_word_embeddings"]} if "tie_word_embeddings" in cfg else {}
        cfg = {**cfg["text_config"], "model_type": cfg["text_config"].get("model_type", outer), **tie}
    model_type = cfg.get("model_type")
    if model_type is None:
        raise EstimatorError("model_type", "is required: it names the architecture (config.json's \"model_type\")")
    if not isinstance(model_type, str):
        raise EstimatorError("model_type", "must be a string")
    if model_type not in MODEL_TYPE_TO_ARCH:
        raise EstimatorError("model_type", f"{model_type!r}: the estimator does not model this architecture's "
                                           "layers and cache, so it refuses rather than guess")
    arch = MODEL_TYPE_TO_ARCH[model_type]
    if model_type in DENSE_MODEL_TYPES:
        cfg = dense_config_defaults(cfg, model_type)
    elif model_type in CLASSIC_MODEL_TYPES or model_type in RECURRENT_MODEL_TYPES:
        cfg = classic_config(cfg, model_type)
    elif model_type in LLAMA_BLOCK_DEFAULTS:
        cfg = _llama_block_config(cfg, model_type)
    elif model_type in CONFIG_DEFAULTS:
        cfg = {**CONFIG_DEFAULTS[model_type], **cfg}
    elif model_type in FAMILY_CONFIG:
        cfg = FAMILY_CONFIG[model_type](cfg)
    notes: list[str] = vision_notes

    hidden = _int(cfg, "hidden_size")
    pattern = cfg.get("hybrid_override_pattern") or cfg.get("layers_block_type")
    if model_type == "nemotron_h" and cfg.get("num_hidden_layers") is None and isinstance(pattern, (str, list)):
        cfg = {**cfg, "num_hidden_layers": len(pattern)}  # transformers derives it from the pattern
    layers = _int(cfg, "num_hidden_layers")
    heads = _int(cfg, "num_attention_heads")
    kv_heads = _int(cfg, "num_key_value_heads", heads)
    if heads % kv_heads:
        raise EstimatorError("num_key_value_heads", f"{kv_heads} does not divide num_attention_heads {heads}")
    # GLM-4.5: Glm4MoeAttention takes hidden_size // num_attention_heads (floored) when head_dim is absent
    # (MLA models size their heads by qk_nope_head_dim + qk_rope_head_dim, layouts.deepseek_fields)
    if cfg.get("head_dim") is None and hidden % heads and model_type != "glm4_moe" and model_type not in DEEPSEEK_MODEL_TYPES:
        raise EstimatorError("num_attention_heads", f"{heads} does not divide hidden_size {hidden}")
    head_dim = _int(cfg, "head_dim", hidden // heads)
    # Qwen3.5-MoE has no dense FFN and no intermediate_size (configuration_qwen3_5_moe.py)
    # (nor Solar Open, whose every layer is MoE: configuration_solar_open.py)
    inter = _int(cfg, "intermediate_size", _int(cfg, "moe_intermediate_size", {"qwen3_5_moe_text": 512, "solar_open": 1280}[model_type])
                 if model_type in ("qwen3_5_moe_text", "solar_open") else None)
    vocab = _int(cfg, "vocab_size")
    max_pos = _int(cfg, "max_position_embeddings", 4096)
    tied = _bool(cfg, "tie_word_embeddings", model_type in TIED_BY_DEFAULT)

    n_experts = 0
    for key in ("num_local_experts", "num_experts", "n_routed_experts"):
        if cfg.get(key) is not None:
            n_experts = _int({"num_experts": cfg[key]}, "num_experts", minimum=0)
            break
    n_experts_per_tok = 0
    moe_inter = 0
    shared_inter = 0
    if n_experts > 1 and model_type != "gemma4_text":   # gemma4.py reads top_k_experts
        n_experts_per_tok = _int(cfg, "num_experts_per_tok")
        if n_experts_per_tok > n_experts:
            raise EstimatorError("num_experts_per_tok", f"{n_experts_per_tok} > number of experts {n_experts}")
        moe_inter = _int(cfg, "moe_intermediate_size", inter)
        if cfg.get("shared_expert_intermediate_size"):
            shared_inter = _int(cfg, "shared_expert_intermediate_size")
        elif cfg.get("n_shared_experts"):
            shared_inter = _int(cfg, "n_shared_experts") * moe_inter
        elif model_type == "granitemoeshared" and cfg.get("shared_intermediate_size"):   # shared_mlp when > 0
            shared_inter = _int(cfg, "shared_intermediate_size")
        elif model_type in ("afmoe", "cohere2_moe") and cfg.get("num_shared_experts"):
            shared_inter = _int(cfg, "num_shared_experts") * moe_inter
        elif model_type == "granitemoe_swa" and cfg.get("shared_intermediate_size"):   # shared_mlp when > 0
            shared_inter = _int(cfg, "shared_intermediate_size")
        elif model_type == "exaone_moe" and cfg.get("num_shared_experts"):
            shared_inter = _int(cfg, "num_shared_experts") * moe_inter
    else:
        n_experts = 0

    # dots3.py reads its own layer kinds (indexed / sliding attention) and window
    swa = {} if model_type in DOTS3_MODEL_TYPES else swa_fields(cfg, arch, layers, notes)

    rope = cfg.get("rope_scaling")
    rope_freqs = isinstance(rope, dict) and (rope.get("rope_type") or rope.get("type")) == "llama3"

    layout: dict[str, Any] = {}
    if model_type in DEEPSEEK_MODEL_TYPES:
        layout = deepseek_fields(cfg, layers, heads, notes)
    elif model_type in LLAMA4_MODEL_TYPES and n_experts > 1:
        layout = llama4_fields(cfg, layers, notes)
        moe_inter = layout["moe_intermediate_size"]
    elif model_type in HYBRID_MODEL_TYPES:
        layout = hybrid_fields(cfg, model_type, layers, hidden, n_experts, notes)
    elif model_type in DENSE_MODEL_TYPES:
        layout = dense_fields(cfg, model_type, layers, heads, notes)
    elif model_type in CLASSIC_MODEL_TYPES:
        layout = classic_fields(cfg, model_type, layers, heads, notes)
    elif model_type == "minicpm3":
        layout = minicpm3_fields(cfg, heads, hidden)
    elif model_type == "ernie4_5_moe":
        layout = ernie_moe_fields(cfg, layers, notes)
    elif model_type in DSA_MODEL_TYPES:
        layout = dsa_fields(cfg, model_type, layers, heads, notes)
    elif model_type == "minimax_m2":
        layout = dict(MINIMAX_M2_LAYOUT)
    elif model_type == "olmoe":   # modeling_olmoe.py: q_norm(hidden_size), k_norm(head_dim · kv heads)
        layout = {"qk_norm": True, "qk_norm_full": True}
        if kv_heads != heads:   # measured on a converted tiny model: check_tensor_dims on blk.0.attn_k_norm
            layout["gguf_unsupported"] = ("llama.cpp's olmoe sizes the K norm by the model width, so a model with "
                                          "fewer KV heads than attention heads does not load")
    elif model_type in ("granite_swa", "granitemoe_swa"):
        layout = {"attn_sinks": True, "fused_moe_gate_up": True}
        if _bool(cfg, "attention_bias", False) or _bool(cfg, "mlp_bias", False):
            layout["gguf_unsupported"] = ("Granite SWA with linear biases (attention_bias / mlp_bias) has not been "
                                          "converted and loaded by this llama.cpp here, so its GGUF rows are not "
                                          "planned")
    elif model_type == "bitnet":
        # measured on a converted tiny model: the converter maps the sub-norms by the 1bitLLM names
        # (self_attn.inner_attn_ln, mlp.ffn_layernorm), not transformers' attn_sub_norm / ffn_sub_norm
        layout = {"sub_norms": True,
                  "gguf_unsupported": "convert_hf_to_gguf.py cannot convert transformers' BitNet: it maps the "
                                      "sub-norms by the 1bitLLM names (inner_attn_ln, ffn_layernorm), not "
                                      "attn_sub_norm / ffn_sub_norm (\"Can not map tensor …ffn_sub_norm.weight\")"}
    elif model_type == "cohere2_moe":
        layout = cohere2_moe_fields(cfg, layers)
    elif model_type == "hy_v3":
        layout = hy_v3_fields(cfg, layers, moe_inter, inter)
    elif model_type == "afmoe":
        layout = afmoe_fields(cfg, layers, swa.get("swa_layers", ()))
    elif model_type == "mellum":
        layout = mellum_fields(cfg, layers, n_experts, swa.get("swa_layers", ()))
    elif model_type == "ernie4_5" and _bool(cfg, "use_bias", False):
        layout = {"gguf_unsupported": "ERNIE 4.5 with linear biases (use_bias=true) has not been converted and "
                                      "loaded by this llama.cpp here, so its GGUF rows are not planned"}
    elif model_type in KIMI_LINEAR_MODEL_TYPES:
        layout = kimi_linear_fields(cfg, layers, heads, notes)
    elif model_type in GEMMA3N_MODEL_TYPES:
        layout = gemma3n_fields(cfg, layers, hidden, heads, kv_heads, head_dim, notes)
    elif model_type in HRM_TEXT_MODEL_TYPES:
        layout = hrm_text_fields(cfg, layers, hidden, heads, notes)
    elif model_type in MIMO_V2_MODEL_TYPES:
        layout = mimo_v2_fields(cfg, layers, heads, kv_heads, head_dim, notes)
    elif model_type in LAGUNA_MODEL_TYPES:
        layout = laguna_fields(cfg, layers, heads, kv_heads, notes)
    elif model_type in DOTS3_MODEL_TYPES:
        layout = dots3_fields(cfg, layers, notes)
    elif model_type in HY_V4_MODEL_TYPES:
        layout = hy_v4_fields(cfg, layers, heads, notes)
    elif model_type in DEEPSEEK_V4_MODEL_TYPES:
        layout = deepseek_v4_fields(cfg, layers, heads, head_dim, notes)
    elif model_type == "gemma4_text":
        layout = gemma4_fields(cfg, layers, hidden, heads, kv_heads, head_dim, notes)
    elif model_type == "exaone_moe":   # modeling_exaone_moe.py: Qwen3-MoE's block, dense first layers, router bias
        n_mtp = _int(cfg, "num_nextn_predict_layers", 0, minimum=0)
        layout = {"qk_norm": True, "expert_bias": True, "n_nextn_layers": n_mtp,
                  "dense_layers": tuple(range(min(layers, _int(cfg, "first_k_dense_replace", 0, minimum=0)))),
                  # measured on a converted tiny model: conversion/exaone.py writes no expert_gating_func
                  "gguf_unsupported": "llama.cpp 0.3.36 cannot load this converter's EXAONE-MoE file (\"key not "
                                      "found in model: exaone-moe.expert_gating_func\"), so its GGUF rows are not "
                                      "planned"}
    elif model_type == "solar_open":   # modeling_solar_open.py: GLM-4.5's MoE on every layer, no QK norm, no MTP
        layout = {"expert_bias": True}
    elif model_type == "glm4_moe":  # modeling_glm4_moe.py: dense below first_k_dense_replace, router bias
        n_mtp = _int(cfg, "num_nextn_predict_layers", 0, minimum=0)
        layout = {"dense_layers": tuple(range(min(layers, _int(cfg, "first_k_dense_replace", 0, minimum=0)))),
                  "expert_bias": True, "qk_norm": _bool(cfg, "use_qk_norm", False), "n_nextn_layers": n_mtp}
        if n_mtp:
            notes.append(f"{n_mtp} MTP layer(s) (num_nextn_predict_layers): transformers does not build them (not in "
                         "the total, counted in mtp_params); convert_hf_to_gguf.py keeps them in the GGUF, llama.cpp "
                         "skips them on load (in the file size, not the model buffer)")

    if layout.get("gguf_unsupported"):   # no GGUF rows: what llama.cpp would do with the window is moot
        notes = [n for n in notes if not n.startswith("llama.cpp loads this model without sliding-window")]
    _check_estimated_size(hidden, layers, max(inter, moe_inter), vocab, n_experts)
    fields = dict(
        name=name or str(cfg.get("_name_or_path") or model_type),
        arch="qwen2moe" if (arch == "qwen2moe" or (n_experts > 1 and arch == "qwen2")) else arch,
        hidden_size=hidden,
        n_layers=layers,
        n_heads=heads,
        n_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=inter,
        vocab_size=vocab,
        max_position_embeddings=max_pos,
        tie_word_embeddings=tied,
        qkv_bias=arch in ("qwen2", "qwen2vl", "qwen2moe") or _bool(cfg, "attention_bias", arch == "gpt-oss"),
        o_bias=arch not in ("qwen2", "qwen2vl", "qwen2moe", "glm4moe") and _bool(cfg, "attention_bias", arch == "gpt-oss"),
        mlp_bias=_bool(cfg, "mlp_bias", False),
        fused_qkv=arch == "phi3",
        extra_norms=2 if arch in GEMMA_NORMS else 0,
        qk_norm=arch in ("qwen3", "qwen3moe", "gemma3"),
        n_experts=n_experts,
        n_experts_per_tok=n_experts_per_tok,
        moe_intermediate_size=moe_inter,
        shared_expert_intermediate_size=shared_inter,
        shared_expert_gate=arch == "qwen2moe" and shared_inter > 0,
        moe_bias=arch == "gpt-oss",       # modeling_gpt_oss.py: router bias, gate_up/down_proj_bias
        attn_sinks=arch == "gpt-oss",     # GptOssAttention.sinks: one per head
        rope_freqs=rope_freqs,
        source="config",
    )
    fields.update(swa)
    fields.update(layout)
    fields.update(vision)
    return _check_total(Architecture(**fields, notes=tuple(notes)))


def architecture_from_gguf_metadata(meta: Any, name: str = "") -> Architecture:
    """GGUF key/value metadata → Architecture.

    Keys are `<arch>.block_count`, `<arch>.embedding_length`, `<arch>.attention.head_count`, ...
    (llama.cpp `src/llama-arch.cpp` LLM_KV_NAMES). The vocabulary size comes from
    `<arch>.vocab_size`, `tokenizer.ggml.tokens_count`, or the length of `tokenizer.ggml.tokens`.
    GGUF metadata does not say whether embeddings are tied; pass `tensor_names` (list of tensor
    names: tied iff no `output.weight`) or `tie_word_embeddings`; otherwise Gemma is tied, others not.
    """
    if not isinstance(meta, dict):
        raise EstimatorError("metadata", f"must be a mapping, got {type(meta).__name__}")
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise EstimatorError("general.architecture", "is required")
    if arch not in set(MODEL_TYPE_TO_ARCH.values()) | HYBRID_ARCHS:   # HYBRID_ARCHS: nemotron_h_moe too
        raise EstimatorError("general.architecture", f"{arch!r}: the estimator does not model this architecture's "
                                                     "layers and cache, so it refuses rather than guess")
    if arch in GGUF_METADATA_UNREAD:
        raise EstimatorError("general.architecture", f"{arch!r}: the estimator reads this architecture from "
                                                     "config.json only (its GGUF layout keys are not read)")
    if arch in {*DENSE_MODEL_TYPES.values(), *CLASSIC_MODEL_TYPES.values(), *RECURRENT_MODEL_TYPES.values(),
                *CONFIG_ONLY_ARCHS}:
        # dense.py / classic.py: the block layout (norms, biases, positions, SSM widths, MLA ranks, sinks,
        # sub-norms) comes from config.json
        raise EstimatorError("general.architecture", f"{arch!r}: planned from config.json only (its norms, biases and "
                                                     "QK-norms are not in the GGUF metadata), so it refuses rather than guess")

    def key(suffix: str) -> str:
        return f"{arch}.{suffix}"

    def get_int(suffix: str, default: int | None = None, minimum: int = 1) -> int:
        k = key(suffix)
        value = meta.get(k, default)
        if isinstance(value, (list, tuple)):  # per-layer arrays (e.g. head_count_kv): use the max
            if not value:
                raise EstimatorError(k, "is an empty array")
            value = max(value)
        return _int({k: value}, k, default, minimum)

    hidden = get_int("embedding_length")
    layers = get_int("block_count")
    # Qwen3-Next / GLM-4.5 GGUFs append their MTP layers as the last blocks (nextn_predict_layers)
    nextn = get_int("nextn_predict_layers", 0, minimum=0)
    if not 0 <= nextn < layers:
        raise EstimatorError(key("nextn_predict_layers"), f"must be below block_count {layers}")
    layers -= nextn
    heads = get_int("attention.head_count")
    kv_heads = get_int("attention.head_count_kv", heads)
    if heads % kv_heads:
        raise EstimatorError(key("attention.head_count_kv"), f"{kv_heads} does not divide head_count {heads}")
    head_dim = get_int("attention.key_length", hidden // heads)
    inter = get_int("feed_forward_length")
    max_pos = get_int("context_length", 4096)

    vocab_value = meta.get(key("vocab_size"))
    if vocab_value is None:
        vocab_value = meta.get("tokenizer.ggml.tokens_count")
    if vocab_value is None and isinstance(meta.get("tokenizer.ggml.tokens"), (list, tuple)):
        vocab_value = len(meta["tokenizer.ggml.tokens"])
    if vocab_value is None:
        raise EstimatorError("tokenizer.ggml.tokens", "vocabulary size not found in metadata")
    vocab = _int({"vocab_size": vocab_value}, "vocab_size")

    names = meta.get("tensor_names")
    if isinstance(names, (list, tuple)):
        names = {n for n in names if isinstance(n, str)}
        tied = "output.weight" not in names
        qkv_bias = "blk.0.attn_q.bias" in names
        o_bias = "blk.0.attn_output.bias" in names
    else:
        tied = _bool(meta, "tie_word_embeddings", arch in TIED_BY_DEFAULT)
        qkv_bias = arch in ("qwen2", "qwen2moe", "gpt-oss")
        o_bias = arch == "gpt-oss"

    n_experts = get_int("expert_count", 0, minimum=0)
    n_used = get_int("expert_used_count", 0, minimum=0) if n_experts > 1 else 0
    if n_experts > 1 and not 1 <= n_used <= n_experts:
        raise EstimatorError(key("expert_used_count"), f"must be in 1..{n_experts}")
    moe_inter = get_int("expert_feed_forward_length", inter) if n_experts > 1 else 0
    shared = get_int("expert_shared_feed_forward_length", 0, minimum=0) if n_experts > 1 else 0
    sliding = get_int("attention.sliding_window", 0, minimum=0)
    if arch == "llama4" and meta.get(key("attention.sliding_window")) is None:
        sliding = LLAMA4_CHUNK
    swa_layers: tuple[int, ...] = ()
    if sliding and arch in SWA_PATTERN:  # llama.cpp load_swa_pattern: a per-layer array or a period
        pattern = meta.get(key("attention.sliding_window_pattern"), SWA_PATTERN[arch])
        if isinstance(pattern, (list, tuple)) and len(pattern) == layers:
            swa_layers = tuple(i for i, local in enumerate(pattern) if local)
        else:
            swa_layers = swa_pattern_layers(layers, _int({key("attention.sliding_window_pattern"): pattern},
                                                         key("attention.sliding_window_pattern"), minimum=0))

    layout = gguf_layout_fields(arch, get_int, layers, heads, n_experts, names if isinstance(names, set) else None)
    if arch == "minimax-m2":
        layout = {**layout, **MINIMAX_M2_LAYOUT}
    if arch in HYBRID_ARCHS:
        layout = hybrid_gguf_fields(arch, meta, get_int, layers, names if isinstance(names, set) else None)
    _check_estimated_size(hidden, layers, max(inter, moe_inter), vocab, n_experts)
    general_name = meta.get("general.name")
    fields = dict(
        name=name or (general_name if isinstance(general_name, str) else arch),
        arch=arch,
        hidden_size=hidden,
        n_layers=layers,
        n_heads=heads,
        n_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=inter,
        vocab_size=vocab,
        max_position_embeddings=max_pos,
        tie_word_embeddings=tied,
        qkv_bias=qkv_bias,
        o_bias=o_bias,
        fused_qkv=arch == "phi3",
        extra_norms=2 if arch in GEMMA_NORMS else 0,
        qk_norm=arch in ("qwen3", "qwen3moe", "gemma3"),
        moe_bias=arch == "gpt-oss",
        attn_sinks=arch == "gpt-oss",
        n_experts=n_experts if n_experts > 1 else 0,
        n_experts_per_tok=n_used,
        moe_intermediate_size=moe_inter,
        shared_expert_intermediate_size=shared,
        shared_expert_gate=arch == "qwen2moe" and shared > 0,
        sliding_window=sliding,
        swa_layers=swa_layers,
        n_nextn_layers=nextn,
        source="gguf",
    )
    fields.update(layout)
    return _check_total(Architecture(**fields))
