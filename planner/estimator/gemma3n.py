"""Gemma 3n text decoder (transformers model_type "gemma3n_text", llama.cpp architecture "gemma3n").

transformers 5.23 (models/gemma3n/configuration_gemma3n.py, modeling_gemma3n.py):
- Gemma3nTextConfig: `intermediate_size` one width or one per layer; `layer_types` default full
  attention on every 5th layer ((i + 1) % 5 == 0), sliding elsewhere; the last num_kv_shared_layers
  layers reuse an earlier layer's K/V (kv_sharing_modes "reuse").
- Gemma3nTextAttention: q_proj, q_norm (head_dim); on layers that own their cache k_proj, v_proj,
  k_norm (v_norm has no weight); o_proj; biases with attention_bias.
- Gemma3nTextDecoderLayer: four norms, a gated MLP of that layer's width, AltUp (correct_output_scale
  (hidden), correction_coefs (A × A), prediction_coefs (A → A²), modality_router (hidden → A),
  router_norm), LAuReL (linear_left hidden → laurel_rank, linear_right back, post_laurel_norm) and the
  per-layer input gate / projection / post norm (hidden_size_per_layer_input).
- Gemma3nTextModel: embed_tokens, embed_tokens_per_layer (vocab_size_per_layer_input × layers · per-layer
  width), per_layer_model_projection, per_layer_projection_norm, altup_projections and
  altup_unembed_projections (A − 1 of hidden × hidden each), norm; lm_head tied by default.

GGUF (conversion/gemma.py Gemma3NModel, gguf-py MODEL_ARCH.GEMMA3N): the AltUp projections stacked
into altup_proj / altup_unembd_proj {hidden, hidden, 3}; the per-layer embedding padded to vocab_size
rows (the converter pads both embeddings to the full vocabulary); *_scale tensors get a .weight
suffix. The converter takes only altup_num_inputs = 4.

KV cache (llama.cpp llama-model.cpp LLM_ARCH_GEMMA3N: an iSWA cache; layers past n_layer_kv_from_start
= layers − num_kv_shared_layers keep none): `kv_layout` carries (kv heads, head_dim) or (0, 0) per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import EstimatorError
from .fields import _bool, _int

GEMMA3N_MODEL_TYPES = {"gemma3n_text": "gemma3n"}


@dataclass(frozen=True)
class Gemma3n:
    widths: tuple[int, ...]       # the MLP width of each layer
    n_kv_shared: int
    per_layer_input: int          # hidden_size_per_layer_input
    per_layer_vocab: int          # vocab_size_per_layer_input (the checkpoint; the GGUF pads to vocab_size)
    altup_inputs: int
    laurel_rank: int
    bias: bool                    # attention_bias: q/k/v/o biases


def gemma3n_fields(cfg: dict, layers: int, hidden: int, heads: int, kv_heads: int, head_dim: int,
                   notes: list[str]) -> dict[str, Any]:
    """Architecture fields of a Gemma 3n text config, read as Gemma3nTextConfig fills its defaults."""
    widths = cfg.get("intermediate_sizes", cfg.get("intermediate_size", 16384))
    if isinstance(widths, list):
        if len(widths) != layers:
            raise EstimatorError("intermediate_size", f"must be one width or {layers} (num_hidden_layers)")
        widths = tuple(_int({"intermediate_size": w}, "intermediate_size") for w in widths)
    else:
        widths = (_int(cfg, "intermediate_size", 16384),) * layers
    types = cfg.get("layer_types")
    if types is None:
        types = ["full_attention" if (i + 1) % 5 == 0 else "sliding_attention" for i in range(layers)]
    if not isinstance(types, list) or len(types) != layers or not set(types) <= {"full_attention", "sliding_attention"}:
        raise EstimatorError("layer_types", f"must be {layers} entries of full_attention / sliding_attention")
    n_shared = _int(cfg, "num_kv_shared_layers", 15, minimum=0)
    if n_shared >= layers:
        raise EstimatorError("num_kv_shared_layers", f"gemma3n_text: must be below num_hidden_layers {layers}")
    if n_shared and set(types[:layers - n_shared]) != set(types):
        raise EstimatorError("num_kv_shared_layers", "gemma3n_text: the unshared layers must include every layer type")
    altup = _int(cfg, "altup_num_inputs", 4)
    g = Gemma3n(widths=widths, n_kv_shared=n_shared, per_layer_input=_int(cfg, "hidden_size_per_layer_input", 256),
                per_layer_vocab=_int(cfg, "vocab_size_per_layer_input", 262144), altup_inputs=altup,
                laurel_rank=_int(cfg, "laurel_rank", 64), bias=_bool(cfg, "attention_bias", False))
    first_shared = layers - n_shared
    out: dict[str, Any] = {
        "gemma3n": g,
        "intermediate_size": max(widths),
        "kv_layout": tuple((0, 0) if i >= first_shared else (kv_heads, head_dim) for i in range(layers)),
        "swa_in_llama_cpp": True,
        "n_experts": 0, "n_experts_per_tok": 0, "moe_intermediate_size": 0,
        "qkv_bias": False, "o_bias": False,
    }
    window = _int(cfg, "sliding_window", 512, minimum=0)
    if window:
        out.update(sliding_window=window, swa_layers=tuple(i for i, t in enumerate(types) if t == "sliding_attention"))
    notes[:] = [n for n in notes if not n.startswith("llama.cpp loads this model without sliding-window")]
    if n_shared:
        notes.append(f"{n_shared} KV-shared layers reuse an earlier layer's cache and keep none of their own")
    out["gguf_unsupported"] = _gguf_refusal(cfg, g, layers, types)
    return out


def _gguf_refusal(cfg: dict, g: Gemma3n, layers: int, types: list) -> str:
    """Why llama.cpp would not run this Gemma 3n as planned ("" when it does). llama.cpp 0.3.36 takes
    the E2B/E4B layout as given, not from the file (measured on converted tiny models: "tensor
    'per_layer_token_embd.weight' has wrong shape; expected 1024, 49152, got 128, 49152" for a per-layer
    width of 32 over 4 layers, "'blk.0.laurel_l.weight' … expected 256, 64, got 256, 16" for rank 16, and
    a KV cache on all 4 layers of a 4-layer model with one KV-shared layer)."""
    if g.altup_inputs != 4:
        return f"convert_hf_to_gguf.py converts Gemma 3n only with altup_num_inputs = 4 (this model: {g.altup_inputs})"
    if g.per_layer_vocab > _int(cfg, "vocab_size"):
        return ("convert_hf_to_gguf.py pads the per-layer embedding to vocab_size rows; this model's "
                "vocab_size_per_layer_input is larger")
    if g.per_layer_input != 256 or g.laurel_rank != 64:
        return ("llama.cpp 0.3.36 sizes Gemma 3n's per-layer inputs as 256 wide and its LAuReL rank as 64 (E2B/E4B), "
                f"this model has {g.per_layer_input} and {g.laurel_rank}, so the converted file does not load")
    if layers - g.n_kv_shared != 20:
        return ("llama.cpp 0.3.36 keeps a KV cache on the first 20 layers of a Gemma 3n (E2B/E4B), not "
                f"num_hidden_layers − num_kv_shared_layers ({layers - g.n_kv_shared} here), so its cache would differ")
    if types != ["full_attention" if (i + 1) % 5 == 0 else "sliding_attention" for i in range(layers)]:
        return "llama.cpp 0.3.36 slides 4 of every 5 Gemma 3n layers (a fixed pattern), not this model's layer_types"
    if not _bool(cfg, "tie_word_embeddings", True):
        return ("an untied Gemma 3n has not been quantized and loaded by this llama.cpp here (the per-layer "
                "embedding's quantization type was measured with a tied one), so its GGUF rows are not planned")
    return ""


def gemma3n_tensors(arch: Any, add: Any) -> None:
    """The GGUF tensors of a Gemma 3n text model as convert_hf_to_gguf.py (Gemma3NModel) writes them."""
    g: Gemma3n = arch.gemma3n
    H, V, L, P, A = arch.hidden_size, arch.vocab_size, arch.n_layers, g.per_layer_input, g.altup_inputs
    add("token_embd.weight", H, V)
    # the checkpoint's per-layer embedding has per_layer_vocab rows; gemma3n_gguf_only corrects the total
    add("per_layer_token_embd.weight", L * P, max(V, g.per_layer_vocab))
    add("per_layer_model_proj.weight", H, L * P)
    add("per_layer_proj_norm.weight", P)
    add("altup_proj.weight", H, H, A - 1)
    add("altup_unembd_proj.weight", H, H, A - 1)
    add("output_norm.weight", H)
    if not arch.tie_word_embeddings:
        add("output.weight", H, V)
    q, kv = arch.n_heads * arch.head_dim, arch.n_kv_heads * arch.head_dim
    for i in range(L):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", H)
        add(p + "attn_q.weight", H, q)
        if g.bias:
            add(p + "attn_q.bias", q)
        add(p + "attn_q_norm.weight", arch.head_dim)
        # KV-shared layers: transformers 5.23 builds no k/v projection there, but the published checkpoints
        # hold them and llama.cpp 0.3.36 requires them (measured: "tensor 'blk.3.attn_k.weight' not found"
        # on a file converted from transformers' save); GGUF-only, see gemma3n_gguf_only
        add(p + "attn_k.weight", H, kv)
        add(p + "attn_v.weight", H, kv)
        if g.bias:
            add(p + "attn_k.bias", kv)
            add(p + "attn_v.bias", kv)
        add(p + "attn_k_norm.weight", arch.head_dim)
        add(p + "attn_output.weight", q, H)
        if g.bias:
            add(p + "attn_output.bias", H)
        add(p + "post_attention_norm.weight", H)
        add(p + "ffn_norm.weight", H)
        F = g.widths[i]
        add(p + "ffn_gate.weight", H, F)
        add(p + "ffn_up.weight", H, F)
        add(p + "ffn_down.weight", F, H)
        add(p + "post_ffw_norm.weight", H)
        add(p + "inp_gate.weight", H, P)
        add(p + "proj.weight", P, H)
        add(p + "post_norm.weight", H)
        add(p + "altup_correct_coef.weight", A, A)
        add(p + "altup_correct_scale.weight", H)
        add(p + "altup_predict_coef.weight", A, A * A)
        add(p + "altup_router.weight", H, A)
        add(p + "altup_router_norm.weight", H)
        add(p + "laurel_l.weight", H, g.laurel_rank)
        add(p + "laurel_r.weight", g.laurel_rank, H)
        add(p + "laurel_post_norm.weight", H)


def gemma3n_gguf_only(arch: Any) -> dict[int | None, int]:
    """Parameters in the GGUF that transformers 5.23 does not build, by layer (None: outside the layers):
    the zero rows the converter pads the per-layer embedding with (up to vocab_size), and the K/V
    projections and K norm of the KV-shared layers (the published checkpoints carry them)."""
    g: Gemma3n = arch.gemma3n
    L, H, kv = arch.n_layers, arch.hidden_size, arch.n_kv_heads * arch.head_dim
    out: dict[int | None, int] = {None: max(0, arch.vocab_size - g.per_layer_vocab) * L * g.per_layer_input}
    bias = 2 * kv if g.bias else 0
    for i in range(L - g.n_kv_shared, L):
        out[i] = 2 * H * kv + bias + arch.head_dim
    return out


# Gemma3nTextConfig's defaults for the fields the shared reader takes
_DEFAULTS = {"vocab_size": 262400, "hidden_size": 2048, "intermediate_size": 16384, "num_hidden_layers": 35,
             "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 256, "max_position_embeddings": 32768,
             "sliding_window": 512}


def gemma3n_config(cfg: dict) -> dict:
    """config.json with the class defaults filled in; a per-layer intermediate_size list is kept as
    `intermediate_sizes` (the shared reader takes one width: the largest)."""
    out = {**_DEFAULTS, **{k: v for k, v in cfg.items() if v is not None or k not in _DEFAULTS}}
    widths = out.get("intermediate_size")
    if isinstance(widths, list):
        out["intermediate_sizes"] = widths
        out["intermediate_size"] = max((w for w in widths if isinstance(w, int) and not isinstance(w, bool)),
                                       default=0) or widths
    return out
