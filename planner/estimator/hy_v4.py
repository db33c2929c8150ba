"""HY V4 (Tencent Hunyuan; transformers model_type "hy_v4", llama.cpp architecture "hy_v4").

transformers 5.23 (models/hy_v4/configuration_hy_v4.py, modeling_hy_v4.py):
- HYV4Config.__post_init__: num_key_value_heads = num_attention_heads (MLA), head_dim =
  qk_rope_head_dim; `mlp_layer_types` default one dense layer then "sparse"; `indexer_types`
  default "full" on layer 0 and on every layer with (i - 1) % 4 == 0, "shared" elsewhere.
- HYV4Attention: DeepSeek-V3's MLA (q_a_proj, q_a_layernorm, q_b_proj to heads × (qk_nope +
  qk_rope), kv_a_proj_with_mqa to kv_lora_rank + qk_rope, kv_a_layernorm, kv_b_proj to heads ×
  (qk_nope + v_head_dim), o_proj from heads × v_head_dim; q_a / kv_a / o biases with
  attention_bias), a sigmoid output gate gate_proj (hidden → heads × v_head_dim), one learned sink
  per head (`sinks`), and on "full" layers a DSA lightning indexer (wq_b, wk, a LayerNorm k_norm with
  weight and bias, weights_proj); "shared" layers reuse the previous full layer's top-k and have none.
- HYV4MoE: the router weight plus e_score_correction_bias (a persistent buffer), experts of
  moe_intermediate_size (fused gate_up_proj), one shared MLP of n_shared_experts ×
  moe_intermediate_size; dense layers a gated MLP of intermediate_size.
- Hyper-connections: hc_mult residual streams. Each layer has two HYV4HyperConnection (attn_hc,
  ffn_hc): fn (2·hc_mult × hc_mult·hidden), base (2·hc_mult), scale (2); the model one
  HYV4HyperHead (hc_fn hc_mult × hc_mult·hidden, hc_base hc_mult, hc_scale 1) before the final norm.

GGUF (conversion/hy_v4.py HYV4Model, gguf-py MODEL_ARCH.HY_V4; llama.cpp's
llama_model_hy_v4::load_arch_tensors): DeepSeek-V2's split MLA names plus attn_gate, attn_sinks, the indexer of
the full layers, hc_attn_* / hc_ffn_* per layer and output_hc_* once; llama.cpp reads the dense
layers as a leading block (leading_dense_block_count) and always loads output.weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import EstimatorError
from .ffn_tensors import add_gated_ffn, add_routed_experts
from .fields import _bool, _int
from .moe_decoders import Indexer, add_indexer_tensors

HY_V4_MODEL_TYPES = {"hy_v4": "hy_v4"}


@dataclass(frozen=True)
class HyV4:
    hc_mult: int                  # residual streams of the hyper-connections
    attention_bias: bool          # q_a_proj, kv_a_proj_with_mqa and o_proj biases


def hy_v4_config(cfg: dict) -> dict:
    """HYV4Config's defaults for the fields the shared reader takes, with __post_init__'s overrides."""
    out = {"vocab_size": 120832, "hidden_size": 2816, "intermediate_size": 6912, "moe_intermediate_size": 768,
           "num_hidden_layers": 34, "num_attention_heads": 32, "max_position_embeddings": 262144,
           "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8, "q_lora_rank": 1536,
           "kv_lora_rank": 512, "qk_nope_head_dim": 192, "qk_rope_head_dim": 64, "v_head_dim": 256,
           "index_head_dim": 128, "index_n_heads": 16, "hc_mult": 4, "tie_word_embeddings": False}
    out.update({k: v for k, v in cfg.items() if v is not None or k not in out})
    if cfg.get("num_local_experts") is not None and cfg.get("n_routed_experts") is None:   # attribute_map
        out["n_routed_experts"] = cfg["num_local_experts"]
    # __post_init__: MLA keeps one K/V per query head, and head_dim names the rope slice
    out["num_key_value_heads"] = _int(out, "num_attention_heads")
    out["head_dim"] = _int(out, "qk_rope_head_dim")
    return out


def _per_layer(cfg: dict, key: str, layers: int, default: list[str], allowed: set[str]) -> list[str]:
    kinds = cfg.get(key)
    if kinds is None:
        return default
    if not isinstance(kinds, list) or len(kinds) != layers or not set(kinds) <= allowed:
        raise EstimatorError(key, f"must be a list of {layers} entries, each " + " or ".join(sorted(allowed)))
    return kinds


def hy_v4_fields(cfg: dict, layers: int, heads: int, notes: list[str]) -> dict[str, Any]:
    """Architecture fields of a HY V4 config.json, read as HYV4Config.__post_init__ does."""
    mlp = _per_layer(cfg, "mlp_layer_types", layers, ["dense"] * min(1, layers) + ["sparse"] * max(layers - 1, 0),
                     {"dense", "sparse"})
    idx = _per_layer(cfg, "indexer_types", layers,
                     ["full" if i == 0 or (i - 1) % 4 == 0 else "shared" for i in range(layers)], {"full", "shared"})
    dense = tuple(i for i, kind in enumerate(mlp) if kind == "dense")
    full = tuple(i for i, kind in enumerate(idx) if kind == "full")
    nope, rope = _int(cfg, "qk_nope_head_dim"), _int(cfg, "qk_rope_head_dim")
    index_dim = _int(cfg, "index_head_dim")
    experts = _int(cfg, "n_routed_experts")
    bias = _bool(cfg, "attention_bias", False)
    hc = HyV4(hc_mult=_int(cfg, "hc_mult"), attention_bias=bias)
    notes.append(f"hyper-connections: {hc.hc_mult} residual streams per token (fn/base/scale mixing parameters on "
                 "every layer and before the final norm)")
    n_mtp = _int(cfg, "num_nextn_predict_layers", 0, minimum=0)
    if n_mtp:   # HYV4PreTrainedModel ignores model.mtp_layers.* on load; conversion/hy_v4.py drops them
        notes.append(f"{n_mtp} MTP layer(s) (num_nextn_predict_layers) are in the published checkpoint only: "
                     "transformers does not build them and the GGUF converter drops them; not counted here")
    if full:
        notes.append(f"DSA lightning indexer on {len(full)} of {layers} layers (the \"shared\" ones reuse the "
                     "previous full layer's top-k): llama.cpp caches its keys beside the MLA latent")
    unsupported = ""
    # where the vendored converter or llama.cpp 0.3.36 stops, measured on converted tiny HY V4 variants
    # (bench/llama_cpp_ground_truth.py's tiny model with the one field changed); the first that applies
    if dense != tuple(range(len(dense))):
        unsupported = (f"llama.cpp's hy_v4 takes the dense layers as a leading block; this config's are {list(dense)} "
                       "(mlp_layer_types), and convert_hf_to_gguf.py stops: \"HY_V4 converter expects a contiguous "
                       "leading dense block\"")
    elif idx and idx[0] != "full":
        unsupported = ("convert_hf_to_gguf.py stops when layer 0 does not own the DSA indexer (indexer_types[0] = "
                       "\"shared\"): \"HY_V4 layer 0 must be indexer_types 'full' (nothing precedes it to share)\"")
    elif index_dim <= rope:
        unsupported = (f"llama.cpp's hy_v4 refuses an index_head_dim ({index_dim}) not wider than qk_rope_head_dim "
                       f"({rope}): \"hy_v4: bad indexer head count / key length\"")
    elif bias:
        unsupported = ("llama.cpp's hy_v4 has no MLA biases (attention_bias=true), so the converted file does not "
                       "load: \"done_getting_tensors: wrong number of tensors\"")
    elif _bool(cfg, "tie_word_embeddings", False):
        unsupported = ("llama.cpp's hy_v4 always loads a separate output.weight, which tied embeddings "
                       "(tie_word_embeddings=true) do not give: \"check_tensor_dims: tensor 'output.weight' "
                       "not found\"")
    elif len(dense) < layers and not _int(cfg, "n_shared_experts", 1, minimum=0):
        unsupported = ("llama.cpp's hy_v4 always runs a shared expert: with n_shared_experts = 0 the converted file "
                       "holds zero-width ffn_*_shexp tensors, llama_model_quantize fails and loading the F16 file "
                       "aborts (GGML_ASSERT(!ggml_is_transposed(a)))")
    return {
        "arch": "hy_v4",
        "n_kv_heads": heads,
        "head_dim": nope + rope,
        "q_lora_rank": _int(cfg, "q_lora_rank"),
        "kv_lora_rank": _int(cfg, "kv_lora_rank"),
        "qk_rope_head_dim": rope,
        "v_head_dim": _int(cfg, "v_head_dim"),
        "dense_layers": dense,
        "expert_bias": True,
        "attn_sinks": True,
        "qkv_bias": False, "o_bias": False,
        "n_experts": experts if len(dense) < layers else 0,
        "indexer": Indexer(_int(cfg, "index_n_heads"), index_dim, full),
        "hy_v4": hc,
        "gguf_unsupported": unsupported,
    }


def hy_v4_tensors(arch: Any, add: Any) -> None:
    """The weight tensors in llama.cpp names (MODEL_ARCH.HY_V4) and ggml order (ne0 first)."""
    m: HyV4 = arch.hy_v4
    H, V, nh, hc = arch.hidden_size, arch.vocab_size, arch.n_heads, m.hc_mult
    rope, kvr, qr, vd = arch.qk_rope_head_dim, arch.kv_lora_rank, arch.q_lora_rank, arch.v_head_dim
    nope = arch.head_dim - rope
    add("token_embd.weight", H, V)
    add("output_norm.weight", H)
    if not arch.tie_word_embeddings:
        add("output.weight", H, V)
    add("output_hc_fn.weight", hc * H, hc)
    add("output_hc_base.weight", hc)
    add("output_hc_scale.weight", 1)
    for i in range(arch.n_layers):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", H)
        add(p + "attn_sinks.weight", nh)
        add(p + "attn_q_a.weight", H, qr)
        add(p + "attn_q_a_norm.weight", qr)
        add(p + "attn_q_b.weight", qr, nh * arch.head_dim)
        add(p + "attn_kv_a_mqa.weight", H, kvr + rope)
        add(p + "attn_kv_a_norm.weight", kvr)
        add(p + "attn_k_b.weight", nope, kvr, nh)
        add(p + "attn_v_b.weight", kvr, vd, nh)
        add(p + "attn_output.weight", nh * vd, H)
        add(p + "attn_gate.weight", H, nh * vd)
        if m.attention_bias:   # GGUF rows are refused for these (llama.cpp's hy_v4 loads none)
            add(p + "attn_q_a.bias", qr)
            add(p + "attn_kv_a_mqa.bias", kvr + rope)
            add(p + "attn_output.bias", H)
        if i in arch.indexer.layers:
            add_indexer_tensors(add, p, H, qr, arch.indexer)
        for part in ("attn", "ffn"):
            add(p + f"hc_{part}_fn.weight", hc * H, 2 * hc)
            add(p + f"hc_{part}_base.weight", 2 * hc)
            add(p + f"hc_{part}_scale.weight", 2)
        add(p + "ffn_norm.weight", H)
        if i in arch.dense_layers:
            add_gated_ffn(add, p, H, arch.intermediate_size)
        else:
            E, F, S = arch.n_experts, arch.moe_intermediate_size, arch.shared_expert_intermediate_size
            add_routed_experts(add, p, H, F, E)
            add_gated_ffn(add, p, H, S, "_shexp")
