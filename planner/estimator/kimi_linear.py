"""Kimi Linear (transformers model_type "kimi_linear", llama.cpp architecture "kimi-linear"): Kimi
Delta Attention (KDA, a gated delta net with a per-channel decay) on most layers, DeepSeek's MLA on
the others, a dense MLP on the first layers and DeepSeek-V3's routed + shared experts after.

transformers 5.23 (models/kimi_linear/configuration_kimi_linear.py, modeling_kimi_linear.py):
- KimiLinearConfig: `layer_types` given, else from `linear_attn_config` (1-indexed full_attn_layers /
  kda_layers, as the published config.json states them), else full attention on layers i > 0 with
  i % 4 == 0; `mlp_layer_types` given, else dense below first_k_dense_replace (default 1). The KDA
  widths come from linear_attn_config (head_dim, num_heads, short_conv_kernel_size) over
  linear_head_dim / linear_num_heads / linear_conv_kernel_dim. config.json spells several fields by
  their attribute_map names (num_experts, num_experts_per_token, num_shared_experts, model_max_length).
- KimiLinearDeltaAttention: q/k/v_proj (hidden → heads·head_dim), one depthwise conv over the three
  (no bias; the checkpoint keeps q_conv1d, k_conv1d, v_conv1d), forget gate f_a_proj (hidden → head_dim)
  and f_b_proj (head_dim → heads·head_dim) with dt_bias (heads·head_dim) and A_log (heads), b_proj
  (hidden → heads), output gate g_a_proj / g_b_proj, o_norm (head_dim), o_proj.
- KimiLinearAttention: DeepSeek-V2's MLA (q_proj, or q_a/q_b with q_lora_rank; kv_a_proj_with_mqa,
  kv_a_layernorm, kv_b_proj, o_proj), no RoPE on the heads' own part.
- KimiLinearMoE: router weight + e_score_correction_bias (a persistent buffer), experts of
  moe_intermediate_size, shared experts of moe_intermediate_size × n_shared_experts.

GGUF (conversion/kimi_linear.py KimiLinearModel, gguf-py MODEL_ARCH.KIMI_LINEAR; names and ggml shapes
checked on a converted tiny model, bench/llama_cpp_ground_truth.py --only kimi_linear): the KDA
convs as ssm_conv1d_{q,k,v} {d_conv, 1, heads·head_dim, 1}, A as ssm_a {1, heads, 1, 1}, dt_bias as
ssm_dt.bias; kv_b_proj split into attn_k_b / attn_v_b as for deepseek2.

Cache (llama.cpp llama-hparams.cpp n_embd_r / n_embd_s for n_embd_head_kda != 0, llama_memory_hybrid):
the MLA layers keep the latent K only (kv_lora_rank + qk_rope_head_dim per token, one "head"); each
KDA layer keeps R = 3 · (d_conv − 1) · n_head · kda_head_dim conv state and S = kda_head_dim² · n_head
F32 per sequence, where n_head is the model's attention head count (the converter writes no KDA head
count), so a model whose KDA head count differs is not run by llama.cpp.
"""

from __future__ import annotations

from typing import Any, Callable

from .errors import EstimatorError
from .ffn_tensors import add_gated_ffn, add_routed_experts
from .fields import _int
from .hybrid import Hybrid

KIMI_LINEAR_MODEL_TYPES = {"kimi_linear": "kimi-linear"}
# config.json spellings of KimiLinearConfig.attribute_map -> the names the rest of the reader uses
# the config.json keys convert_hf_to_gguf.py (base.py TextModel) reads the expert gating function from
_GATING_KEYS = ("score_function", "scoring_func", "score_func", "moe_router_activation", "moe_router_activation_func",
                "expert_selection_fn")
_SAVED_NAMES = {"num_experts_per_token": "num_experts_per_tok", "num_shared_experts": "n_shared_experts",
                "model_max_length": "max_position_embeddings"}


def kimi_linear_config(cfg: dict) -> dict:
    """config.json as KimiLinearConfig reads it: attribute_map spellings, 1M positions by default."""
    out = {"max_position_embeddings": 1048576, "num_experts_per_tok": 8, **cfg}
    for saved, name in _SAVED_NAMES.items():
        if cfg.get(saved) is not None and cfg.get(name) is None:
            out[name] = cfg[saved]
    # MLA expands K and V for every attention head (kv_b_proj); num_key_value_heads sizes no tensor
    out["num_key_value_heads"] = out.get("num_attention_heads", 32)
    return out


def _layer_types(cfg: dict, layers: int, linear: dict) -> tuple[str, ...]:
    kinds = cfg.get("layer_types")
    if kinds is None and "full_attn_layers" in linear and "kda_layers" in linear:
        found: list[Any] = [None] * layers
        for key, kind in (("full_attn_layers", "full_attention"), ("kda_layers", "linear_attention")):
            for n in linear[key] or []:
                if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= layers:
                    raise EstimatorError(f"linear_attn_config.{key}", f"must hold layer numbers 1..{layers}")
                found[n - 1] = kind
        kinds = found
    if kinds is None:
        kinds = ["full_attention" if i and i % 4 == 0 else "linear_attention" for i in range(layers)]
    if not isinstance(kinds, list) or len(kinds) != layers or not set(kinds) <= {"full_attention", "linear_attention"}:
        raise EstimatorError("layer_types", f"must be {layers} entries of full_attention / linear_attention")
    return tuple("attn" if k == "full_attention" else "deltanet" for k in kinds)


def _mlp_types(cfg: dict, layers: int) -> tuple[str, ...]:
    kinds = cfg.get("mlp_layer_types")
    if kinds is None:
        first = _int(cfg, "first_k_dense_replace", 1, minimum=0)
        kinds = ["dense" if i < first else "sparse" for i in range(layers)]
    if not isinstance(kinds, list) or len(kinds) != layers or not set(kinds) <= {"dense", "sparse"}:
        raise EstimatorError("mlp_layer_types", f"must be {layers} entries of dense / sparse")
    return tuple("moe" if k == "sparse" else "dense" for k in kinds)


def kimi_linear_fields(cfg: dict, layers: int, heads: int, notes: list[str]) -> dict[str, Any]:
    """Architecture fields of a Kimi Linear config.json (read as KimiLinearConfig.__post_init__ does)."""
    linear = cfg.get("linear_attn_config") or {}
    if not isinstance(linear, dict):
        raise EstimatorError("linear_attn_config", "must be an object")
    kda_heads = _int({"n": linear.get("num_heads", cfg.get("linear_num_heads", 32))}, "n")
    kda_dim = _int({"n": linear.get("head_dim", cfg.get("linear_head_dim", 128))}, "n")
    d_conv = _int({"n": linear.get("short_conv_kernel_size", cfg.get("linear_conv_kernel_dim", 4))}, "n")
    mixers, ffns = _layer_types(cfg, layers, linear), _mlp_types(cfg, layers)
    experts = _int(cfg, "num_experts", _int(cfg, "num_local_experts", 256))
    moe_inter = _int(cfg, "moe_intermediate_size", 1024)
    top_k = _int(cfg, "num_experts_per_tok")
    if "moe" in ffns and top_k > experts:
        raise EstimatorError("num_experts_per_tok", f"kimi_linear: {top_k} > number of experts {experts}")
    nope, rope = _int(cfg, "qk_nope_head_dim", 128), _int(cfg, "qk_rope_head_dim", 64)
    # d_inner = heads·head_dim, n_group·d_state the same again: conv_dim = 3·d_inner (q, k, v) and the
    # state d_state·d_inner = head_dim²·heads, llama.cpp's n_embd_r / n_embd_s for KDA
    hyb = Hybrid(mixers, ffns, d_conv=d_conv, d_inner=kda_heads * kda_dim, d_state=kda_dim, n_group=kda_heads,
                 dt_rank=kda_heads, conv_bias=False)
    unsupported = ""
    if kda_heads != heads:
        unsupported = (f"llama.cpp's kimi-linear sizes the KDA layers by the attention head count ({heads}); this "
                       f"model's KDA has {kda_heads} heads, so the converted file would not load")
    if not unsupported and not any(cfg.get(k) is not None for k in _GATING_KEYS):
        # measured: a converted tiny model without it fails in llama_model_quantize and on load with
        # "key not found in model: kimi-linear.expert_gating_func"
        unsupported = ("convert_hf_to_gguf.py writes the router's gating function only from config.json's "
                       "moe_router_activation_func (published Kimi Linear configs hold \"sigmoid\"); without it "
                       "llama.cpp 0.3.36 cannot load the file (\"key not found in model: "
                       "kimi-linear.expert_gating_func\")")
    notes.append(f"hybrid: {len(hyb.attention_layers)} MLA layer(s) keep a latent KV cache, "
                 f"{len(hyb.recurrent_layers)} KDA layer(s) keep a fixed-size state per sequence")
    if "full_attn_layers" not in linear:
        notes.append("convert_hf_to_gguf.py reads the layer layout from linear_attn_config (full_attn_layers), "
                     "which the published config.json holds and transformers' save_pretrained does not write")
    return {
        "arch": "kimi-linear",
        "hybrid": hyb,
        "n_kv_heads": heads,
        "head_dim": nope + rope,
        "q_lora_rank": 0 if cfg.get("q_lora_rank") is None else _int(cfg, "q_lora_rank"),
        "kv_lora_rank": _int(cfg, "kv_lora_rank", 512),
        "qk_rope_head_dim": rope,
        "v_head_dim": _int(cfg, "v_head_dim", 128),
        "n_experts": experts if "moe" in ffns else 0,
        "n_experts_per_tok": top_k if "moe" in ffns else 0,
        "moe_intermediate_size": moe_inter,
        "shared_expert_intermediate_size": moe_inter * _int(cfg, "n_shared_experts", 1, minimum=0),
        "expert_bias": True,
        # modeling_kimi_linear.py: _tied_weights_keys = {} — lm_head is its own tensor whatever
        # tie_word_embeddings says (the checkpoint holds it, the converter writes output.weight)
        "tie_word_embeddings": False,
        "qkv_bias": False,
        "o_bias": False,
        "gguf_unsupported": unsupported,
    }


def kimi_linear_tensors(arch: Any, add: Callable[..., None]) -> None:
    """All weight tensors in llama.cpp names and ggml order (ne0 first)."""
    h: Hybrid = arch.hybrid
    H, V = arch.hidden_size, arch.vocab_size
    add("token_embd.weight", H, V)
    add("output_norm.weight", H)
    if not arch.tie_word_embeddings:
        add("output.weight", H, V)
    heads, hd, qkv = h.dt_rank, h.d_state, h.d_inner
    for i in range(arch.n_layers):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", H)
        add(p + "ffn_norm.weight", H)
        if h.mixers[i] == "attn":
            arch._add_mla(add, p)
        else:
            for x in "qkv":
                add(p + f"attn_{x}.weight", H, qkv)
            for x in "qkv":
                add(p + f"ssm_conv1d_{x}.weight", h.d_conv, 1, qkv, 1)
            add(p + "ssm_f_a.weight", H, hd)
            add(p + "ssm_f_b.weight", hd, qkv)
            add(p + "ssm_dt.bias", qkv)
            add(p + "ssm_a", 1, heads, 1, 1)
            add(p + "ssm_beta.weight", H, heads)
            add(p + "ssm_g_a.weight", H, hd)
            add(p + "ssm_g_b.weight", hd, qkv)
            add(p + "ssm_norm.weight", hd)
            add(p + "attn_output.weight", qkv, H)
        if h.ffns[i] == "moe":
            E, F, S = arch.n_experts, arch.moe_intermediate_size, arch.shared_expert_intermediate_size
            add_routed_experts(add, p, H, F, E)
            if S:
                add_gated_ffn(add, p, H, S, "_shexp")
        else:
            F = arch.intermediate_size
            add(p + "ffn_gate.weight", H, F)
            add(p + "ffn_up.weight", H, F)
            add(p + "ffn_down.weight", F, H)
