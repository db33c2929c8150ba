"""Laguna (transformers model_type "laguna", llama.cpp architecture "laguna").

transformers 5.23 (models/laguna/configuration_laguna.py, modeling_laguna.py):
- LagunaConfig: `layer_types` default full attention everywhere; `mlp_layer_types` default a dense
  first layer, then routed experts; `num_attention_heads_per_layer` default num_attention_heads on
  every layer.
- LagunaAttention: that layer's heads × head_dim for q_proj / o_proj, num_key_value_heads for k/v,
  q_norm and k_norm (head_dim), an output gate g_proj (hidden → heads with gating true or
  "per-head", hidden → heads × head_dim with "per-element"); biases with attention_bias.
- LagunaSparseMoeBlock: router weight and e_score_correction_bias (a parameter), experts of
  moe_intermediate_size, one shared expert of shared_expert_intermediate_size; dense layers a gated
  MLP of intermediate_size. Two norms per layer.

GGUF (conversion/laguna.py LagunaModel, gguf-py MODEL_ARCH.LAGUNA): llama's names with attn_q_norm,
attn_k_norm, attn_gate, exp_probs_b and the shared expert; a per-layer head count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import EstimatorError
from .ffn_tensors import add_gated_ffn, add_routed_experts
from .fields import _bool, _int

LAGUNA_MODEL_TYPES = {"laguna": "laguna"}


@dataclass(frozen=True)
class Laguna:
    heads: tuple[int, ...]        # attention heads per layer
    moe_layers: tuple[int, ...]
    gate_per_head: bool
    bias: bool


def laguna_config(cfg: dict) -> dict:
    """LagunaConfig's defaults for the fields the shared reader takes."""
    out = {"vocab_size": 100352, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 40,
           "num_attention_heads": 48, "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 131072,
           "num_experts": 256, "num_experts_per_tok": 8, "moe_intermediate_size": 512,
           "shared_expert_intermediate_size": 512, "sliding_window": 512}
    out.update({k: v for k, v in cfg.items() if v is not None or k not in out})
    return out


def laguna_fields(cfg: dict, layers: int, heads: int, kv_heads: int, notes: list[str]) -> dict[str, Any]:
    """Architecture fields of a Laguna config.json, read as LagunaConfig.__post_init__ does."""
    per = cfg.get("num_attention_heads_per_layer")
    if per is None:
        per = [heads] * layers
    if not isinstance(per, list) or len(per) != layers:
        raise EstimatorError("num_attention_heads_per_layer", f"must list {layers} head counts (num_hidden_layers)")
    per = tuple(_int({"num_attention_heads_per_layer": h}, "num_attention_heads_per_layer") for h in per)
    bad = [h for h in per if h % kv_heads]
    if bad:
        raise EstimatorError("num_attention_heads_per_layer", f"laguna: {bad[0]} is not a multiple of "
                                                              f"num_key_value_heads {kv_heads}")
    mlp = cfg.get("mlp_layer_types")
    if mlp is None:
        mlp = ["dense"] + ["sparse"] * (layers - 1)
    if not isinstance(mlp, list) or len(mlp) != layers or not set(mlp) <= {"dense", "sparse"}:
        raise EstimatorError("mlp_layer_types", f"must be {layers} entries of dense / sparse")
    types = cfg.get("layer_types")
    if types is None:
        types = ["full_attention"] * layers
    if not isinstance(types, list) or len(types) != layers or not set(types) <= {"full_attention", "sliding_attention"}:
        raise EstimatorError("layer_types", f"must be {layers} entries of full_attention / sliding_attention")
    gating = cfg.get("gating", True)
    if gating not in (True, "per-head", "per-element", "per_head", "per_element"):
        raise EstimatorError("gating", "laguna: must be true, \"per-head\" or \"per-element\"")
    moe = tuple(i for i, t in enumerate(mlp) if t == "sparse")
    experts, top_k = _int(cfg, "num_experts"), _int(cfg, "num_experts_per_tok")
    if moe and top_k > experts:
        raise EstimatorError("num_experts_per_tok", f"laguna: {top_k} > number of experts {experts}")
    g = Laguna(heads=per, moe_layers=moe, gate_per_head=gating in (True, "per-head", "per_head"),
               bias=_bool(cfg, "attention_bias", False))
    out: dict[str, Any] = {
        "laguna": g, "n_heads": max(per),
        "n_experts": experts if moe else 0, "n_experts_per_tok": top_k if moe else 0,
        "moe_intermediate_size": _int(cfg, "moe_intermediate_size") if moe else 0,
        "shared_expert_intermediate_size": _int(cfg, "shared_expert_intermediate_size", 0, minimum=0) if moe else 0,
        "dense_layers": tuple(i for i in range(layers) if i not in moe),
        "expert_bias": True, "qkv_bias": False, "o_bias": False, "qk_norm": True, "swa_in_llama_cpp": True,
    }
    swa = tuple(i for i, t in enumerate(types) if t == "sliding_attention")
    window = _int(cfg, "sliding_window", 512, minimum=0)
    out.update(sliding_window=window if swa else 0, swa_layers=swa if window else ())
    notes[:] = [n for n in notes if not n.startswith("llama.cpp loads this model without sliding-window")]
    leading = next((i for i, t in enumerate(mlp) if t == "sparse"), layers)
    llama_cpp_types = ["full_attention" if i % 4 == 0 else "sliding_attention" for i in range(layers)]
    if window and types != llama_cpp_types:
        # measured on converted tiny 4-layer models: llama.cpp 0.3.36 logs is_swa = 0, 1, 1, 1 for both an
        # alternating and an all-full layer_types (the converter writes the window, not the layout)
        out["gguf_unsupported"] = ("llama.cpp 0.3.36 does not read Laguna's layer_types: with a sliding window it "
                                   "slides all but every 4th layer (from layer 0), which is not this model's layout, "
                                   "so the converted file would not run this model as defined")
    elif moe != tuple(range(leading, layers)):
        # conversion/laguna.py writes leading_dense_block_count: dense layers only before the first MoE layer
        out["gguf_unsupported"] = ("llama.cpp's laguna makes only the leading layers dense "
                                   "(leading_dense_block_count); this model's mlp_layer_types mixes them later")
    return out


def laguna_tensors(arch: Any, add: Any) -> None:
    """The weight tensors in llama.cpp names (MODEL_ARCH.LAGUNA) and ggml order."""
    g: Laguna = arch.laguna
    H, V, hd = arch.hidden_size, arch.vocab_size, arch.head_dim
    kv = arch.n_kv_heads * hd
    add("token_embd.weight", H, V)
    add("output_norm.weight", H)
    if not arch.tie_word_embeddings:
        add("output.weight", H, V)
    for i in range(arch.n_layers):
        p = f"blk.{i}."
        q = g.heads[i] * hd
        add(p + "attn_norm.weight", H)
        add(p + "attn_q.weight", H, q)
        add(p + "attn_k.weight", H, kv)
        add(p + "attn_v.weight", H, kv)
        if g.bias:
            add(p + "attn_q.bias", q)
            add(p + "attn_k.bias", kv)
            add(p + "attn_v.bias", kv)
        add(p + "attn_q_norm.weight", hd)
        add(p + "attn_k_norm.weight", hd)
        add(p + "attn_gate.weight", H, g.heads[i] if g.gate_per_head else q)
        add(p + "attn_output.weight", q, H)
        if g.bias:
            add(p + "attn_output.bias", H)
        add(p + "ffn_norm.weight", H)
        if i in g.moe_layers:
            E, F, S = arch.n_experts, arch.moe_intermediate_size, arch.shared_expert_intermediate_size
            add_routed_experts(add, p, H, F, E)
            add_gated_ffn(add, p, H, S, "_shexp")
        else:
            add_gated_ffn(add, p, H, arch.intermediate_size)
