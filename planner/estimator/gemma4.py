"""Gemma 4 text decoder (transformers model_type "gemma4_text", llama.cpp architecture "gemma4").

transformers (models/gemma4/modeling_gemma4.py, configuration_gemma4.py):
- Gemma4TextAttention: full-attention layers use their own head size and KV head count
  (`per_layer_config`, filled by Gemma4TextConfig.__post_init__ from `global_head_dim`, default 512,
  and `num_global_key_value_heads`, used only when `attention_k_eq_v`); with `attention_k_eq_v` a
  full layer has no v_proj (K is reused as V). q_norm and k_norm hold head_dim weights, v_norm none.
  The last `num_kv_shared_layers` layers reuse an earlier layer's K/V and have no k_proj, v_proj,
  k_norm (kv_sharing_modes).
- Gemma4TextMLP: gated; twice as wide on KV-shared layers when `use_double_wide_mlp`.
- Gemma4TextDecoderLayer: four norms; with `hidden_size_per_layer_input` a per-layer input gate,
  projection and norm; with `enable_moe_block` a router (proj, scale, per_expert_scale), experts
  (gate_up_proj, down_proj) and three more norms beside the dense MLP; `layer_scalar` (1 value, a
  buffer saved in the checkpoint).
- Gemma4TextModel: embed_tokens, norm, and with per-layer inputs embed_tokens_per_layer
  (vocab_size_per_layer_input × layers·per_layer), per_layer_model_projection, per_layer_projection_norm.

GGUF (conversion/gemma.py Gemma4Model; names and ggml shapes checked tensor by tensor on converted
tiny models, bench/gemma4_ground_truth.py): the same tensors (layer_scalar as `layer_output_scale`) plus
the GGUF-only `rope_freqs` (global_head_dim / 2 f32 freq factors).

KV cache (llama.cpp llama-kv-cache.cpp, measured in llama-cpp-python 0.3.36): each layer that owns a
cache keeps K and V of its own width (full layers: global KV heads × global_head_dim, V allocated
also with attention_k_eq_v); KV-shared layers keep none ("layer N: does not have KV cache").
`kv_layout` carries that per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import EstimatorError
from .fields import _bool, _int

@dataclass(frozen=True)
class Gemma4:
    full_layers: tuple[int, ...]
    global_head_dim: int
    global_kv_heads: int
    k_eq_v: bool
    n_kv_shared: int
    double_wide: bool
    per_layer_input: int          # hidden_size_per_layer_input; 0 = no per-layer embeddings
    per_layer_vocab: int
    moe: bool


def _per_layer_override(cfg: dict, full: tuple[int, ...], key: str) -> int | None:
    """A value from `per_layer_config` (config.to_dict(): keys are layer indices as strings)."""
    plc = cfg.get("per_layer_config")
    if not isinstance(plc, dict):
        return None
    for k, v in plc.items():
        try:
            idx = int(k)
        except (TypeError, ValueError):
            continue
        if idx in full and isinstance(v, dict) and v.get(key) is not None:
            return _int({key: v[key]}, key)
    return None


def gemma4_fields(cfg: dict, layers: int, hidden: int, heads: int, kv_heads: int, head_dim: int,
                  notes: list[str]) -> dict[str, Any]:
    """Architecture fields for a Gemma 4 text config, read the way Gemma4TextConfig fills defaults."""
    types = cfg.get("layer_types")
    if types is None:
        types = ["sliding_attention" if (i + 1) % 6 else "full_attention" for i in range(layers)]
    if not isinstance(types, list) or len(types) != layers:
        raise EstimatorError("layer_types", f"must be a list of {layers} entries (num_hidden_layers)")
    types = list(types)
    types[-1] = "full_attention"   # Gemma4TextConfig.__post_init__ forces the last layer to full attention
    full = tuple(i for i, t in enumerate(types) if t == "full_attention")
    k_eq_v = _bool(cfg, "attention_k_eq_v", False)
    ghd = _per_layer_override(cfg, full, "head_dim") or _int(cfg, "global_head_dim", 512)
    gkv = _per_layer_override(cfg, full, "num_key_value_heads")
    if gkv is None:
        gkv = _int(cfg, "num_global_key_value_heads", kv_heads) if k_eq_v and \
            cfg.get("num_global_key_value_heads") is not None else kv_heads
    if heads % gkv:
        raise EstimatorError("num_global_key_value_heads", f"{gkv} does not divide num_attention_heads {heads}")
    n_shared = _int(cfg, "num_kv_shared_layers", 0, minimum=0)
    if n_shared >= layers:
        raise EstimatorError("num_kv_shared_layers", f"must be below num_hidden_layers {layers}")
    if n_shared and set(types[:layers - n_shared]) != set(types):
        raise EstimatorError("num_kv_shared_layers", "the unshared layers must include every layer type")
    moe = _bool(cfg, "enable_moe_block", False)
    per_layer = _int(cfg, "hidden_size_per_layer_input", 256, minimum=0)
    g = Gemma4(full_layers=full, global_head_dim=ghd, global_kv_heads=gkv, k_eq_v=k_eq_v, n_kv_shared=n_shared,
               double_wide=_bool(cfg, "use_double_wide_mlp", False), per_layer_input=per_layer,
               per_layer_vocab=_int(cfg, "vocab_size_per_layer_input", 262144) if per_layer else 0, moe=moe)
    first_shared = layers - n_shared
    kv_layout = tuple((0, 0) if i >= first_shared else (gkv, ghd) if i in full else (kv_heads, head_dim)
                      for i in range(layers))
    out: dict[str, Any] = {"gemma4": g, "kv_layout": kv_layout, "rope_freqs": True,
                           "extra_norms": 2, "qk_norm": True}
    window = _int(cfg, "sliding_window", 512, minimum=0)
    if window:
        out.update(sliding_window=window, swa_layers=tuple(i for i in range(layers) if i not in full))
    if moe:
        n_exp = _int(cfg, "num_experts")
        top_k = _int(cfg, "top_k_experts")
        if top_k > n_exp:
            raise EstimatorError("top_k_experts", f"{top_k} > number of experts {n_exp}")
        out.update(n_experts=n_exp, n_experts_per_tok=top_k,
                   moe_intermediate_size=_int(cfg, "moe_intermediate_size"))
    else:
        out.update(n_experts=0, n_experts_per_tok=0, moe_intermediate_size=0)
    if n_shared:
        notes.append(f"{n_shared} KV-shared layers reuse an earlier layer's cache and keep none of their own")
    return out


def gemma4_tensors(arch: Any, add: Any) -> None:
    """The GGUF tensors of a Gemma 4 text model as convert_hf_to_gguf.py (Gemma4Model) writes them."""
    g: Gemma4 = arch.gemma4
    H, V, L = arch.hidden_size, arch.vocab_size, arch.n_layers
    P = g.per_layer_input
    add("token_embd.weight", H, V)
    add("rope_freqs.weight", g.global_head_dim // 2)
    if P:
        add("per_layer_token_embd.weight", L * P, g.per_layer_vocab)
        add("per_layer_model_proj.weight", H, L * P)
        add("per_layer_proj_norm.weight", P)
    add("output_norm.weight", H)
    if not arch.tie_word_embeddings:
        add("output.weight", H, V)
    first_shared = L - g.n_kv_shared
    for i in range(L):
        p = f"blk.{i}."
        full = i in g.full_layers
        hd = g.global_head_dim if full else arch.head_dim
        kvh = g.global_kv_heads if full else arch.n_kv_heads
        q = arch.n_heads * hd
        add(p + "attn_norm.weight", H)
        add(p + "layer_output_scale.weight", 1)
        add(p + "attn_q.weight", H, q)
        add(p + "attn_q_norm.weight", hd)
        if i < first_shared:
            add(p + "attn_k.weight", H, kvh * hd)
            add(p + "attn_k_norm.weight", hd)
            if not (full and g.k_eq_v):
                add(p + "attn_v.weight", H, kvh * hd)
        add(p + "attn_output.weight", q, H)
        add(p + "post_attention_norm.weight", H)
        add(p + "ffn_norm.weight", H)
        F = arch.intermediate_size * (2 if g.double_wide and i >= first_shared else 1)
        add(p + "ffn_gate.weight", H, F)
        add(p + "ffn_up.weight", H, F)
        add(p + "ffn_down.weight", F, H)
        add(p + "post_ffw_norm.weight", H)
        if g.moe:
            E, Fm = arch.n_experts, arch.moe_intermediate_size
            add(p + "ffn_gate_inp.weight", H, E)
            add(p + "ffn_gate_inp.scale", H)
            add(p + "ffn_gate_up_exps.weight", H, 2 * Fm, E)
            add(p + "ffn_down_exps.weight", Fm, H, E)
            add(p + "ffn_down_exps.scale", E)
            add(p + "pre_ffw_norm_2.weight", H)
            add(p + "post_ffw_norm_1.weight", H)
            add(p + "post_ffw_norm_2.weight", H)
        if P:
            add(p + "inp_gate.weight", H, P)
            add(p + "proj.weight", P, H)
            add(p + "post_norm.weight", H)
