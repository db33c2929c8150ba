"""The older decoders whose configs spell their shape their own way: GPT-2 (and GPT-SW3, built by
GPT2LMHeadModel), GPTBigCode (StarCoder 1, SantaCoder), BLOOM and Falcon (7B's multi-query block,
40B/180B's "new decoder architecture", Falcon 2), plus the pure state-space models Mamba,
Falcon-Mamba and Mamba-2.

`classic_config` rewrites a config into the keys the loader reads (hidden_size, num_hidden_layers,
num_attention_heads, num_key_value_heads, intermediate_size, max_position_embeddings,
tie_word_embeddings) the way each config class fills them in (configuration_<type>.py).
`classic_fields` returns the block as a `Dense` layout (dense.py: LayerNorms with biases, a fused
QKV, a plain GELU MLP, learned positions, BLOOM's embedding norm, Falcon-40B's second pre-norm),
as transformers builds it (modeling_gpt2.py, modeling_gpt_bigcode.py, modeling_bloom.py,
modeling_falcon.py) and as convert_hf_to_gguf.py writes it (conversion/gpt2.py, starcoder.py,
bloom.py, falcon.py: names and ggml shapes checked on converted tiny models by
bench/llama_cpp_ground_truth.py). The Mamba layouts are hybrid.py's (`Hybrid` with every layer
recurrent).

Where the converter or llama.cpp's loader cannot take a configuration, `gguf_unsupported` names
the reason and no GGUF row is planned.
"""

from __future__ import annotations

from typing import Any

from .dense import Dense
from .errors import EstimatorError
from .fields import _bool, _int
from .layouts import swa_pattern_layers

# HF model_type -> llama.cpp architecture (the converter's model_arch)
CLASSIC_MODEL_TYPES = {"gpt2": "gpt2", "gpt-sw3": "gpt2", "gpt_bigcode": "starcoder", "bloom": "bloom",
                       "falcon": "falcon", "jais2": "jais2"}
RECURRENT_MODEL_TYPES = {"mamba": "mamba", "falcon_mamba": "mamba", "mamba2": "mamba2"}
# config classes whose tie_word_embeddings defaults to True (Mamba-2's to False)
TIED_BY_DEFAULT = {"gpt2", "gpt-sw3", "gpt_bigcode", "bloom", "falcon", "mamba", "falcon_mamba"}
# the padding convert_hf_to_gguf.py gives the vocabulary (conversion/mamba.py set_vocab): the
# tokenizer is padded to it, so an embedding of another row count does not load
MAMBA_VOCAB_PAD = {"mamba": 8, "falcon_mamba": 8, "mamba2": 16}


def _first(cfg: dict, *keys: str) -> Any:
    return next((cfg[k] for k in keys if cfg.get(k) is not None), None)


def classic_config(cfg: dict, model_type: str) -> dict:
    """cfg with the loader's keys filled in from the type's own spelling and defaults."""
    out = dict(cfg)
    if out.get("tie_word_embeddings") is None:
        out["tie_word_embeddings"] = model_type in TIED_BY_DEFAULT
    if model_type == "jais2":   # the loader's own keys; head_dim as given (Jais2Config: 128)
        return out
    if model_type in RECURRENT_MODEL_TYPES:
        # no attention: one nominal head of width 1, so no attention figure grows with the model; the
        # SSM's own head width (Mamba-2 head_dim) is kept as ssm_head_dim. intermediate_size is d_inner:
        # MambaConfig's (expand · hidden_size unless given), Mamba2Mixer's always expand · hidden_size
        d_inner = _int(cfg, "expand", 2) * _int(cfg, "hidden_size")
        if model_type != "mamba2" and cfg.get("intermediate_size") is not None:
            d_inner = _int(cfg, "intermediate_size")
        out.update(num_attention_heads=1, num_key_value_heads=1, head_dim=1, intermediate_size=d_inner,
                   ssm_head_dim=cfg.get("head_dim"))
        return out
    if model_type in ("gpt2", "gpt-sw3", "gpt_bigcode"):
        hidden = _int({"n_embd": _first(cfg, "n_embd", "hidden_size")}, "n_embd")
        heads = _int({"n_head": _first(cfg, "n_head", "num_attention_heads")}, "n_head")
        out.update(hidden_size=hidden, num_attention_heads=heads,
                   num_hidden_layers=_first(cfg, "n_layer", "num_hidden_layers"),
                   max_position_embeddings=_first(cfg, "n_positions", "max_position_embeddings") or 1024,
                   intermediate_size=_first(cfg, "n_inner") or 4 * hidden)
        # modeling_gpt_bigcode.py: multi_query keeps one K/V head (c_attn of n_embd + 2 · head_dim)
        multi_query = model_type == "gpt_bigcode" and _bool(cfg, "multi_query", True)
        out["num_key_value_heads"] = 1 if multi_query else heads
    elif model_type == "bloom":
        hidden = _int({"hidden_size": _first(cfg, "hidden_size", "n_embed")}, "hidden_size")
        heads = _int({"n_head": _first(cfg, "n_head", "num_attention_heads")}, "n_head")
        out.update(hidden_size=hidden, num_attention_heads=heads, num_key_value_heads=heads,
                   num_hidden_layers=_first(cfg, "n_layer", "num_hidden_layers"), intermediate_size=4 * hidden)
    else:   # falcon
        hidden = _int({"hidden_size": _first(cfg, "hidden_size", "n_embed")}, "hidden_size")
        heads = _int({"num_attention_heads": _first(cfg, "num_attention_heads", "n_head")}, "num_attention_heads")
        out.update(hidden_size=hidden, num_attention_heads=heads,
                   num_hidden_layers=_first(cfg, "num_hidden_layers", "n_layer"),
                   intermediate_size=_first(cfg, "ffn_hidden_size") or 4 * hidden,
                   num_key_value_heads=_falcon_kv_heads(cfg, heads))
    out.pop("head_dim", None)   # hidden_size // heads in every one of them
    return out


def _falcon_kv_heads(cfg: dict, heads: int) -> int:
    """modeling_falcon.py FalconAttention: num_kv_heads with the new decoder architecture, one K/V
    head with multi_query, else a K/V head per query head (query_key_value of 3 × hidden_size)."""
    if _bool(cfg, "new_decoder_architecture", False):
        return _int({"num_kv_heads": _first(cfg, "num_kv_heads", "n_head_kv") or heads}, "num_kv_heads")
    return 1 if _bool(cfg, "multi_query", True) else heads


def classic_fields(cfg: dict, model_type: str, layers: int, heads: int, notes: list[str]) -> dict[str, Any]:
    """Architecture fields of a CLASSIC_MODEL_TYPES config already read by classic_config."""
    hidden, inner = _int(cfg, "hidden_size"), _int(cfg, "intermediate_size")
    fields: dict[str, Any] = {"arch": CLASSIC_MODEL_TYPES[model_type]}
    unsupported = ""
    if model_type in ("gpt2", "gpt-sw3", "gpt_bigcode"):
        if _bool(cfg, "add_cross_attention", False):
            raise EstimatorError("add_cross_attention", f"{model_type}: cross-attention layers are not modelled")
        positions = _int(cfg, "max_position_embeddings")
        # Conv1D / Linear layers all with biases; LayerNorms ln_1, ln_2, ln_f with biases; wpe
        dense = Dense(attn_norm="wb", ffn_norm="wb", output_norm="wb", fused_qkv=True, qkv_bias=True, o_bias=True,
                      ffn="plain", ffn_bias=True, pos_embd=positions)
        if inner != 4 * hidden:   # conversion/gpt2.py, starcoder.py: feed_forward_length = 4 · n_embd
            unsupported = f"the converter writes {model_type}'s feed_forward_length as 4 × n_embd, not this n_inner"
        elif model_type == "gpt_bigcode" and _int(cfg, "num_key_value_heads") != 1:
            unsupported = ("the converter writes starcoder head_count_kv = 1, so a GPTBigCode without multi-query "
                           "attention (multi_query=false) does not load")
        elif model_type != "gpt_bigcode" and cfg.get("n_ctx") != positions:
            # conversion/gpt2.py: context_length = n_ctx, and llama.cpp sizes position_embd by it
            unsupported = ("the converter reads GPT-2's context from n_ctx (published config.json files hold it, "
                           f"equal to n_positions {positions}), which this config "
                           + ("lacks" if cfg.get("n_ctx") is None else f"gives as {cfg.get('n_ctx')!r}"))
    elif model_type == "bloom":   # ALiBi: no positions; LayerNorm on the embeddings
        dense = Dense(attn_norm="wb", ffn_norm="wb", output_norm="wb", embd_norm="wb", fused_qkv=True,
                      qkv_bias=True, o_bias=True, ffn="plain", ffn_bias=True)
        if _bool(cfg, "apply_residual_connection_post_layernorm", False):
            unsupported = ("llama.cpp's bloom takes the residual before the layer norm "
                           "(apply_residual_connection_post_layernorm=true is another model)")
    elif model_type == "jais2":   # modeling_jais2.py: LayerNorms with biases, ReLU² MLP of up and down
        attention_bias, mlp_bias = _bool(cfg, "attention_bias", True), _bool(cfg, "mlp_bias", True)
        dense = Dense(attn_norm="wb", ffn_norm="wb", output_norm="wb", qkv_bias=attention_bias, o_bias=attention_bias,
                      ffn="plain", ffn_bias=mlp_bias)
        if not (attention_bias and mlp_bias):
            unsupported = ("Jais 2 without its linear biases (attention_bias / mlp_bias false) has not been converted "
                           "and loaded by this llama.cpp here, so its GGUF rows are not planned")
    else:
        dense, unsupported = _falcon(cfg, hidden, inner, heads, notes)
    fields.update(dense=dense, qkv_bias=dense.qkv_bias, o_bias=dense.o_bias, mlp_bias=dense.ffn_bias,
                  fused_qkv=dense.fused_qkv, gguf_unsupported=unsupported)
    return fields


def _falcon(cfg: dict, hidden: int, inner: int, heads: int, notes: list[str]) -> tuple[Dense, str]:
    """modeling_falcon.py FalconDecoderLayer: sequential blocks (parallel_attn=false) have
    input_layernorm and post_attention_layernorm; parallel ones one shared LayerNorm, or ln_attn and
    ln_mlp when num_ln_in_parallel_attn is 2 (the default of the new decoder architecture). The
    converter maps ln_mlp to attn_norm and ln_attn to attn_norm_2; every linear has a bias iff bias."""
    new_decoder = _bool(cfg, "new_decoder_architecture", False)
    parallel = _bool(cfg, "parallel_attn", True)
    n_ln = cfg.get("num_ln_in_parallel_attn")
    if n_ln is None and new_decoder:
        n_ln = 2
    bias = _bool(cfg, "bias", False)
    two_norms = parallel and n_ln == 2
    dense = Dense(attn_norm="wb", attn_norm_2="wb" if two_norms else "", ffn_norm="" if parallel else "wb",
                  output_norm="wb", fused_qkv=True, qkv_bias=bias, o_bias=bias, ffn="plain", ffn_bias=bias)
    # llama.cpp's falcon (llama-model.cpp): rotary positions, no linear biases, attention and MLP in parallel
    # from the block input, and an FFN of feed_forward_length = 4 × hidden_size (conversion/falcon.py)
    if _bool(cfg, "alibi", False):
        return dense, "llama.cpp's falcon uses rotary positions, not ALiBi (alibi=true, Falcon-RW's layout)"
    if bias:
        return dense, "llama.cpp's falcon has no linear biases (bias=true)"
    if not parallel:
        return dense, ("llama.cpp's falcon runs attention and MLP in parallel; this block is sequential "
                       "(parallel_attn=false)")
    if inner != 4 * hidden:
        return dense, "the converter writes falcon's feed_forward_length as 4 × hidden_size, not this ffn_hidden_size"
    if not new_decoder and _bool(cfg, "multi_query", True):
        notes.append("convert_hf_to_gguf.py reads the K/V head count from num_kv_heads (else 1): for this multi-query "
                     "Falcon config.json must leave num_kv_heads out, as tiiuae/falcon-7b's does, or give 1")
    elif not new_decoder and _int(cfg, "num_kv_heads", heads) != heads:
        return dense, "the converter splits this Falcon's query_key_value by num_kv_heads, which the model does not use"
    return dense, ""


def recurrent_unsupported(cfg: dict, model_type: str) -> str:
    """Why convert_hf_to_gguf.py (conversion/mamba.py) or llama.cpp cannot take this Mamba config."""
    hidden, vocab = _int(cfg, "hidden_size"), _int(cfg, "vocab_size")
    pad = _int(cfg, "pad_vocab_size_multiple", MAMBA_VOCAB_PAD[model_type])
    if vocab % pad:
        return (f"the converter pads the vocabulary to a multiple of {pad} (pad_vocab_size_multiple) while the "
                f"embedding keeps {vocab:,} rows, so the file does not load")
    d_inner = _int(cfg, "intermediate_size")
    if model_type != "mamba2" and d_inner != 2 * hidden:
        return ("the converter takes only Mamba blocks of d_inner = 2 × hidden_size (it asserts so), not "
                f"intermediate_size {d_inner:,}")
    if model_type == "mamba2":
        heads, head_dim = _int(cfg, "num_heads", 128), _int(cfg, "ssm_head_dim", 64)
        if heads * head_dim != d_inner:
            return (f"the converter writes Mamba-2's head count as expand × hidden_size / head_dim = "
                    f"{d_inner // head_dim if d_inner % head_dim == 0 else 'not whole'}, not num_heads {heads}")
    return ""


def minicpm3_fields(cfg: dict, heads: int, hidden: int) -> dict[str, Any]:
    """MiniCPM3 (modeling_minicpm3.py MiniCPM3Attention, "structurally identical to DeepseekV2Attention")
    with a dense SwiGLU MLP. conversion/minicpm.py MiniCPM3Model keeps kv_b_proj whole (attn_kv_b), and
    llama.cpp's minicpm3 decompresses it into per-head K (qk_nope + qk_rope) and V cached per head
    (mla_legacy), plus LongRoPE's rope_factors_long / _short (qk_rope_head_dim / 2 each) when the
    config has them: config values in the checkpoint, tensors in the GGUF."""
    for key in ("attention_bias", "mlp_bias"):
        if _bool(cfg, key, False):
            raise EstimatorError(key, "MiniCPM3 with linear biases is not modelled")
    nope, rope, v = _int(cfg, "qk_nope_head_dim"), _int(cfg, "qk_rope_head_dim"), _int(cfg, "v_head_dim")
    q_lora = 0 if cfg.get("q_lora_rank") is None else _int(cfg, "q_lora_rank")
    rope_cfg = next((cfg[k] for k in ("rope_parameters", "rope_scaling") if isinstance(cfg.get(k), dict)), {})
    factors = bool(rope_cfg.get("long_factor") or rope_cfg.get("short_factor"))
    unsupported = ""
    if not q_lora:   # llama.cpp's minicpm3 declares attn_q_a / attn_q_b only
        unsupported = "llama.cpp's minicpm3 has no plain q_proj (q_lora_rank is null)"
    elif _int(cfg, "num_key_value_heads", heads) != heads:
        unsupported = ("the converter writes num_key_value_heads as the K/V head count, which this MLA model does "
                       "not use")
    elif hidden % heads or hidden // heads != v:
        # the converter writes key_length but no value_length: llama.cpp takes V as hidden_size / heads wide
        unsupported = (f"llama.cpp's minicpm3 takes the V head width as hidden_size / heads, not this v_head_dim {v}")
    elif factors and not (len(rope_cfg.get("long_factor") or ()) == len(rope_cfg.get("short_factor") or ())
                          == rope // 2):
        unsupported = f"the converter needs LongRoPE long_factor and short_factor of {rope // 2} entries each"
    return {"arch": "minicpm3", "n_kv_heads": heads, "head_dim": nope + rope, "q_lora_rank": q_lora,
            "kv_lora_rank": _int(cfg, "kv_lora_rank"), "qk_rope_head_dim": rope, "v_head_dim": v,
            "mla_legacy": True, "rope_factors": factors, "gguf_unsupported": unsupported}


def mellum_fields(cfg: dict, layers: int, n_experts: int, swa_layers: tuple[int, ...] | None) -> dict[str, Any]:
    """Mellum 2 (modeling_mellum.py): llama's attention with per-head q/k RMSNorms, a routed MoE on the
    "sparse" entries of mlp_layer_types and a dense SwiGLU MLP of intermediate_size on the "dense" ones."""
    if _bool(cfg, "attention_bias", False):
        raise EstimatorError("attention_bias", "Mellum with attention biases is not modelled")
    if cfg.get("num_nextn_predict_layers"):
        raise EstimatorError("num_nextn_predict_layers", "Mellum's MTP layers are not modelled")
    kinds = cfg.get("mlp_layer_types") or ["sparse"] * layers
    if not (isinstance(kinds, list) and len(kinds) == layers and set(kinds) <= {"dense", "sparse"}):
        raise EstimatorError("mlp_layer_types", f"must be {layers} entries of dense / sparse")
    if n_experts < 2:
        raise EstimatorError("num_local_experts", "Mellum needs more than one expert")
    dense = tuple(i for i, kind in enumerate(kinds) if kind == "dense")
    unsupported = ""
    if dense:
        unsupported = "llama.cpp's mellum declares no dense FFN tensors (mlp_layer_types has dense layers)"
    elif swa_layers is not None and not swa_layers:
        # measured on a converted tiny model: GGML_ASSERT(hparams.is_swa_any()) in llama-model.cpp on load
        unsupported = ("llama.cpp's mellum needs sliding-window layers and this config's layer_types has none "
                       "(the file fails to load: GGML_ASSERT(hparams.is_swa_any()))")
    return {"qk_norm": True, "dense_layers": dense, "gguf_unsupported": unsupported}


def afmoe_config(cfg: dict) -> dict:
    """AfmoeConfig's defaults for an omitted field: a 1,024-token window on 3 of every 4 layers
    (layer_types from global_attn_every_n_layers)."""
    out = {"sliding_window": 1024, **cfg}
    if out.get("layer_types") is None and isinstance(out.get("num_hidden_layers"), int):
        period = _int(out, "global_attn_every_n_layers", 4)
        out["layer_types"] = ["full_attention" if (i + 1) % period == 0 else "sliding_attention"
                              for i in range(out["num_hidden_layers"])]
    return out


def afmoe_fields(cfg: dict, layers: int, swa_layers: tuple[int, ...]) -> dict[str, Any]:
    """AFMoE (modeling_afmoe.py, Arcee Trinity): per-head q/k RMSNorms, a gate on the attention output,
    norms before and after attention and the MLP, num_dense_layers dense layers first, then routed experts
    with a sigmoid router, its expert_bias (exp_probs_b) and num_shared_experts shared experts."""
    if _bool(cfg, "attention_bias", False) or _bool(cfg, "mlp_bias", False):
        raise EstimatorError("attention_bias", "AFMoE with linear biases is not modelled")
    dense = _int(cfg, "num_dense_layers", 1, minimum=0)
    if dense > layers:
        raise EstimatorError("num_dense_layers", f"{dense} > num_hidden_layers {layers}")
    unsupported = ""
    if swa_layers and swa_layers != swa_pattern_layers(layers, 4):
        # llama-model.cpp LLM_ARCH_AFMOE: set_swa_pattern(4) whatever the config says
        unsupported = ("llama.cpp's afmoe slides 3 of every 4 layers (a fixed pattern), not this model's "
                       "layer_types, so its cache and attention would differ")
    return {"qk_norm": True, "extra_norms": 2, "attn_gate": True, "expert_bias": True,
            "dense_layers": tuple(range(dense)), "gguf_unsupported": unsupported}


def cohere2_moe_config(cfg: dict) -> dict:
    """Cohere 2 MoE (modeling_cohere2_moe.py): every expert, and each shared expert, is intermediate_size
    wide; the dense layers' MLP is prefix_dense_intermediate_size (intermediate_size when null)."""
    out = dict(cfg)
    inter = cfg.get("intermediate_size")
    out["moe_intermediate_size"] = inter
    out["intermediate_size"] = cfg.get("prefix_dense_intermediate_size") or inter
    return out


def cohere2_moe_fields(cfg: dict, layers: int) -> dict[str, Any]:
    """Cohere 2 MoE's block: one pre-norm read by attention and MLP (parallel), a dense MLP on the "dense"
    entries of mlp_layer_types, routed experts (softmax router) with num_shared_experts shared ones."""
    if cfg.get("num_nextn_predict_layers"):
        raise EstimatorError("num_nextn_predict_layers", "Cohere 2 MoE's MTP layers are not modelled")
    kinds = cfg.get("mlp_layer_types") or ["sparse"] * layers
    if not (isinstance(kinds, list) and len(kinds) == layers and set(kinds) <= {"dense", "sparse"}):
        raise EstimatorError("mlp_layer_types", f"must be {layers} entries of dense / sparse")
    dense = tuple(i for i, kind in enumerate(kinds) if kind == "dense")
    unsupported = ""
    if _bool(cfg, "attention_bias", False):   # conversion/command_r.py refuses non-zero biases
        unsupported = "the converter refuses Cohere 2 MoE's attention biases (attention_bias=true)"
    elif dense != tuple(range(len(dense))):   # the converter writes leading_dense_block_count only
        unsupported = f"llama.cpp's cohere2moe makes only leading layers dense, not this model's layers {list(dense)}"
    elif dense and cfg.get("prefix_dense_intermediate_size") not in (None, cfg.get("moe_intermediate_size")):
        unsupported = ("the converter writes one feed_forward_length (intermediate_size) for the dense layers, not "
                       "this prefix_dense_intermediate_size")
    elif cfg.get("num_shared_experts") and cfg.get("shared_expert_combination_strategy", "average") != "average":
        unsupported = "the converter takes only the \"average\" shared_expert_combination_strategy"
    return {"parallel_ffn": True, "dense_layers": dense, "gguf_unsupported": unsupported}


def hy_v3_fields(cfg: dict, layers: int, moe_inter: int, inter: int) -> dict[str, Any]:
    """HY V3 (modeling_hy_v3.py): llama's attention with per-head q/k RMSNorms, a dense MLP on the "dense"
    entries of mlp_layer_types, elsewhere routed experts with a sigmoid router and its
    e_score_correction_bias buffer (exp_probs_b) and a shared expert of moe_intermediate_size ×
    num_shared_experts (HYV3MLP falls back to intermediate_size when that is 0)."""
    for key in ("attention_bias", "mlp_bias"):
        if _bool(cfg, key, False):
            raise EstimatorError(key, "HY V3 with linear biases is not modelled")
    if cfg.get("num_nextn_predict_layers"):
        raise EstimatorError("num_nextn_predict_layers", "HY V3's MTP layers are not modelled")
    kinds = cfg.get("mlp_layer_types") or ["sparse"] * layers
    if not (isinstance(kinds, list) and len(kinds) == layers and set(kinds) <= {"dense", "sparse"}):
        raise EstimatorError("mlp_layer_types", f"must be {layers} entries of dense / sparse")
    shared = moe_inter * _int(cfg, "num_shared_experts", 1, minimum=0) or inter
    return {"qk_norm": True, "expert_bias": True, "shared_expert_intermediate_size": shared,
            "dense_layers": tuple(i for i, kind in enumerate(kinds) if kind == "dense")}
