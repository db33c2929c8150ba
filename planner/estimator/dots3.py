"""dots3 note's text model (transformers model_type "dots3_note_text", llama.cpp architecture "dots3note").

transformers 5.23 (models/dots3_note/configuration_dots3_note.py Dots3NoteTextConfig, modeling_dots3_note.py):
- Layer kinds: `layer_types` given, else "indexed_attention" on layers i < 2 and i % 4 == 1 and
  "sliding_attention" elsewhere (all "indexed_attention" with use_sliding_window false); use_dsa false
  renames indexed to "full_attention" (no indexer). `mlp_layer_types` given, else dense below
  first_k_dense_replace (default 1) and where moe_layer_freq says so.
- The sliding layers have their own attention widths through `per_layer_config` (a map layer index ->
  overridden fields; the class builds it from the published swa_* keys: 64 heads, kv_lora_rank 1024,
  qk_nope_head_dim 192 by default). Dots3NoteTextAttention reads that layer's config: DeepSeek's MLA
  with q_lora (q_a_proj, q_a_layernorm, q_b_proj to heads × (nope + rope); kv_a_proj_with_mqa to
  kv_lora + rope, kv_a_layernorm, kv_b_proj to heads × (nope + v), o_proj; q_a / kv_a / o biases with
  attention_bias), k_rope_only_layernorm (rope) and a per-head output gate g_proj (hidden -> heads);
  on indexed layers a DSA indexer (wq_b from q_lora, wk, LayerNorm k_norm with bias, weights_proj).
- Dots3NoteTextMoE: router weight plus e_score_correction_bias (a persistent buffer), experts of
  moe_intermediate_size, one shared MLP of shared_experts_intermediate_size × n_shared_experts; dense
  layers a gated MLP of intermediate_size. Two norms per layer; lm_head tied with tie_word_embeddings.

GGUF (conversion/dots3.py Dots3NoteModel, gguf-py MODEL_ARCH.DOTS3NOTE, llama.cpp src/models/dots3note.cpp):
DeepSeek-V2's split MLA names (attn_k_b / attn_v_b per layer kind), attn_k_norm for the rope norm,
attn_gate, the indexer on the non-sliding layers; one sliding geometry (swa_* keys), a leading dense
block, shared experts n_ff_exp × n_expert_shared wide.

Cache: every layer keeps its MLA latent (kv_lora_rank + qk_rope_head_dim per token, no V); the indexed
layers also keep index_head_dim indexer keys per token (llama.cpp's DSA cache, transformers'
DynamicIndexedLayer); sliding layers keep their window (llama.cpp's SWA cache, DynamicSlidingWindowLayer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .errors import EstimatorError
from .ffn_tensors import add_gated_ffn, add_routed_experts
from .fields import _bool, _int

DOTS3_MODEL_TYPES = {"dots3_note_text": "dots3note"}
INDEXED, SLIDING, FULL = "indexed_attention", "sliding_attention", "full_attention"
# Dots3NoteTextConfig.__post_init__: the sliding layers' widths when the config names none (swa_* keys)
_SLIDING_DEFAULTS = {"num_attention_heads": 64, "num_key_value_heads": 64, "q_lora_rank": 1024,
                     "kv_lora_rank": 1024, "head_dim": 256, "qk_nope_head_dim": 192, "v_head_dim": 128}
# per-layer fields that size the attention's tensors (the rest of a layer reads the global config)
_SHAPED = ("num_attention_heads", "num_key_value_heads", "q_lora_rank", "kv_lora_rank", "head_dim",
           "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "attention_bias", "index_n_heads", "index_head_dim")
# per-layer fields that size no tensor
_UNSHAPED = ("sliding_window", "index_topk", "rms_norm_eps", "attention_dropout", "rope_parameters",
             "partial_rotary_factor", "rope_theta")


@dataclass(frozen=True)
class Dots3Layer:
    """One layer's attention widths (its per_layer_config over the global config)."""

    heads: int
    q_lora: int
    kv_lora: int
    nope: int
    rope: int
    v: int
    bias: bool
    index_heads: int
    index_dim: int


@dataclass(frozen=True)
class Dots3:
    layers: tuple[Dots3Layer, ...]
    kinds: tuple[str, ...]          # layer_types
    moe_layers: tuple[int, ...]

    @property
    def indexed(self) -> tuple[int, ...]:
        return tuple(i for i, k in enumerate(self.kinds) if k == INDEXED)


def dots3_config(cfg: dict) -> dict:
    """Dots3NoteTextConfig's defaults for the fields the shared reader takes."""
    out = {"vocab_size": 152064, "hidden_size": 5120, "intermediate_size": 13824, "moe_intermediate_size": 1536,
           "num_hidden_layers": 46, "num_attention_heads": 128, "num_key_value_heads": 128, "n_shared_experts": 1,
           "n_routed_experts": 256, "kv_lora_rank": 512, "q_lora_rank": 1024, "qk_rope_head_dim": 64,
           "v_head_dim": 128, "qk_nope_head_dim": 128, "num_experts_per_tok": 8, "max_position_embeddings": 524288,
           "head_dim": 256, "index_head_dim": 128, "index_n_heads": 64, "shared_experts_intermediate_size": 1536}
    out.update({k: v for k, v in cfg.items() if v is not None or k not in out})
    if "q_lora_rank" in cfg and cfg["q_lora_rank"] is None:   # an explicit null, which the class refuses
        out["q_lora_rank"] = None
    if cfg.get("num_local_experts") is not None and cfg.get("n_routed_experts") is None:   # attribute_map
        out["n_routed_experts"] = cfg["num_local_experts"]
    if cfg.get("moe_shared_expert_intermediate_size") is not None:   # the published spelling
        out["shared_experts_intermediate_size"] = cfg["moe_shared_expert_intermediate_size"]
    if cfg.get("sliding_window") is None:
        out["sliding_window"] = cfg.get("sliding_window_size", 512)
    return out


def _layer_kinds(cfg: dict, layers: int) -> list[str]:
    use_dsa = cfg.get("use_dsa", None if "per_layer_config" in cfg else True)
    kinds = cfg.get("layer_types")
    if kinds is None:
        full = FULL if use_dsa is False else INDEXED
        windowed = _bool(cfg, "use_sliding_window", True)
        kinds = [full if not windowed or i < 2 or i % 4 == 1 else SLIDING for i in range(layers)]
    if not isinstance(kinds, list) or len(kinds) != layers or not set(kinds) <= {INDEXED, SLIDING, FULL}:
        raise EstimatorError("layer_types", f"must be {layers} entries of {INDEXED} / {SLIDING} / {FULL}")
    if use_dsa is not None:   # use_dsa renames the non-sliding layers
        old, new = (FULL, INDEXED) if use_dsa else (INDEXED, FULL)
        kinds = [new if k == old else k for k in kinds]
    return kinds


def _mlp_kinds(cfg: dict, layers: int) -> list[str]:
    kinds = cfg.get("mlp_layer_types")
    if kinds is None:
        first = _int(cfg, "first_k_dense_replace", 1, minimum=0)
        freq = cfg.get("moe_layer_freq", 1)
        if isinstance(freq, list):
            if len(freq) < layers:
                raise EstimatorError("moe_layer_freq", f"must list {layers} entries (num_hidden_layers)")
            kinds = ["sparse" if i >= first and freq[i] else "dense" for i in range(layers)]
        else:
            step = _int(cfg, "moe_layer_freq", 1)
            kinds = ["sparse" if i >= first and i % step == 0 else "dense" for i in range(layers)]
    if not isinstance(kinds, list) or len(kinds) != layers or not set(kinds) <= {"dense", "sparse"}:
        raise EstimatorError("mlp_layer_types", f"must be {layers} entries of dense / sparse")
    return kinds


def _overrides(cfg: dict, kinds: list[str]) -> dict[int, dict]:
    """Layer index -> overridden fields: per_layer_config as saved (keys "02", ...), else the sliding
    layers' widths from the published swa_* keys (their class defaults where absent)."""
    given = cfg.get("per_layer_config")
    if given is None:
        sliding = {k: cfg.get(f"swa_{k}", v) for k, v in _SLIDING_DEFAULTS.items()}
        sliding["qk_rope_head_dim"] = cfg.get("swa_qk_rope_head_dim",
                                              _num(sliding, "head_dim", "swa_head_dim")
                                              - _num(sliding, "qk_nope_head_dim", "swa_qk_nope_head_dim"))
        return {i: sliding for i, k in enumerate(kinds) if k == SLIDING}
    if not isinstance(given, dict):
        raise EstimatorError("per_layer_config", "must be an object of layer index -> fields")
    out: dict[int, dict] = {}
    for key, fields in given.items():
        try:
            i = int(key)
        except (TypeError, ValueError):
            raise EstimatorError("per_layer_config", f"{key!r} is not a layer index") from None
        if not 0 <= i < len(kinds) or not isinstance(fields, dict):
            raise EstimatorError("per_layer_config", f"{key!r}: must be a layer below {len(kinds)} with an object")
        unknown = sorted(set(fields) - set(_SHAPED) - set(_UNSHAPED))
        if unknown:
            raise EstimatorError("per_layer_config", f"layer {i} overrides {unknown[0]}, which the estimator does not "
                                                     "model per layer, so it refuses rather than guess")
        out[i] = fields
    return out


def _num(fields: dict, key: str, name: str) -> int:
    return _int({name: fields.get(key)}, name)


def _read_layer(f: dict, own: dict, i: int, published: bool) -> Dots3Layer:
    """Layer i's widths from its merged fields f; an error names the key the layer's own value came from
    (swa_* in the published spelling, per_layer_config in transformers')."""
    def n(key: str) -> int:
        if key not in own:
            return _num(f, key, key)
        return _num(f, key, f"swa_{key}" if published else f"per_layer_config.{i}.{key}")

    return Dots3Layer(heads=n("num_attention_heads"), q_lora=n("q_lora_rank"), kv_lora=n("kv_lora_rank"),
                      nope=n("qk_nope_head_dim"), rope=n("qk_rope_head_dim"), v=n("v_head_dim"),
                      bias=_bool(f, "attention_bias", False), index_heads=n("index_n_heads"),
                      index_dim=n("index_head_dim"))


def dots3_fields(cfg: dict, layers: int, notes: list[str]) -> dict[str, Any]:
    """Architecture fields of a dots3 note text config.json, read as Dots3NoteTextConfig.__post_init__ does."""
    kinds = _layer_kinds(cfg, layers)
    mlp = _mlp_kinds(cfg, layers)
    overrides = _overrides(cfg, kinds)
    if cfg.get("q_lora_rank", 0) is None or any(o.get("q_lora_rank", 0) is None for o in overrides.values()):
        raise EstimatorError("q_lora_rank", "dots3_note_text: is required (its MLA queries and the indexer "
                                            "project from the query latent)")
    glob = {k: cfg.get(k) for k in _SHAPED}
    per: list[Dots3Layer] = []
    for i in range(layers):
        f = {**glob, **overrides.get(i, {})}
        layer = _read_layer(f, overrides.get(i, {}), i, "per_layer_config" not in cfg)
        kv = _int(f, "num_key_value_heads", layer.heads)
        if kv != layer.heads:   # validate_architecture
            raise EstimatorError("num_key_value_heads", f"dots3_note_text: layer {i} has {kv}, which must equal its "
                                                        f"num_attention_heads {layer.heads} (MLA)")
        if kinds[i] == INDEXED and layer.rope > layer.index_dim:
            raise EstimatorError("qk_rope_head_dim", f"dots3_note_text: {layer.rope} must not exceed index_head_dim "
                                                     f"{layer.index_dim}")
        per.append(layer)
    if _int(cfg, "n_shared_experts", 1, minimum=0) < 1:
        raise EstimatorError("n_shared_experts", "dots3_note_text: at least one shared expert is required")
    moe = tuple(i for i, k in enumerate(mlp) if k == "sparse")
    experts, top_k = _int(cfg, "n_routed_experts"), _int(cfg, "num_experts_per_tok")
    if moe and top_k > experts:
        raise EstimatorError("num_experts_per_tok", f"dots3_note_text: {top_k} > number of experts {experts}")
    d = Dots3(layers=tuple(per), kinds=tuple(kinds), moe_layers=moe)
    swa = tuple(i for i, k in enumerate(kinds) if k == SLIDING)
    windows = {_int({"sliding_window": overrides.get(i, {}).get("sliding_window", cfg.get("sliding_window"))},
                    "sliding_window") for i in swa}
    if len(windows) > 1:
        raise EstimatorError("per_layer_config", "dots3_note_text: sliding layers with different windows are not "
                                                 "modelled, so it refuses rather than guess")
    g = next((per[i] for i in range(layers) if i not in swa), per[0])   # the non-sliding layers' widths
    moe_inter = _int(cfg, "moe_intermediate_size")
    shared = _int(cfg, "shared_experts_intermediate_size") * _int(cfg, "n_shared_experts")
    out: dict[str, Any] = {
        "dots3": d, "arch": "dots3note", "n_kv_heads": g.heads, "n_heads": g.heads, "head_dim": g.nope + g.rope,
        "q_lora_rank": g.q_lora, "kv_lora_rank": g.kv_lora, "qk_rope_head_dim": g.rope, "v_head_dim": g.v,
        "n_experts": experts if moe else 0, "n_experts_per_tok": top_k if moe else 0,
        "moe_intermediate_size": moe_inter if moe else 0, "shared_expert_intermediate_size": shared if moe else 0,
        "expert_bias": True, "dense_layers": tuple(i for i in range(layers) if i not in moe),
        "qkv_bias": False, "o_bias": False, "mlp_bias": False,
        "sliding_window": windows.pop() if swa else 0, "swa_layers": swa, "swa_in_llama_cpp": True,
    }
    if d.indexed:
        notes.append("DSA lightning indexer: the indexed layers cache their indexer keys (index_head_dim per token) "
                     "beside the MLA latent")
    out["gguf_unsupported"] = _gguf_refusal(cfg, d, moe_inter)
    return out


def _gguf_refusal(cfg: dict, d: Dots3, moe_inter: int) -> str:
    """Why convert_hf_to_gguf.py (conversion/dots3.py) or llama.cpp's dots3note cannot make or run this model
    as transformers defines it. The layout limits come first; the last reason holds for every
    dots3_note_text config.json (measured on converted tiny models, bench/llama_cpp_ground_truth.py)."""
    kinds, layers = d.kinds, d.layers
    if FULL in kinds:
        return ("conversion/dots3.py requires use_dsa (llama.cpp builds the DSA indexer on every non-sliding "
                "layer); this model has full_attention layers without one")
    if any(layer.bias for layer in layers):
        return "llama.cpp's dots3note loads no attention biases (attention_bias is true here)"
    if _int(cfg, "n_group", 1) != 1 or _int(cfg, "topk_group", 1) != 1:
        return "conversion/dots3.py does not support grouped expert routing (n_group / topk_group above 1)"
    dense = [i for i in range(len(kinds)) if i not in d.moe_layers]
    if dense != list(range(len(dense))):
        return ("llama.cpp's dots3note makes only a leading block of layers dense (leading_dense_block_count); "
                f"this model's dense layers are {dense} (mlp_layer_types)")
    if d.moe_layers and _int(cfg, "shared_experts_intermediate_size") != moe_inter:
        return ("llama.cpp's dots3note sizes the shared experts as moe_intermediate_size × n_shared_experts; this "
                f"model's shared expert width is {_int(cfg, 'shared_experts_intermediate_size')}, not {moe_inter}")
    for kind in (INDEXED, SLIDING):
        if len({layers[i] for i in range(len(kinds)) if kinds[i] == kind}) > 1:
            return f"the converter writes one geometry per layer kind; this model's {kind} layers differ"
    if len({(layer.q_lora, layer.rope, layer.index_heads, layer.index_dim) for layer in layers}) > 1:
        return ("the converter writes one q_lora_rank, qk_rope_head_dim and indexer shape for both layer kinds; "
                "this model's sliding layers differ")
    if d.indexed and layers[d.indexed[0]].index_dim % 64:
        # measured: tiny models with index_head_dim 32 and 96 convert, but llama.cpp 0.3.36 aborts reserving
        # their graph (GGML_ASSERT(ggml_can_mul_mat(a, b)) after the Hadamard-rotated indexer cache is made);
        # 64 and 128 (the class default) load
        return (f"llama.cpp 0.3.36 aborts loading a dots3note model with index_head_dim {layers[d.indexed[0]].index_dim} "
                "(GGML_ASSERT(ggml_can_mul_mat(a, b)) in its indexer; measured with 32 and 96, while 64 and 128 load)")
    # measured: the tiny model's config.json with model_type dots3_note_text fails with KeyError
    # 'swa_qk_nope_head_dim' even when it holds every swa_* key; as dots3_note (the checkpoint's spelling,
    # text fields at the top level) it converts and loads
    return ("convert_hf_to_gguf.py reads config.json through transformers' AutoConfig, and for model_type "
            "dots3_note_text transformers 5.23 folds the sliding layers' swa_* keys into per_layer_config, which "
            "conversion/dots3.py does not read (measured: KeyError 'swa_qk_nope_head_dim'); only the checkpoint's "
            "own dots3_note config.json converts, and that multimodal wrapper is not planned here")


def dots3_tensors(arch: Any, add: Callable[..., None]) -> None:
    """The weight tensors in llama.cpp names (MODEL_ARCH.DOTS3NOTE) and ggml order (ne0 first)."""
    d: Dots3 = arch.dots3
    H, V = arch.hidden_size, arch.vocab_size
    add("token_embd.weight", H, V)
    add("output_norm.weight", H)
    if not arch.tie_word_embeddings:
        add("output.weight", H, V)
    for i, a in enumerate(d.layers):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", H)
        add(p + "attn_q_a.weight", H, a.q_lora)
        add(p + "attn_q_a_norm.weight", a.q_lora)
        add(p + "attn_q_b.weight", a.q_lora, a.heads * (a.nope + a.rope))
        add(p + "attn_kv_a_mqa.weight", H, a.kv_lora + a.rope)
        add(p + "attn_kv_a_norm.weight", a.kv_lora)
        add(p + "attn_k_b.weight", a.nope, a.kv_lora, a.heads)
        add(p + "attn_v_b.weight", a.kv_lora, a.v, a.heads)
        add(p + "attn_output.weight", a.heads * a.v, H)
        if a.bias:
            add(p + "attn_q_a.bias", a.q_lora)
            add(p + "attn_kv_a_mqa.bias", a.kv_lora + a.rope)
            add(p + "attn_output.bias", H)
        add(p + "attn_k_norm.weight", a.rope)
        add(p + "attn_gate.weight", H, a.heads)
        if d.kinds[i] == INDEXED:
            add(p + "indexer.attn_q_b.weight", a.q_lora, a.index_heads * a.index_dim)
            add(p + "indexer.attn_k.weight", H, a.index_dim)
            add(p + "indexer.k_norm.weight", a.index_dim)
            add(p + "indexer.k_norm.bias", a.index_dim)
            add(p + "indexer.proj.weight", H, a.index_heads)
        add(p + "ffn_norm.weight", H)
        if i in d.moe_layers:
            E, F, S = arch.n_experts, arch.moe_intermediate_size, arch.shared_expert_intermediate_size
            add_routed_experts(add, p, H, F, E)
            add_gated_ffn(add, p, H, S, "_shexp")
        else:
            add_gated_ffn(add, p, H, arch.intermediate_size)


def dots3_kv_cache_bytes(arch: Any, runtime: str, full_t: int, local_t: int, unit: str, elem: float,
                         elem_txt: str) -> tuple[int, str]:
    """Each layer's MLA latent (kv_lora_rank + qk_rope_head_dim per token: the DSA and SWA caches of
    llama.cpp's dots3note hold K only, transformers keeps k_pass and k_rot), over full_t tokens or, on
    the sliding layers, local_t; plus the indexed layers' indexer keys (index_head_dim per token over
    full_t: llama.cpp's indexer cache tracks the DSA cache cell for cell, DynamicIndexedLayer keeps
    [batch, seq, index_head_dim]). vLLM is refused before this (memory.vllm_cache_unmeasured)."""
    d: Dots3 = arch.dots3
    swa = set(arch.swa_layers)
    groups: dict[tuple[str, int, int], int] = {}
    for i, a in enumerate(d.layers):
        key = ("latent", a.kv_lora + a.rope, local_t if i in swa else full_t)
        groups[key] = groups.get(key, 0) + 1
        if d.kinds[i] == INDEXED and runtime != "vllm":
            key = ("indexer keys", a.index_dim, full_t)
            groups[key] = groups.get(key, 0) + 1
    total = int(sum(n * row * t for (_, row, t), n in groups.items()) * elem)
    parts = " + ".join(f"{n} layers × {row} {what} × {t:,} {unit}" for (what, row, t), n in sorted(groups.items()))
    return total, f"MLA (K only, no V): ({parts}) × {elem_txt} = {total:,} B"
