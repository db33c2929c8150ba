"""Hybrid and recurrent decoders: Qwen3-Next (gated DeltaNet + attention), Jamba (Mamba-1 +
attention + MoE), Falcon-H1 (Mamba-2 beside attention in every layer), Nemotron-H (Mamba-2 /
attention / MLP / MoE layers; the MoE block in nemotron_h_moe.py), Granite 4 (Mamba-2 + attention,
MoE + shared MLP) and LFM2 (short convolutions + attention).

`Hybrid` holds the per-layer layout and the state-space sizes; `hybrid_tensors` lists the GGUF
tensors as convert_hf_to_gguf.py writes them (names and ggml shapes checked tensor by tensor on
converted tiny random-weight models, bench/hybrid_ground_truth.py); `recurrent_state_bytes`
sizes the per-sequence state llama.cpp / transformers / vLLM keep besides the KV cache.
The sizes use llama.cpp's hparams names (src/llama-hparams.cpp): ssm_d_conv, ssm_d_inner,
ssm_d_state, ssm_n_group, ssm_dt_rank (Mamba-2: the number of heads; DeltaNet: value heads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .attention_tensors import add_qk_norms, add_qkv_projections
from .classic import RECURRENT_MODEL_TYPES, recurrent_unsupported
from .errors import EstimatorError
from .ffn_tensors import add_gated_ffn, add_routed_experts
from .fields import _bool, _int
from .nemotron_h_moe import GGUF_MLP_WITH_MOE, nemotron_h_moe_ffn, nemotron_h_moe_fields

# HF model_type -> llama.cpp architecture name (convert_hf_to_gguf.py model_arch)
HYBRID_MODEL_TYPES = {
    "qwen3_next": "qwen3next", "jamba": "jamba", "falcon_h1": "falcon-h1", "nemotron_h": "nemotron_h",
    "granitemoehybrid": "granitehybrid", "lfm2": "lfm2",
    # Qwen3.5 / 3.6 text decoders (convert_hf_to_gguf.py conversion/qwen.py Qwen3_5TextModel,
    # Qwen3_5MoeTextModel): Qwen3-Next's layout with split DeltaNet projections
    "qwen3_5_text": "qwen35", "qwen3_5_moe_text": "qwen35moe",
    # Bamba converts as Granite 4 (conversion/granite.py registers BambaForCausalLM on GraniteMoeHybridModel)
    "bamba": "granitehybrid",
    # every layer recurrent: Mamba and Falcon-Mamba (conversion/mamba.py MambaModel), Mamba-2 (Mamba2Model)
    **RECURRENT_MODEL_TYPES,
}
QWEN_DELTANET_ARCHS = {"qwen3next", "qwen35", "qwen35moe"}   # gated attention + post_attention_norm
# nemotron_h_moe: what the converter writes for a Nemotron-H config with MoE layers (nemotron_h_moe.py)
HYBRID_ARCHS = set(HYBRID_MODEL_TYPES.values()) | {"nemotron_h_moe"}

# mixers: "attn", "mamba" (Mamba-1), "mamba2", "deltanet", "shortconv", "attn+mamba2" (Falcon-H1),
# ffns: "dense", "moe", "none"
RECURRENT_MIXERS = {"mamba", "mamba2", "deltanet", "shortconv", "attn+mamba2"}


@dataclass(frozen=True)
class Hybrid:
    mixers: tuple[str, ...]
    ffns: tuple[str, ...]
    d_conv: int = 0           # ssm_d_conv (LFM2: conv_L_cache)
    d_inner: int = 0          # ssm_d_inner (DeltaNet: value heads × value head dim)
    d_state: int = 0          # ssm_d_state (DeltaNet: key head dim)
    n_group: int = 0          # ssm_n_group (Mamba-1: 0; DeltaNet: key heads)
    dt_rank: int = 0          # ssm_dt_rank (Mamba-2: heads; DeltaNet: value heads)
    conv_bias: bool = True
    ssm_norm: bool = True     # Mamba-2 grouped RMSNorm before out_proj (Falcon-H1: mamba_rms_norm)
    ffn_gate: bool = True     # Nemotron-H's relu² MLP has no gate projection
    dt_bc_norms: bool = True  # Jamba's Mamba-1 RMSNorms on dt, B and C (Falcon-Mamba's have no weights)
    moe_latent: int = 0       # Nemotron-H MoE: the experts' width between the latent projections; 0 = none

    @property
    def recurrent_layers(self) -> tuple[int, ...]:
        return tuple(i for i, m in enumerate(self.mixers) if m in RECURRENT_MIXERS)

    @property
    def attention_layers(self) -> tuple[int, ...]:
        return tuple(i for i, m in enumerate(self.mixers) if m.startswith("attn"))

    @property
    def conv_dim(self) -> int:
        """Channels the causal conv runs over: d_inner + 2·n_group·d_state (Mamba-2 x, B, C;
        DeltaNet q, k, v; Mamba-1 x only)."""
        return self.d_inner + 2 * self.n_group * self.d_state

    def n_embd_r(self, hidden: int) -> int:
        """llama_hparams::n_embd_r(): conv state per layer per sequence, (d_conv − 1) steps
        ("the first column of the conv_state is shifted out each time"); LFM2: n_embd × (L − 1)."""
        if "shortconv" in self.mixers:
            return hidden * (self.d_conv - 1)
        return (self.d_conv - 1) * self.conv_dim

    def n_embd_s(self) -> int:
        """llama_hparams::n_embd_s(): SSM state ssm_d_state × ssm_d_inner (Mamba-2: per head
        head_dim × d_state; DeltaNet: per value head k_dim × v_dim); 0 for LFM2."""
        return self.d_state * self.d_inner


def hybrid_tensors(arch: Any, add: Callable[..., None]) -> None:
    """All weight tensors of a hybrid model, in llama.cpp names and ggml order (ne0 first)."""
    h: Hybrid = arch.hybrid
    H, V = arch.hidden_size, arch.vocab_size
    add("token_embd.weight", H, V)
    # LFM2's final norm is model.embedding_norm, which the converter names token_embd_norm
    add("token_embd_norm.weight" if arch.arch == "lfm2" else "output_norm.weight", H)
    if not arch.tie_word_embeddings:
        add("output.weight", H, V)
    for i in range(arch.n_layers):
        hybrid_layer(arch, add, i, h.mixers[i], h.ffns[i])


def hybrid_layer(arch: Any, add: Callable[..., None], i: int, mixer: str, ffn: str) -> None:
    """Block i's tensors for the given mixer and FFN kind (Qwen3-Next's MTP block: "attn", "moe")."""
    h: Hybrid = arch.hybrid
    H = arch.hidden_size
    p = f"blk.{i}."
    add(p + "attn_norm.weight", H)
    if arch.arch in QWEN_DELTANET_ARCHS:
        add(p + "post_attention_norm.weight", H)
    elif ffn != "none" and arch.arch not in ("nemotron_h", "nemotron_h_moe"):
        # Falcon-H1's pre-FFN norm is written without the .weight suffix (tensor map quirk)
        add(p + ("ffn_norm" if arch.arch == "falcon-h1" else "ffn_norm.weight"), H)
    if mixer.startswith("attn"):
        _attention(arch, add, p)
    if mixer in ("mamba2", "attn+mamba2"):
        _mamba2(h, H, add, p)
    elif mixer == "mamba":
        _mamba1(h, H, add, p)
    elif mixer == "deltanet":
        _deltanet(h, H, add, p, split_ba=arch.arch != "qwen3next")
    elif mixer == "shortconv":
        add(p + "shortconv.conv.weight", h.d_conv, H)
        add(p + "shortconv.in_proj.weight", H, 3 * H)
        add(p + "shortconv.out_proj.weight", H, H)
    if ffn == "moe" and arch.arch == "nemotron_h_moe":
        nemotron_h_moe_ffn(arch, add, p)
    elif ffn == "moe":
        _moe(arch, add, p)
    elif ffn == "dense":
        F = arch.intermediate_size
        if h.ffn_gate:
            add(p + "ffn_gate.weight", H, F)
        add(p + "ffn_up.weight", H, F)
        add(p + "ffn_down.weight", F, H)


def _attention(arch: Any, add: Callable[..., None], p: str) -> None:
    H, q, kv, hd = arch.hidden_size, arch.q_dim, arch.kv_dim, arch.head_dim
    # Qwen3-Next / Qwen3.5: q_proj also emits the output gate (2 × heads × head_dim), models/qwen3next.cpp
    add_qkv_projections(add, p, H, 2 * q if arch.arch in QWEN_DELTANET_ARCHS else q, kv)
    add(p + "attn_output.weight", q, H)
    if arch.qk_norm:
        add_qk_norms(add, p, hd)


def _mamba2(h: Hybrid, H: int, add: Callable[..., None], p: str) -> None:
    """Mamba-2 (Dao & Gu 2024, arXiv:2405.21060): in_proj → z, x, B, C, dt (2·d_inner + 2·G·N + heads)."""
    add(p + "ssm_in.weight", H, 2 * h.d_inner + 2 * h.n_group * h.d_state + h.dt_rank)
    add(p + "ssm_conv1d.weight", h.d_conv, h.conv_dim)
    if h.conv_bias:
        add(p + "ssm_conv1d.bias", h.conv_dim)
    add(p + "ssm_dt.bias", h.dt_rank)
    add(p + "ssm_a", 1, h.dt_rank)
    add(p + "ssm_d", 1, h.dt_rank)
    if h.ssm_norm:
        add(p + "ssm_norm.weight", h.d_inner // h.n_group, h.n_group)
    add(p + "ssm_out.weight", h.d_inner, H)


def _mamba1(h: Hybrid, H: int, add: Callable[..., None], p: str) -> None:
    """Mamba-1 (Gu & Dao 2023): modeling_mamba.py MambaMixer (Falcon-Mamba's the same: its dt/B/C
    RMSNorms have no weights), and Jamba's with dt/B/C RMSNorm weights (modeling_jamba.py JambaMambaMixer)."""
    add(p + "ssm_in.weight", H, 2 * h.d_inner)
    add(p + "ssm_conv1d.weight", h.d_conv, h.d_inner)
    if h.conv_bias:
        add(p + "ssm_conv1d.bias", h.d_inner)
    add(p + "ssm_x.weight", h.d_inner, h.dt_rank + 2 * h.d_state)
    add(p + "ssm_dt.weight", h.dt_rank, h.d_inner)
    add(p + "ssm_dt.bias", h.d_inner)
    add(p + "ssm_a", h.d_state, h.d_inner)
    add(p + "ssm_d", h.d_inner)
    if h.dt_bc_norms:
        add(p + "ssm_dt_norm.weight", h.dt_rank)
        add(p + "ssm_b_norm.weight", h.d_state)
        add(p + "ssm_c_norm.weight", h.d_state)
    add(p + "ssm_out.weight", h.d_inner, H)


def _deltanet(h: Hybrid, H: int, add: Callable[..., None], p: str, split_ba: bool = False) -> None:
    """Gated DeltaNet (Yang et al. 2024, arXiv:2412.06464) as Qwen3-Next builds it: in_proj_qkvz is
    split by the converter into attn_qkv and attn_gate (z); in_proj_ba → ssm_ba; a per-head A and dt bias.
    Qwen3.5 (modeling_qwen3_5.py Qwen3_5GatedDeltaNet) has in_proj_qkv, in_proj_z and separate
    in_proj_b / in_proj_a, written as attn_qkv, attn_gate, ssm_beta and ssm_alpha."""
    key_dim = h.n_group * h.d_state
    add(p + "attn_qkv.weight", H, 2 * key_dim + h.d_inner)
    add(p + "attn_gate.weight", H, h.d_inner)
    if split_ba:
        add(p + "ssm_beta.weight", H, h.dt_rank)
        add(p + "ssm_alpha.weight", H, h.dt_rank)
    else:
        add(p + "ssm_ba.weight", H, 2 * h.dt_rank)
    add(p + "ssm_conv1d.weight", h.d_conv, h.conv_dim)
    add(p + "ssm_dt.bias", h.dt_rank)
    add(p + "ssm_a", h.dt_rank)
    add(p + "ssm_norm.weight", h.d_inner // h.dt_rank)
    add(p + "ssm_out.weight", h.d_inner, H)


def _moe(arch: Any, add: Callable[..., None], p: str) -> None:
    H, E, F, S = arch.hidden_size, arch.n_experts, arch.moe_intermediate_size, arch.shared_expert_intermediate_size
    add_routed_experts(add, p, H, F, E, router_bias=False)
    if S:
        if arch.shared_expert_gate:
            add(p + "ffn_gate_inp_shexp.weight", H, 1)
        add_gated_ffn(add, p, H, S, "_shexp")


# ------------------------------------------------------------------ HF config.json

def _layer_list(cfg: dict, key: str, layers: int, mapping: dict[str, str]) -> tuple[str, ...] | None:
    value = cfg.get(key)
    if value is None:
        return None
    if isinstance(value, str):  # Nemotron-H hybrid_override_pattern "M-M*-..."
        value = list(value)
    if not isinstance(value, list) or len(value) != layers:
        raise EstimatorError(key, f"must list {layers} layers (num_hidden_layers)")
    unknown = sorted({str(v) for v in value if v not in mapping})
    if unknown:
        raise EstimatorError(key, f"unknown entries {', '.join(unknown)}; known: {', '.join(sorted(mapping))}")
    return tuple(mapping[v] for v in value)


def hybrid_fields(cfg: dict, model_type: str, layers: int, hidden: int, n_experts: int,
                  notes: list[str]) -> dict[str, Any]:
    """Architecture fields of a hybrid model from its config.json (the reading transformers'
    configuration_<model>.py does: defaults, layer patterns, derived widths)."""
    arch = HYBRID_MODEL_TYPES[model_type]
    moe = "moe" if n_experts > 1 else "dense"
    out: dict[str, Any] = {"arch": arch}
    if model_type in ("qwen3_next", "qwen3_5_text", "qwen3_5_moe_text"):
        interval = _int(cfg, "full_attention_interval", 4)
        mixers = _layer_list(cfg, "layer_types", layers, {"linear_attention": "deltanet", "full_attention": "attn"}) \
            or tuple("attn" if (i + 1) % interval == 0 else "deltanet" for i in range(layers))
        # Qwen3.5's decoder layers take no mlp_only_layers / decoder_sparse_step (modeling_qwen3_5_moe.py:
        # every layer is a Qwen3_5MoeSparseMoeBlock; modeling_qwen3_5.py: every layer a dense Qwen3_5MLP)
        if model_type == "qwen3_next" and (cfg.get("mlp_only_layers") or _int(cfg, "decoder_sparse_step", 1) != 1):
            raise EstimatorError("mlp_only_layers", "Qwen3-Next with dense layers is not modelled")
        if model_type == "qwen3_5_moe_text" and moe != "moe":
            raise EstimatorError("num_experts", "Qwen3.5-MoE needs num_experts > 1")
        moe = "dense" if model_type == "qwen3_5_text" else moe
        kh, vh = _int(cfg, "linear_num_key_heads"), _int(cfg, "linear_num_value_heads")
        hyb = Hybrid(mixers, (moe,) * layers, d_conv=_int(cfg, "linear_conv_kernel_dim", 4),
                     d_inner=vh * _int(cfg, "linear_value_head_dim"), d_state=_int(cfg, "linear_key_head_dim"),
                     n_group=kh, dt_rank=vh)
        out.update(qk_norm=True, shared_expert_gate=True)
        # The checkpoint carries one MTP layer (mtp.*) that config.json does not declare
        # (convert_hf_to_gguf.py _QwenMtpMixin counts it from the tensors); mtp_num_hidden_layers if given.
        out["n_nextn_layers"] = _int(cfg, "mtp_num_hidden_layers", 1, minimum=0)
    elif model_type == "jamba":
        ap, ao = _int(cfg, "attn_layer_period", 8), _int(cfg, "attn_layer_offset", 4, minimum=0)
        ep, eo = _int(cfg, "expert_layer_period", 2), _int(cfg, "expert_layer_offset", 1, minimum=0)
        mixers = tuple("attn" if i % ap == ao else "mamba" for i in range(layers))
        ffns = tuple(moe if n_experts > 1 and i % ep == eo else "dense" for i in range(layers))
        d_inner = _int(cfg, "mamba_expand", 2) * hidden
        hyb = Hybrid(mixers, ffns, d_conv=_int(cfg, "mamba_d_conv", 4), d_inner=d_inner,
                     d_state=_int(cfg, "mamba_d_state", 16), n_group=0,
                     dt_rank=_int(cfg, "mamba_dt_rank", -(-hidden // 16)),
                     conv_bias=_bool(cfg, "mamba_conv_bias", True))
        if _bool(cfg, "mamba_proj_bias", False):
            raise EstimatorError("mamba_proj_bias", "Jamba with projection biases is not modelled")
    elif model_type == "falcon_h1":
        heads = _int(cfg, "mamba_n_heads", 128)
        d_ssm = _int(cfg, "mamba_d_ssm", heads * _int(cfg, "mamba_d_head", 64))
        hyb = Hybrid(("attn+mamba2",) * layers, ("dense",) * layers, d_conv=_int(cfg, "mamba_d_conv", 4),
                     d_inner=d_ssm, d_state=_int(cfg, "mamba_d_state", 256), n_group=_int(cfg, "mamba_n_groups", 1),
                     dt_rank=heads, conv_bias=_bool(cfg, "mamba_conv_bias", True),
                     ssm_norm=_bool(cfg, "mamba_rms_norm", False))
        if _bool(cfg, "projectors_bias", False) or _bool(cfg, "mamba_proj_bias", False):
            raise EstimatorError("projectors_bias", "Falcon-H1 with projection biases is not modelled")
    elif model_type == "nemotron_h":
        table = {"M": ("mamba2", "none"), "*": ("attn", "none"), "-": ("none", "dense"), "E": ("none", "moe"),
                 "mamba": ("mamba2", "none"), "attention": ("attn", "none"), "mlp": ("none", "dense"),
                 "moe": ("none", "moe"), "linear_attention": ("mamba2", "none"), "full_attention": ("attn", "none")}
        key = "hybrid_override_pattern" if cfg.get("hybrid_override_pattern") is not None else "layers_block_type"
        kinds = _layer_list(cfg, key, layers, {k: "|".join(v) for k, v in table.items()})
        if kinds is None:
            raise EstimatorError("hybrid_override_pattern", "is required for nemotron_h")
        for bias in ("use_bias", "mlp_bias"):   # Mamba in/out projections; MLP and MoE linears
            if _bool(cfg, bias, False):
                raise EstimatorError(bias, "Nemotron-H with linear biases is not modelled")
        mixers = tuple(k.split("|")[0] for k in kinds)
        ffns = tuple(k.split("|")[1] for k in kinds)
        moe_fields = nemotron_h_moe_fields(cfg) if "moe" in ffns else {}
        heads = _int(cfg, "mamba_num_heads", 128)
        hyb = Hybrid(mixers, ffns, d_conv=_int(cfg, "conv_kernel", 4),
                     d_inner=heads * _int(cfg, "mamba_head_dim", 64), d_state=_int(cfg, "ssm_state_size", 128),
                     n_group=_int(cfg, "n_groups", 8), dt_rank=heads, conv_bias=_bool(cfg, "use_conv_bias", True),
                     ffn_gate=False, moe_latent=moe_fields.pop("moe_latent", 0))
        # modeling_nemotron_h.py: _tied_weights_keys = {} — lm_head is its own tensor whatever
        # tie_word_embeddings says, and the converter writes output.weight (seen on a converted tiny model)
        out.update(n_experts=0, n_experts_per_tok=0, moe_intermediate_size=0, shared_expert_intermediate_size=0,
                   tie_word_embeddings=False, qkv_bias=False, o_bias=False)   # NemotronHAttention: bias=False
        out.update(moe_fields)
        if moe_fields and "dense" in ffns:
            out["gguf_unsupported"] = GGUF_MLP_WITH_MOE
    elif model_type == "granitemoehybrid":
        # configuration_granitemoehybrid.py: attribute_map {"layers_block_type": "layer_types"} — either
        # spelling sets the layout; with neither, every layer is Mamba-2
        key = "layer_types" if cfg.get("layer_types") is not None else "layers_block_type"
        mixers = _layer_list(cfg, key, layers, {"mamba": "mamba2", "attention": "attn",
                                                "linear_attention": "mamba2", "full_attention": "attn"}) \
            or ("mamba2",) * layers
        heads = _int(cfg, "mamba_n_heads", 128)
        shared = _int(cfg, "shared_intermediate_size", 1024)
        hyb = Hybrid(mixers, (moe,) * layers, d_conv=_int(cfg, "mamba_d_conv", 4),
                     d_inner=_int(cfg, "mamba_expand", 2) * hidden, d_state=_int(cfg, "mamba_d_state", 256),
                     n_group=_int(cfg, "mamba_n_groups", 1), dt_rank=heads,
                     conv_bias=_bool(cfg, "mamba_conv_bias", True))
        if moe == "moe":
            out.update(shared_expert_intermediate_size=shared)
        else:  # Granite 4 "H-Micro": the shared MLP is the only FFN (written as ffn_gate/up/down)
            out.update(intermediate_size=shared)
    elif model_type == "bamba":
        # configuration_bamba.py: attention at attn_layer_indices, Mamba-2 elsewhere; every layer a
        # gated BambaMLP of intermediate_size (modeling_bamba.py BambaDecoderLayer, num_experts = 1)
        idx = cfg.get("attn_layer_indices") or []
        if not isinstance(idx, list) or any(not isinstance(i, int) or isinstance(i, bool) for i in idx):
            raise EstimatorError("attn_layer_indices", "must be a list of layer indices")
        for key in ("mamba_proj_bias", "attention_bias", "mlp_bias"):
            if _bool(cfg, key, False):
                raise EstimatorError(key, "Bamba with projection biases is not modelled")
        mixers = tuple("attn" if i in idx else "mamba2" for i in range(layers))
        heads = _int(cfg, "mamba_n_heads", 128)
        hyb = Hybrid(mixers, ("dense",) * layers, d_conv=_int(cfg, "mamba_d_conv", 4),
                     d_inner=_int(cfg, "mamba_expand", 2) * hidden, d_state=_int(cfg, "mamba_d_state", 256),
                     n_group=_int(cfg, "mamba_n_groups", 1), dt_rank=heads,
                     conv_bias=_bool(cfg, "mamba_conv_bias", True))
    elif model_type in RECURRENT_MODEL_TYPES:
        # modeling_mamba.py MambaMixer / modeling_mamba2.py Mamba2Mixer: d_inner = expand · hidden_size, no FFN
        if _bool(cfg, "use_bias", False):
            raise EstimatorError("use_bias", f"{model_type} with in_proj / out_proj biases is not modelled")
        d_inner = _int(cfg, "intermediate_size")   # classic.classic_config: d_inner
        common = dict(d_conv=_int(cfg, "conv_kernel", 4), d_inner=d_inner, conv_bias=_bool(cfg, "use_conv_bias", True))
        if model_type == "mamba2":
            heads = _int(cfg, "num_heads", 128)
            hyb = Hybrid(("mamba2",) * layers, ("none",) * layers, d_state=_int(cfg, "state_size", 128),
                         n_group=_int(cfg, "n_groups", 8), dt_rank=heads, **common)
        else:   # MambaConfig: time_step_rank "auto" = ceil(hidden_size / 16)
            rank = cfg.get("time_step_rank", "auto")
            rank = -(-hidden // 16) if rank == "auto" else _int(cfg, "time_step_rank")
            hyb = Hybrid(("mamba",) * layers, ("none",) * layers, d_state=_int(cfg, "state_size", 16), n_group=0,
                         dt_rank=rank, dt_bc_norms=False, **common)
        out.update(n_experts=0, n_experts_per_tok=0, moe_intermediate_size=0, shared_expert_intermediate_size=0,
                   gguf_unsupported=recurrent_unsupported(cfg, model_type))
    else:  # lfm2
        idx = cfg.get("full_attn_idxs")
        mixers = _layer_list(cfg, "layer_types", layers, {"conv": "shortconv", "full_attention": "attn"})
        if mixers is None:
            if not isinstance(idx, list):
                raise EstimatorError("layer_types", "lfm2 needs layer_types or full_attn_idxs")
            mixers = tuple("attn" if i in idx else "shortconv" for i in range(layers))
        hyb = Hybrid(mixers, ("dense",) * layers, d_conv=_int(cfg, "conv_L_cache", 3), conv_bias=False)
        out.update(qk_norm=True, intermediate_size=_lfm2_ff(cfg))
        if _bool(cfg, "conv_bias", False):
            raise EstimatorError("conv_bias", "LFM2 with conv biases is not modelled")
    out["hybrid"] = hyb
    n_attn, n_rec = len(hyb.attention_layers), len(hyb.recurrent_layers)
    notes.append(f"hybrid: {n_attn} attention layer(s) keep a KV cache, {n_rec} recurrent layer(s) keep a "
                 "fixed-size state per sequence (independent of context)")
    return out


def _lfm2_ff(cfg: dict) -> int:
    """configuration_lfm2.py / modeling_lfm2.py Lfm2MLP: with block_auto_adjust_ff_dim the width is
    int(2·ff/3), × block_ffn_dim_multiplier, rounded up to block_multiple_of."""
    ff = _int(cfg, "intermediate_size")
    if _bool(cfg, "block_auto_adjust_ff_dim", True):
        ff = int(2 * ff / 3)
        mult = cfg.get("block_ffn_dim_multiplier", 1.0)
        if mult is not None:
            ff = int(float(mult) * ff)
        m = _int(cfg, "block_multiple_of", 256)
        ff = m * ((ff + m - 1) // m)
    return ff


# ------------------------------------------------------------------ GGUF metadata

def hybrid_gguf_fields(arch: str, meta: dict, get_int: Any, layers: int, names: set[str] | None) -> dict[str, Any]:
    """The same fields from a GGUF header (keys as convert_hf_to_gguf.py writes them):
    <arch>.ssm.{conv_kernel,inner_size,state_size,time_step_rank,group_count}, a per-layer
    attention.head_count_kv array (0 = recurrent layer), full_attention_interval (qwen3next),
    shortconv.l_cache (lfm2), a per-layer feed_forward_length array (nemotron_h: 0 = no FFN)."""
    kv = meta.get(f"{arch}.attention.head_count_kv")
    kv_list = list(kv) if isinstance(kv, (list, tuple)) and len(kv) >= layers else None
    ff = meta.get(f"{arch}.feed_forward_length")
    ff_list = list(ff) if isinstance(ff, (list, tuple)) and len(ff) >= layers else None
    n_experts = get_int("expert_count", 0, minimum=0)
    moe = "moe" if n_experts > 1 else "dense"
    ssm = dict(d_conv=get_int("ssm.conv_kernel", 4), d_inner=get_int("ssm.inner_size", 0, minimum=0),
               d_state=get_int("ssm.state_size", 0, minimum=0), n_group=get_int("ssm.group_count", 0, minimum=0),
               dt_rank=get_int("ssm.time_step_rank", 0, minimum=0))
    has = (lambda n: n in names) if names else (lambda n: True)
    out: dict[str, Any] = {}
    if arch in QWEN_DELTANET_ARCHS:
        interval = get_int("full_attention_interval", 4)
        mixers = tuple("attn" if (i + 1) % interval == 0 else "deltanet" for i in range(layers))
        hyb = Hybrid(mixers, (moe,) * layers, **ssm)
        out.update(qk_norm=True, shared_expert_gate=True)
    elif arch == "lfm2":
        mixers = tuple("attn" if kv_list and kv_list[i] else "shortconv" for i in range(layers))
        hyb = Hybrid(mixers, ("dense",) * layers, d_conv=get_int("shortconv.l_cache", 3), conv_bias=False)
        out.update(qk_norm=True)
    elif arch == "falcon-h1":
        hyb = Hybrid(("attn+mamba2",) * layers, ("dense",) * layers, **ssm,
                     ssm_norm=names is not None and "blk.0.ssm_norm.weight" in names)
    else:
        if kv_list is None:
            raise EstimatorError(f"{arch}.attention.head_count_kv", "must be a per-layer array for a hybrid model")
        mixers = tuple("attn" if kv_list[i] else ("mamba" if arch == "jamba" else "mamba2") for i in range(layers))
        if arch in ("nemotron_h", "nemotron_h_moe"):
            if ff_list is None:
                raise EstimatorError(f"{arch}.feed_forward_length", f"must be a per-layer array for {arch}")
            mixers = tuple("none" if ff_list[i] else m for i, m in enumerate(mixers))
            # nemotron_h_moe: a layer with a feed_forward_length is an MoE block (the converter writes 0 on MLP ones)
            kind = "moe" if arch == "nemotron_h_moe" else "dense"
            ffns = tuple(kind if ff_list[i] else "none" for i in range(layers))
            hyb = Hybrid(mixers, ffns, **ssm, ffn_gate=False, moe_latent=get_int("moe_latent_size", 0, minimum=0))
            out.update(intermediate_size=max(ff_list[:layers]))
            if arch == "nemotron_h_moe":
                out.update(expert_bias=True)
        elif arch == "jamba":
            ffns = tuple(moe if (names and f"blk.{i}.ffn_gate_inp.weight" in names) or (not names and i % 2 == 1)
                         else "dense" for i in range(layers)) if moe == "moe" else ("dense",) * layers
            hyb = Hybrid(mixers, ffns, **ssm, conv_bias=has("blk.0.ssm_conv1d.bias"))
        else:  # granitehybrid
            hyb = Hybrid(mixers, (moe,) * layers, **ssm)
            if moe == "dense":
                out.update(intermediate_size=get_int("expert_shared_feed_forward_length",
                                                     get_int("feed_forward_length", 0, minimum=0)))
        if arch in ("jamba", "granitehybrid", "nemotron_h", "nemotron_h_moe") and kv_list is not None:
            out["n_kv_heads"] = max(kv_list[:layers])
    out["hybrid"] = hyb
    return out


# ------------------------------------------------------------------ memory

def recurrent_state_bytes(arch: Any, runtime: str, n_seq: int) -> tuple[int, str]:
    """Per-sequence recurrent state (conv + SSM/delta state) of the recurrent layers; it does not
    grow with the context.

    llama.cpp (llama-model.cpp create_memory → llama_memory_recurrent, llama-memory-recurrent.cpp):
    per recurrent layer an R tensor [n_embd_r, mem_size] and an S tensor [n_embd_s, mem_size] of
    GGML_TYPE_F32 (type_r/type_s are hard-wired F32), mem_size = max(1, n_seq_max); n_rs_seq
    rollback snapshots default to 0. Falcon-H1 keeps both in every layer (filter_recr true).
    transformers 5.23 (cache_utils.py LinearAttentionLayer; measured on the tiny models of
    bench/hybrid_ground_truth.py after a bf16 forward): conv states of the whole kernel, d_conv
    steps (not d_conv − 1), in the activations' dtype (2 B), and recurrent states in float32 (4 B)
    with the reference PyTorch kernels (fla / mamba_ssm kernels were not installed to check).
    vLLM (MambaSpec): (d_conv − 1) conv steps + the SSM state per request, both in the model dtype
    (mamba_ssm_cache_dtype "auto", 2 B) — read from its design, not measured here; a config's own
    mamba_ssm_cache_dtype (Nemotron-H: float32) and the page padding to the attention block size
    are not modelled.
    """
    h: Hybrid = arch.hybrid
    n_rec = len(h.recurrent_layers)
    r, s = h.n_embd_r(arch.hidden_size), h.n_embd_s()
    if runtime == "llama.cpp":
        seqs = max(1, n_seq)
        total = n_rec * (r + s) * seqs * 4
        return total, (f"{n_rec} recurrent layers × (R {r:,} conv + S {s:,} state) × {seqs} seq(s) × 4 B (F32) "
                       f"= {total:,} B")
    conv_steps = h.d_conv if runtime == "transformers" else h.d_conv - 1
    channels = arch.hidden_size if "shortconv" in h.mixers else h.conv_dim
    conv = conv_steps * channels
    state_bytes = 4 if runtime == "transformers" else 2
    total = n_rec * (conv * 2 + s * state_bytes) * n_seq
    return total, (f"{n_rec} recurrent layers × ({conv_steps} × {channels:,} conv × 2 B + {s:,} state × "
                   f"{state_bytes} B) × {n_seq} seq(s) = {total:,} B")
