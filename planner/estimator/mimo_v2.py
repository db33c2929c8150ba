"""MiMo-V2-Flash (transformers model_type "mimo_v2_flash", llama.cpp architecture "mimo2").

transformers 5.23 (models/mimo_v2_flash/configuration_mimo_v2_flash.py, modeling_mimo_v2_flash.py):
- MiMoV2FlashConfig: `layer_types` default full attention on layer 0 and every 6th ((i + 1) % 6 == 0),
  sliding elsewhere; `mlp_layer_types` default a dense first layer, routed experts after.
- MiMoV2FlashAttention: q_proj (heads × head_dim), k_proj (kv heads × head_dim), v_proj (kv heads ×
  v_head_dim), o_proj (heads × v_head_dim → hidden, no bias); sliding layers have twice the KV heads
  and a learned sink per head (`sinks`); q/k/v biases with attention_bias. No QK norm.
- MiMoV2FlashMoE: DeepSeek-V3's router (weight + e_score_correction_bias, a persistent buffer) and
  n_routed_experts experts of moe_intermediate_size, no shared expert; dense layers a gated MLP of
  intermediate_size. Two norms per layer; lm_head tied only with tie_word_embeddings.

GGUF (conversion/mimo.py MimoV2Model, gguf-py MODEL_ARCH.MIMO2): llama's names with attn_sinks and
exp_probs_b. The converter reads the published config.json's own spelling of the layout
(hybrid_layer_pattern, swa_num_key_value_heads, swa_head_dim, swa_v_head_dim, swa_num_attention_heads,
topk_method) and adds the checkpoint's 3 MTP layers (model.mtp.*), which transformers does not build: the
GGUF rows are refused (the main layers' names, shapes and F16 bytes were checked on a converted tiny model,
bench/llama_cpp_ground_truth.py --only mimo_v2_flash).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import EstimatorError
from .ffn_tensors import add_gated_ffn, add_routed_experts
from .fields import _bool, _int

MIMO_V2_MODEL_TYPES = {"mimo_v2_flash": "mimo2"}
# the published config.json keys convert_hf_to_gguf.py (MimoV2Model.set_gguf_parameters) requires
_CONVERTER_KEYS = ("hybrid_layer_pattern", "swa_num_key_value_heads", "swa_head_dim", "swa_v_head_dim",
                   "swa_num_attention_heads", "topk_method")


@dataclass(frozen=True)
class MimoV2:
    swa_layers: tuple[int, ...]   # sliding layers: 2 × KV heads and attention sinks
    moe_layers: tuple[int, ...]
    v_head_dim: int
    bias: bool


def mimo_v2_config(cfg: dict) -> dict:
    """MiMoV2FlashConfig's defaults for the fields the shared reader takes."""
    out = {"vocab_size": 152576, "hidden_size": 4096, "intermediate_size": 16384, "num_hidden_layers": 48,
           "num_attention_heads": 64, "num_key_value_heads": 4, "head_dim": 192, "max_position_embeddings": 131072,
           "n_routed_experts": 256, "num_experts_per_tok": 8, "moe_intermediate_size": 2048, "sliding_window": 129}
    out.update({k: v for k, v in cfg.items() if v is not None or k not in out})
    if cfg.get("num_local_experts") is not None and cfg.get("n_routed_experts") is None:   # attribute_map
        out["n_routed_experts"] = cfg["num_local_experts"]
    if cfg.get("sliding_window_size") is not None:   # __post_init__: the published spelling, one less
        out["sliding_window"] = _int(cfg, "sliding_window_size") + 1
    return out


def mimo_v2_fields(cfg: dict, layers: int, heads: int, kv_heads: int, head_dim: int,
                   notes: list[str]) -> dict[str, Any]:
    """Architecture fields of a MiMo-V2-Flash config.json, read as MiMoV2FlashConfig.__post_init__ does."""
    types = cfg.get("layer_types")
    if types is None:
        types = ["full_attention" if i == 0 or not (i + 1) % 6 else "sliding_attention" for i in range(layers)]
    if not isinstance(types, list) or len(types) != layers or not set(types) <= {"full_attention", "sliding_attention"}:
        raise EstimatorError("layer_types", f"must be {layers} entries of full_attention / sliding_attention")
    mlp = cfg.get("mlp_layer_types")
    if mlp is None:
        mlp = ["dense"] + ["sparse"] * (layers - 1)
    if not isinstance(mlp, list) or len(mlp) != layers or not set(mlp) <= {"dense", "sparse"}:
        raise EstimatorError("mlp_layer_types", f"must be {layers} entries of dense / sparse")
    swa = tuple(i for i, t in enumerate(types) if t == "sliding_attention")
    moe = tuple(i for i, t in enumerate(mlp) if t == "sparse")
    if heads % (2 * kv_heads) and swa:
        raise EstimatorError("num_key_value_heads", f"mimo_v2_flash: 2 × {kv_heads} (its sliding layers' KV heads) "
                                                    f"does not divide num_attention_heads {heads}")
    experts = _int(cfg, "n_routed_experts")
    top_k = _int(cfg, "num_experts_per_tok")
    if moe and top_k > experts:
        raise EstimatorError("num_experts_per_tok", f"mimo_v2_flash: {top_k} > number of experts {experts}")
    v_dim = _int(cfg, "v_head_dim", 128)
    m = MimoV2(swa_layers=swa, moe_layers=moe, v_head_dim=v_dim, bias=_bool(cfg, "attention_bias", False))
    out: dict[str, Any] = {
        "mimo_v2": m,
        "n_experts": experts if moe else 0, "n_experts_per_tok": top_k if moe else 0,
        "moe_intermediate_size": _int(cfg, "moe_intermediate_size") if moe else 0,
        "shared_expert_intermediate_size": 0, "expert_bias": True,
        "dense_layers": tuple(i for i in range(layers) if i not in moe), "qkv_bias": False, "o_bias": False,
        "kv_layout": tuple((2 * kv_heads if i in swa else kv_heads, head_dim) for i in range(layers)),
        "v_head_dim": v_dim, "swa_in_llama_cpp": True,
    }
    window = _int(cfg, "sliding_window", 129, minimum=0)
    out.update(sliding_window=window, swa_layers=swa if window else ())
    notes[:] = [n for n in notes if not n.startswith("llama.cpp loads this model without sliding-window")]
    missing = [k for k in _CONVERTER_KEYS if cfg.get(k) is None]
    if missing:
        # MimoV2Model.set_gguf_parameters reads each of them as a required key
        out["gguf_unsupported"] = ("convert_hf_to_gguf.py (MimoV2Model) needs the published config.json's "
                                   f"{', '.join(missing)}, which this config does not hold")
    else:
        # measured on a converted tiny model (published spelling, no MTP tensors): block_count 7 for 4 layers,
        # nextn_predict_layers 3, llama-quantize's ffn_down rule counting the 7, and llama.cpp padding every
        # layer's V cache to the widest ("padding V cache to 128") with flash attention off
        out["gguf_unsupported"] = ("convert_hf_to_gguf.py always writes MiMo-V2's 3 MTP layers (model.mtp.*, "
                                   "block_count + 3), which transformers does not define, so the GGUF's tensors "
                                   "and sizes are not known here")
    return out


def mimo_v2_tensors(arch: Any, add: Any) -> None:
    """The weight tensors in llama.cpp names (MODEL_ARCH.MIMO2) and ggml order."""
    m: MimoV2 = arch.mimo_v2
    H, V = arch.hidden_size, arch.vocab_size
    add("token_embd.weight", H, V)
    add("output_norm.weight", H)
    if not arch.tie_word_embeddings:
        add("output.weight", H, V)
    for i in range(arch.n_layers):
        p = f"blk.{i}."
        kvh = arch.kv_layout[i][0]
        q, k, v = arch.n_heads * arch.head_dim, kvh * arch.head_dim, kvh * m.v_head_dim
        add(p + "attn_norm.weight", H)
        add(p + "attn_q.weight", H, q)
        add(p + "attn_k.weight", H, k)
        add(p + "attn_v.weight", H, v)
        if m.bias:
            add(p + "attn_q.bias", q)
            add(p + "attn_k.bias", k)
            add(p + "attn_v.bias", v)
        add(p + "attn_output.weight", arch.n_heads * m.v_head_dim, H)
        if i in m.swa_layers:
            add(p + "attn_sinks.weight", arch.n_heads)
        add(p + "ffn_norm.weight", H)
        if i in m.moe_layers:
            E, F = arch.n_experts, arch.moe_intermediate_size
            add_routed_experts(add, p, H, F, E)
        else:
            add_gated_ffn(add, p, H, arch.intermediate_size)
