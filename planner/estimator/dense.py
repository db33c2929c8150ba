"""Dense decoders whose block is not llama's: OLMo 1/2/3, StarCoder 2, GPT-NeoX, Phi-1/2, StableLM,
GLM / GLM-4, Command R / R7B (cohere, cohere2), Seed-OSS, Arcee (AFM) and Apertus.

They differ from llama by LayerNorm with a bias (or with no weights at all), biases on the
linears, a fused QKV, parallel attention + MLP (one pre-norm), non-gated MLPs (up/down only),
QK-norms over each head or over the whole projection, and norms after attention and the MLP.
`Dense` records those choices per model type as transformers builds the block
(models/<type>/modeling_<type>.py), and `dense_tensors` lists the GGUF tensors as
convert_hf_to_gguf.py writes them (conversion/olmo.py, starcoder.py, gptneox.py, phi.py,
stablelm.py, glm.py, chatglm.py, command_r.py, llama.py): names and ggml shapes checked tensor by
tensor on converted tiny random-weight models (bench/dense_ground_truth.py).

Where llama.cpp cannot convert or load a configuration (an option its architecture has no tensor
for), `gguf_unsupported` says so and the GGUF rows are not planned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .attention_tensors import add_qkv_projections
from .errors import EstimatorError
from .fields import _bool, _int
from .layouts import swa_pattern_layers

# HF model_type -> llama.cpp architecture name (the converter's model_arch)
DENSE_MODEL_TYPES = {
    "olmo": "olmo", "olmo2": "olmo2", "olmo3": "olmo2", "starcoder2": "starcoder2", "gpt_neox": "gptneox",
    "phi": "phi2", "stablelm": "stablelm", "glm4": "glm4", "glm": "chatglm", "cohere": "command-r",
    "cohere2": "cohere2", "seed_oss": "seed_oss", "arcee": "arcee", "apertus": "apertus", "exaone4": "exaone4",
}
# config classes whose tie_word_embeddings defaults to True (configuration_<type>.py)
TIED_BY_DEFAULT = {"starcoder2", "cohere", "cohere2"}
# head_dim when config.json omits it: the config class default (glm4, glm, seed_oss: 128);
# StableLM and GPT-NeoX always use hidden_size // num_attention_heads
HEAD_DIM_DEFAULT = {"glm4": 128, "glm": 128, "seed_oss": 128}
HEAD_DIM_FIXED = {"stablelm", "gpt_neox"}
# num_key_value_heads when config.json omits it (the config class default; the others: num_attention_heads)
KV_HEADS_DEFAULT = {"starcoder2": 2, "stablelm": 32, "glm4": 2, "glm": 2, "seed_oss": 8, "exaone4": 32}


@dataclass(frozen=True)
class Dense:
    """One decoder block's weights. Norms: "" none, "w" a weight, "wb" weight and bias (LayerNorm)."""

    attn_norm: str = "w"
    ffn_norm: str = "w"              # the pre-MLP norm; "" in parallel blocks (Phi, Cohere) and OLMo-2
    ffn_norm_name: str = "ffn_norm"  # Seed-OSS names it post_attention_norm
    output_norm: str = "w"
    post_attn_norm: bool = False     # OLMo-2, GLM-4: a norm on the attention output (post_attention_norm)
    post_ffn_norm: bool = False      # OLMo-2, GLM-4: a norm on the MLP output (post_ffw_norm)
    fused_qkv: bool = False          # GPT-NeoX query_key_value -> attn_qkv
    qkv_bias: bool = False
    o_bias: bool = False
    ffn: str = "gated"               # "gated" (gate, up, down), "plain" (up, down), "fused" (ffn_up of 2·F)
    ffn_bias: bool = False
    qk_norm: str = ""                # "" | "head" (head_dim) | "full" (q_dim / kv_dim) | "heads" (head_dim per head)
    qk_norm_bias: bool = False
    output_bias: bool = False        # Phi: lm_head has a bias
    checkpoint_only: int = 0         # per-layer parameters the converter moves into metadata (Apertus xIELU)
    pos_embd: int = 0                # learned absolute positions (GPT-2, StarCoder): position_embd rows; 0 = none
    embd_norm: str = ""              # a norm on the embeddings (BLOOM's word_embeddings_layernorm: token_embd_norm)
    attn_norm_2: str = ""            # Falcon-40B's second pre-norm, the MLP's (ln_attn beside ln_mlp)


def dense_config_defaults(cfg: dict, model_type: str) -> dict:
    """cfg with the fields config.json may omit filled in as the config class does: head_dim,
    num_key_value_heads and tie_word_embeddings (configuration_<type>.py)."""
    out = dict(cfg)
    heads, hidden = cfg.get("num_attention_heads"), cfg.get("hidden_size")
    if model_type in HEAD_DIM_FIXED and isinstance(heads, int) and isinstance(hidden, int) and heads > 0:
        out["head_dim"] = hidden // heads
    elif cfg.get("head_dim") is None and model_type in HEAD_DIM_DEFAULT:
        out["head_dim"] = HEAD_DIM_DEFAULT[model_type]
    if model_type == "gpt_neox":   # GPTNeoXAttention: query_key_value of 3 × hidden_size, no GQA
        out["num_key_value_heads"] = heads
    elif "num_key_value_heads" not in cfg and model_type in KV_HEADS_DEFAULT:
        out["num_key_value_heads"] = KV_HEADS_DEFAULT[model_type]
    if cfg.get("tie_word_embeddings") is None:
        out["tie_word_embeddings"] = model_type in TIED_BY_DEFAULT
    if model_type == "exaone4" and "sliding_window" not in cfg:   # Exaone4Config: 4096 on 3 of every 4 layers
        out["sliding_window"] = 4096
    if model_type == "apertus" and cfg.get("rope_parameters") is None and cfg.get("rope_scaling") is None:
        out["rope_parameters"] = {"rope_type": "llama3"}   # ApertusConfig's default rope
    return out


def dense_fields(cfg: dict, model_type: str, layers: int, heads: int, notes: list[str]) -> dict[str, Any]:
    """The Architecture fields of a dense model type (DENSE_MODEL_TYPES): the block layout, the
    defaults the config class fills in, sliding windows, and why llama.cpp can't run it, if it can't."""
    hidden = _int(cfg, "hidden_size")
    fields: dict[str, Any] = {"tie_word_embeddings": _bool(cfg, "tie_word_embeddings", False)}
    attention_bias = _bool(cfg, "attention_bias", model_type in ("gpt_neox", "glm4", "glm", "seed_oss"))
    unsupported = ""
    if model_type == "olmo":   # modeling_olmo.py OlmoLayerNorm: no learnable weight or bias
        dense = Dense(attn_norm="", ffn_norm="", output_norm="", qkv_bias=attention_bias, o_bias=attention_bias)
        if attention_bias:   # measured: "done_getting_tensors: wrong number of tensors" on a converted tiny model
            unsupported = "llama.cpp's olmo loads no attention biases (attention_bias=true: the file does not load)"
    elif model_type in ("olmo2", "olmo3"):   # norms after attention and MLP only; q/k norms over the projection
        dense = Dense(attn_norm="", ffn_norm="", post_attn_norm=True, post_ffn_norm=True, qkv_bias=attention_bias,
                      o_bias=attention_bias, qk_norm="full")
        if model_type == "olmo3":
            fields.update(_layer_type_swa(cfg, layers, 4, notes))
    elif model_type == "starcoder2":   # LayerNorm with bias; c_fc / c_proj MLP; use_bias on every linear
        bias = _bool(cfg, "use_bias", True)
        dense = Dense(attn_norm="wb", ffn_norm="wb", output_norm="wb", qkv_bias=bias, o_bias=bias, ffn="plain",
                      ffn_bias=bias)
    elif model_type == "gpt_neox":   # both LayerNorms even with use_parallel_residual; dense_h_to_4h has a bias
        dense = Dense(attn_norm="wb", ffn_norm="wb", output_norm="wb", fused_qkv=True, qkv_bias=attention_bias,
                      o_bias=attention_bias, ffn="plain", ffn_bias=True)
    elif model_type == "phi":   # one LayerNorm per block (parallel); every linear and lm_head with a bias
        qk_norm = _bool(cfg, "qk_layernorm", False)
        dense = Dense(attn_norm="wb", ffn_norm="", output_norm="wb", qkv_bias=True, o_bias=True, ffn="plain",
                      ffn_bias=True, qk_norm="head" if qk_norm else "", qk_norm_bias=True, output_bias=True)
        unsupported = _phi_unsupported(cfg, hidden, heads, qk_norm, fields["tie_word_embeddings"])
    elif model_type == "stablelm":   # StableLmLayerNormPerHead: one bias-free LayerNorm per head
        parallel = _bool(cfg, "use_parallel_residual", False)
        dense = Dense(attn_norm="wb", ffn_norm="" if parallel else "wb", output_norm="wb",
                      qkv_bias=_bool(cfg, "use_qkv_bias", False), qk_norm="heads" if _bool(cfg, "qk_layernorm", False)
                      else "")
        if dense.qk_norm:   # conversion/stablelm.py returns, not yields, the stacked norms
            unsupported = ("convert_hf_to_gguf.py fails on StableLM's per-head QK LayerNorms (qk_layernorm=true: "
                           "\"Unprocessed norms\")")
    elif model_type == "glm4":   # sandwich norms; o_proj without bias; fused gate_up_proj
        dense = Dense(post_attn_norm=True, post_ffn_norm=True, qkv_bias=attention_bias, ffn="fused")
    elif model_type == "glm":
        dense = Dense(qkv_bias=attention_bias, ffn="fused")
        if _int(cfg, "head_dim") * heads != hidden:   # measured: check_tensor_dims on attn_q
            unsupported = "llama.cpp's chatglm sizes attention by hidden_size / heads, not this head_dim"
    elif model_type in ("cohere", "cohere2"):   # CohereLayerNorm: weight only; attention and MLP in parallel
        qk_norm = model_type == "cohere" and _bool(cfg, "use_qk_norm", False)
        dense = Dense(ffn_norm="", qkv_bias=attention_bias, o_bias=attention_bias, qk_norm="heads" if qk_norm else "")
        if model_type == "cohere2":
            fields.update(_layer_type_swa(cfg, layers, _int(cfg, "sliding_window_pattern", 4), notes))
            unsupported = _cohere2_pattern_unsupported(fields.get("swa_layers", ()), layers)
        if attention_bias:
            unsupported = (f"llama.cpp's {model_type} has no attention bias tensors (attention_bias=true: the converter "
                           "cannot map or drops them)")
        elif not fields["tie_word_embeddings"]:
            unsupported = f"llama.cpp's {model_type} always ties the output to the embedding (untied lm_head.weight)"
        elif qk_norm and layers < 64:   # measured on a 4-layer model: "wrong number of tensors"
            unsupported = ("llama.cpp 0.3.36's command-r leaves the QK-norms of this model unloaded (it takes them "
                           "only from Command R+-sized, 64-layer models), so the file does not load")
    elif model_type == "seed_oss":   # the pre-MLP norm is written as post_attention_norm
        dense = Dense(ffn_norm_name="post_attention_norm", qkv_bias=attention_bias,
                      o_bias=_bool(cfg, "attention_out_bias", False), ffn_bias=_bool(cfg, "mlp_bias", False))
        if dense.o_bias or dense.ffn_bias:   # measured: "wrong number of tensors" on a converted tiny model
            unsupported = "llama.cpp 0.3.36's seed_oss loads no o_proj or MLP biases (attention_out_bias / mlp_bias)"
    elif model_type == "arcee":   # ReLU² MLP: up and down only
        dense = Dense(qkv_bias=attention_bias, o_bias=attention_bias, ffn="plain",
                      ffn_bias=_bool(cfg, "mlp_bias", False))
        if attention_bias or dense.ffn_bias:   # measured: "wrong number of tensors" on a converted tiny model
            unsupported = "llama.cpp 0.3.36's arcee does not load all of these biases (attention_bias / mlp_bias)"
    elif model_type == "apertus":   # xIELU MLP (up, down); per-head q/k RMSNorm
        xielu = cfg.get("hidden_act", "xielu") == "xielu"
        # activations.py XIELUActivation: parameters alpha_p, alpha_n and buffers beta, eps (one each);
        # ApertusModel.modify_tensors writes them as xielu.* metadata arrays, not tensors
        dense = Dense(qkv_bias=attention_bias, o_bias=attention_bias, ffn="plain", qk_norm="head",
                      checkpoint_only=4 if xielu else 0)
    elif model_type == "exaone4":   # OLMo-2's block (norms after attention and MLP only), per-head q/k norms
        dense = Dense(attn_norm="", ffn_norm="", post_attn_norm=True, post_ffn_norm=True, qk_norm="head")
        pattern = cfg.get("sliding_window_pattern", 4)
        if cfg.get("layer_types") is None and cfg.get("sliding_window") is not None and not (
                isinstance(pattern, int) and not isinstance(pattern, bool) and pattern > 0):
            raise EstimatorError("sliding_window_pattern", f"{pattern!r}: give layer_types, or a period as a "
                                                           "positive integer (Exaone4Config cannot expand a string)")
        if cfg.get("sliding_window") is not None:
            fields.update(_layer_type_swa(cfg, layers, pattern if isinstance(pattern, int) else 4, notes))
    else:
        raise EstimatorError("model_type", f"{model_type!r} is not a dense model type")
    # LlamaModel.generate_extra_tensors (conversion/llama.py; Arcee and Apertus inherit it) writes
    # rope_freqs for llama3 rope scaling; the other converters write no rope tensor
    # (Exaone4Model.generate_extra_tensors, conversion/exaone.py, does the same)
    fields["rope_freqs"] = model_type in ("arcee", "apertus", "exaone4") and _rope_type(cfg) == "llama3"
    fields.update(dense=dense, qkv_bias=dense.qkv_bias, o_bias=dense.o_bias, mlp_bias=dense.ffn_bias,
                  qk_norm=bool(dense.qk_norm), fused_qkv=dense.fused_qkv, gguf_unsupported=unsupported)
    return fields


def _rope_type(cfg: dict) -> str:
    for key in ("rope_parameters", "rope_scaling"):
        rope = cfg.get(key)
        if isinstance(rope, dict):
            return str(rope.get("rope_type") or rope.get("type") or "")
    return ""


def _layer_type_swa(cfg: dict, layers: int, period: int, notes: list[str]) -> dict[str, Any]:
    """OLMo 3 and Command R7B: `layer_types` (the config class default: sliding except every
    period-th layer) with `sliding_window`; llama.cpp caches the local layers in its SWA cache
    (OLMo 3: the converter writes layer_types as sliding_window_pattern, conversion/olmo.py)."""
    window = cfg.get("sliding_window")
    if window is None:
        return {}
    window = _int(cfg, "sliding_window", minimum=0)
    types = cfg.get("layer_types")
    if types is None:
        local = swa_pattern_layers(layers, period)
    elif isinstance(types, list) and len(types) == layers and set(types) <= {"sliding_attention", "full_attention"}:
        local = tuple(i for i, t in enumerate(types) if t == "sliding_attention")
    else:
        raise EstimatorError("layer_types", f"must be {layers} entries of sliding_attention / full_attention")
    if not window:
        return {}
    notes.append(f"sliding window of {window} tokens on {len(local)} of {layers} layers")
    return {"sliding_window": window, "swa_layers": local, "swa_in_llama_cpp": True}


def _cohere2_pattern_unsupported(local: tuple[int, ...], layers: int) -> str:
    if local and local != swa_pattern_layers(layers, 4):
        return ("llama.cpp's cohere2 uses a fixed pattern (3 sliding layers, then 1 full) and ignores "
                "layer_types, so its cache and attention would differ from this model's")
    return ""


def _phi_unsupported(cfg: dict, hidden: int, heads: int, qk_norm: bool, tied: bool) -> str:
    """conversion/phi.py Phi2Model writes head_count_kv = head_count and feed_forward_length =
    4·hidden whatever the config says, and llama.cpp's phi2 has no QK-norm or tied head."""
    if qk_norm:
        return "llama.cpp's phi2 has no QK-norm tensors (qk_layernorm=true: the converter cannot map them)"
    if _int(cfg, "num_key_value_heads", heads) != heads:
        return "the converter writes phi2 head_count_kv = num_attention_heads, so llama.cpp cannot load a GQA Phi"
    if _int(cfg, "intermediate_size") != 4 * hidden:
        return "the converter writes phi2 feed_forward_length = 4 × hidden_size, not this intermediate_size"
    if tied:
        return "llama.cpp's phi2 needs its own output.weight (tie_word_embeddings=true)"
    return ""


def dense_tensors(arch: Any, add: Callable[..., None]) -> None:
    """All weight tensors of a dense model (arch.dense), in llama.cpp names and ggml order."""
    d: Dense = arch.dense
    H, V, F = arch.hidden_size, arch.vocab_size, arch.intermediate_size
    add("token_embd.weight", H, V)
    if d.pos_embd:
        add("position_embd.weight", H, d.pos_embd)
    _norm(add, "token_embd_norm", d.embd_norm, H)
    _norm(add, "output_norm", d.output_norm, H)
    if not arch.tie_word_embeddings:
        add("output.weight", H, V)
    if d.output_bias:
        add("output.bias", V)
    if arch.rope_freqs:
        add("rope_freqs.weight", arch.head_dim // 2)
    q, kv = arch.q_dim, arch.kv_dim
    for i in range(arch.n_layers):
        p = f"blk.{i}."
        _norm(add, p + "attn_norm", d.attn_norm, H)
        _norm(add, p + "attn_norm_2", d.attn_norm_2, H)
        if d.fused_qkv:
            add(p + "attn_qkv.weight", H, q + 2 * kv)
            if d.qkv_bias:
                add(p + "attn_qkv.bias", q + 2 * kv)
        else:
            add_qkv_projections(add, p, H, q, kv)
            if d.qkv_bias:
                add(p + "attn_q.bias", q)
                add(p + "attn_k.bias", kv)
                add(p + "attn_v.bias", kv)
        if d.qk_norm:
            hd = arch.head_dim
            q_shape, k_shape = {"head": ((hd,), (hd,)), "full": ((q,), (kv,)),
                                "heads": ((hd, arch.n_heads), (hd, arch.n_kv_heads))}[d.qk_norm]
            add(p + "attn_q_norm.weight", *q_shape)
            add(p + "attn_k_norm.weight", *k_shape)
            if d.qk_norm_bias:
                add(p + "attn_q_norm.bias", *q_shape)
                add(p + "attn_k_norm.bias", *k_shape)
        add(p + "attn_output.weight", q, H)
        if d.o_bias:
            add(p + "attn_output.bias", H)
        if d.post_attn_norm:
            add(p + "post_attention_norm.weight", H)
        _norm(add, p + d.ffn_norm_name, d.ffn_norm, H)
        if d.ffn == "fused":
            add(p + "ffn_up.weight", H, 2 * F)
        else:
            if d.ffn == "gated":
                add(p + "ffn_gate.weight", H, F)
                if d.ffn_bias:
                    add(p + "ffn_gate.bias", F)
            add(p + "ffn_up.weight", H, F)
            if d.ffn_bias:
                add(p + "ffn_up.bias", F)
        add(p + "ffn_down.weight", F, H)
        if d.ffn_bias:
            add(p + "ffn_down.bias", H)
        if d.post_ffn_norm:
            add(p + "post_ffw_norm.weight", H)


def _norm(add: Callable[..., None], name: str, kind: str, width: int) -> None:
    if kind:
        add(name + ".weight", width)
    if kind == "wb":
        add(name + ".bias", width)
