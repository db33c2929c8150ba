"""Config readers for models whose layers are not all alike: DeepSeek-V2/V3 (and Kimi K2, which
ships a deepseek_v3 config) with Multi-head Latent Attention and leading dense layers, and Llama 4
with MoE layers interleaved with dense ones and a shared expert.

Each function returns the Architecture fields that differ from the plain llama-like reading.
The layer layouts are the ones transformers builds (`modeling_deepseek_v3.py` DeepseekV3DecoderLayer:
MoE iff `layer_idx >= first_k_dense_replace`; `configuration_llama4.py`: `moe_layers` defaults to
range(step - 1, n_layers, step)) and llama.cpp loads (`src/models/deepseek2.cpp`: dense iff
`i < n_layer_dense_lead`; `src/models/llama4.cpp`: MoE iff `(i + 1) % n_moe_layer_step == 0`).
"""

from __future__ import annotations

from typing import Any

from .errors import EstimatorError
from .fields import _int

# youtu: Youtu-LLM, DeepSeek-V3's MLA with a dense MLP on every layer (conversion/deepseek.py registers
# YoutuForCausalLM on DeepseekV2Model, leading_dense_block_count = all layers)
DEEPSEEK_MODEL_TYPES = {"deepseek_v2", "deepseek_v3", "kimi_k2", "glm4_moe_lite", "youtu"}
LLAMA4_MODEL_TYPES = {"llama4", "llama4_text"}


def deepseek_fields(cfg: dict, layers: int, heads: int, notes: list[str]) -> dict[str, Any]:
    """DeepSeek-V2 (arXiv:2405.04434 §2.1, MLA) / V3 (arXiv:2412.19437 §2.1, §2.2 MTP) shapes.

    MLA: q = q_b(norm(q_a(x))) with q_lora_rank (V2-Lite has none: a plain q_proj), the latent
    c_kv = kv_a_proj_with_mqa(x) of kv_lora_rank + qk_rope_head_dim, normed, and kv_b_proj
    expanding it to per-head k_nope (qk_nope_head_dim) and v (v_head_dim). The query/key head is
    qk_nope + qk_rope wide, so that is our head_dim. V3 adds a per-expert router bias
    (e_score_correction_bias, a persistent buffer: in the checkpoint, not in `parameters()`).
    """
    nope = _int(cfg, "qk_nope_head_dim")
    rope = _int(cfg, "qk_rope_head_dim")
    q_lora = 0 if cfg.get("q_lora_rank") is None else _int(cfg, "q_lora_rank")
    first_dense = _int(cfg, "first_k_dense_replace", 0, minimum=0)
    if first_dense > layers:
        raise EstimatorError("first_k_dense_replace", f"{first_dense} > num_hidden_layers {layers}")
    if _int(cfg, "moe_layer_freq", 1) != 1:
        notes.append("moe_layer_freq != 1 is ignored, as transformers and llama.cpp ignore it")
    n_mtp = _int(cfg, "num_nextn_predict_layers", 0, minimum=0)
    if n_mtp:
        notes.append(f"{n_mtp} multi-token-prediction layer(s) are in the checkpoint only: transformers does not "
                     "build them and llama.cpp's converter drops them (DeepseekV2Model.skip_mtp; counted in "
                     "mtp_params, not in the total)")
    dense = tuple(range(first_dense))
    kinds = cfg.get("mlp_layer_types")
    if cfg.get("model_type") == "glm4_moe_lite" and kinds is not None:   # GLM-4.7-Flash: per-layer list
        if not (isinstance(kinds, list) and len(kinds) == layers and set(kinds) <= {"dense", "sparse"}):
            raise EstimatorError("mlp_layer_types", f"must be {layers} entries of dense / sparse")
        dense = tuple(i for i, kind in enumerate(kinds) if kind == "dense")
    unsupported = ""
    if dense != tuple(range(first_dense)):   # measured: "blk.0.ffn_gate_inp.weight not found" on load
        unsupported = (f"llama.cpp's deepseek2 makes the first first_k_dense_replace ({first_dense}) layers dense, "
                       f"this model's mlp_layer_types layers {list(dense)}, so the converted file does not load")
    return {
        "gguf_unsupported": unsupported,
        "arch": "deepseek2",
        "n_kv_heads": heads,
        "head_dim": nope + rope,
        "q_lora_rank": q_lora,
        "kv_lora_rank": _int(cfg, "kv_lora_rank"),
        "qk_rope_head_dim": rope,
        "v_head_dim": _int(cfg, "v_head_dim"),
        "dense_layers": dense,
        "expert_bias": cfg.get("model_type") != "deepseek_v2",
        "n_nextn_layers": n_mtp,
    }


def llama4_fields(cfg: dict, layers: int, notes: list[str]) -> dict[str, Any]:
    """Llama 4 text model: `intermediate_size` is the expert (and shared expert) width and
    `intermediate_size_mlp` the dense FFN width (convert_hf_to_gguf.py Llama4Model swaps them into
    feed_forward_length / expert_feed_forward_length). One shared expert per MoE layer
    (modeling_llama4.py Llama4TextMoe.shared_expert); the L2 qk-norm has no weights.
    """
    step = _int(cfg, "interleave_moe_layer_step", 1)
    moe_layers = cfg.get("moe_layers")
    if moe_layers is None:
        moe = set(range(step - 1, layers, step))
    elif isinstance(moe_layers, list) and all(isinstance(i, int) and 0 <= i < layers for i in moe_layers):
        moe = set(moe_layers)
    else:
        raise EstimatorError("moe_layers", f"must be a list of layer indices below {layers}")
    expert_ff = _int(cfg, "intermediate_size")
    chunk = _int(cfg, "attention_chunk_size", LLAMA4_CHUNK)
    if chunk != LLAMA4_CHUNK:
        notes.append(f"attention_chunk_size {chunk}: transformers uses it, llama.cpp always chunks by {LLAMA4_CHUNK}")
    notes.append(f"chunked attention on 3 of every 4 layers ({LLAMA4_CHUNK}-token chunks, cached like a sliding "
                 "window of the chunk); every 4th layer (NoPE) attends to the whole context")
    return {
        "arch": "llama4",
        "intermediate_size": _int(cfg, "intermediate_size_mlp", expert_ff),
        "moe_intermediate_size": expert_ff,
        "shared_expert_intermediate_size": expert_ff,
        "dense_layers": tuple(i for i in range(layers) if i not in moe),
        "sliding_window": LLAMA4_CHUNK,
        "swa_layers": swa_pattern_layers(layers, SWA_PATTERN["llama4"]),
    }


def gguf_layout_fields(arch: str, get_int: Any, layers: int, heads: int, n_experts: int,
                       names: set[str] | None) -> dict[str, Any]:
    """The same fields from GGUF metadata (keys as convert_hf_to_gguf.py writes them; `get_int`
    reads `<arch>.<suffix>`). deepseek2: head_count_kv is 1 and key_length is the latent row
    (kv_lora_rank + rope), so the per-head sizes come from key_length_mla / value_length_mla;
    the router bias is known only from the tensor names (exp_probs_b.bias).
    """
    if arch == "deepseek2":
        rope = get_int("rope.dimension_count")
        expert_ff = get_int("expert_feed_forward_length")
        # Files converted before the absorbed-MLA split carry no *_length_mla keys: key_length /
        # value_length are then the per-head sizes and the file has one attn_kv_b per layer.
        legacy = names is not None and "blk.0.attn_kv_b.weight" in names
        legacy = legacy or get_int("attention.key_length_mla", 0, minimum=0) == 0
        suffix = "" if legacy else "_mla"
        return {
            "n_kv_heads": heads,
            "head_dim": get_int("attention.key_length" + suffix),
            "q_lora_rank": get_int("attention.q_lora_rank", 0, minimum=0),
            "kv_lora_rank": get_int("attention.kv_lora_rank"),
            "qk_rope_head_dim": rope,
            "v_head_dim": get_int("attention.value_length" + suffix),
            "mla_legacy": legacy,
            "dense_layers": tuple(range(min(layers, get_int("leading_dense_block_count", 0, minimum=0)))),
            "expert_bias": bool(names) and any(n.endswith("exp_probs_b.bias") for n in names),
            "moe_intermediate_size": expert_ff,
            "shared_expert_intermediate_size": get_int("expert_shared_count", 0, minimum=0) * expert_ff,
        }
    if arch == "glm4moe":  # conversion/glm.py Glm4MoeModel.set_gguf_parameters
        expert_ff = get_int("expert_feed_forward_length")
        return {
            "dense_layers": tuple(range(min(layers, get_int("leading_dense_block_count", 0, minimum=0)))),
            "expert_bias": not names or any(n.endswith("exp_probs_b.bias") for n in names),
            "qk_norm": bool(names) and "blk.0.attn_q_norm.weight" in names,
            "moe_intermediate_size": expert_ff,
            "shared_expert_intermediate_size": get_int("expert_shared_count", 0, minimum=0) * expert_ff,
        }
    if arch == "llama4" and n_experts > 1:
        step = get_int("interleave_moe_layer_step", 1)
        expert_ff = get_int("expert_feed_forward_length")
        return {
            "moe_intermediate_size": expert_ff,
            "shared_expert_intermediate_size": expert_ff,   # llama.cpp llama4: n_ff_shexp = n_ff_exp
            "dense_layers": tuple(i for i in range(layers) if (i + 1) % step),
        }
    return {}


# llama.cpp architectures that build an iSWA cache (llama-model.cpp create_memory →
# llama_kv_cache_iswa); the plain "llama" graph has none, so Mistral v0.1 gets a full cache there.
LLAMA_CPP_SWA_ARCHS = {"gemma2", "gemma3", "gemma4", "gpt-oss", "olmo2", "cohere2", "exaone4",  # olmo2: OLMo 3 (dense.py)
                       "granite_swa", "mellum", "afmoe", "cohere2moe"}
# Default period of local layers (llama.cpp load_swa_pattern(ml, n); transformers' layer_types
# default: "sliding_attention" if (i + 1) % n else "full_attention", i.e. il % n < n - 1).
SWA_PATTERN = {"gemma2": 2, "gemma3": 6, "gpt-oss": 2, "llama4": 4}
# llama.cpp models/llama4.cpp: LLAMA_SWA_TYPE_CHUNKED with n_swa fixed at 8192 and
# load_swa_pattern(ml, 4) ("3 chunked - 1 full"), unless the GGUF says sliding_window = 0
# (MobileLLM); transformers: attention_chunk_size (8192 for Scout and Maverick), a
# DynamicSlidingWindowLayer of that size on the chunked layers (cache_utils.py)
LLAMA4_CHUNK = 8192
LAYER_TYPES = {"full_attention", "sliding_attention", "chunked_attention"}


def swa_pattern_layers(layers: int, n_pattern: int) -> tuple[int, ...]:
    """llama-hparams.cpp set_swa_pattern (dense_first=false): layer il is local iff
    n_pattern == 0 or il % n_pattern < n_pattern - 1 (Gemma 2/gpt-oss: even layers; Gemma 3: 5 of 6)."""
    return tuple(i for i in range(layers) if n_pattern == 0 or i % n_pattern < n_pattern - 1)


def swa_fields(cfg: dict, arch: str, layers: int, notes: list[str]) -> dict[str, Any]:
    """Sliding-window attention from a HF config: `sliding_window` (tokens) and the local layers.

    The layers come from `layer_types` when given (transformers' per-layer attention kinds), else
    from the model's default pattern (SWA_PATTERN), else every layer (Mistral v0.1). Qwen2-style
    `use_sliding_window: false` and a null window mean no SWA.
    """
    window = cfg.get("sliding_window")
    if window is None or cfg.get("use_sliding_window", True) is False:
        return {}
    window = _int(cfg, "sliding_window", minimum=0)
    if not window:
        return {}
    types = cfg.get("layer_types")
    if types is not None:
        if not isinstance(types, list) or len(types) != layers:
            raise EstimatorError("layer_types", f"must be a list of {layers} entries (num_hidden_layers)")
        unknown = sorted({str(t) for t in types if t not in LAYER_TYPES})
        if unknown:
            raise EstimatorError("layer_types", f"unknown entries {', '.join(unknown)}; "
                                 f"known: {', '.join(sorted(LAYER_TYPES))}")
        if "chunked_attention" in types:
            notes.append("chunked_attention layers are counted at full context")
        local = tuple(i for i, t in enumerate(types) if t == "sliding_attention")
    elif arch in SWA_PATTERN:
        pattern = _int(cfg, "sliding_window_pattern", SWA_PATTERN[arch], minimum=0) if arch == "gemma3" \
            else SWA_PATTERN[arch]
        local = swa_pattern_layers(layers, pattern)
    else:
        local = tuple(range(layers))
    if local and arch not in LLAMA_CPP_SWA_ARCHS:
        notes.append("llama.cpp loads this model without sliding-window attention: full KV cache on every layer")
    return {"sliding_window": window, "swa_layers": local, "swa_in_llama_cpp": arch in LLAMA_CPP_SWA_ARCHS}
