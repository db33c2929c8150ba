"""HRM-Text (transformers model_type "hrm_text", llama.cpp architecture "hrm_text").

transformers 5.23 (models/hrm_text/configuration_hrm_text.py, modeling_hrm_text.py):
- HrmTextConfig: two stacks (L and H) of `num_layers_per_stack` decoder blocks each. A config built
  from a per-stack `num_hidden_layers` remembers it as num_layers_per_stack and rewrites
  num_hidden_layers to the cache-slot count num_layers_per_stack × H_cycles × (L_cycles + 1); a saved
  config.json holds both.
- HrmTextModel.forward runs the L stack L_cycles times and then the H stack once, H_cycles times over:
  every block is applied several times per token, its parameters counted once, and every application
  keeps its own KV in the cache (`past_key_values.update(..., layer_idx + cycle_offset)`).
- HrmTextAttention: multi-head (no GQA, whatever num_key_value_heads says), q/k/v/o and a sigmoid
  output gate gate_proj, all heads × head_dim wide, biases with attention_bias. HrmTextMLP: gated, biases
  with mlp_bias. The RMSNorms have no weight. z_L_init (hidden) is a parameter; no final model norm.

GGUF (conversion/hrm_text.py HrmTextModel, gguf-py MODEL_ARCH.HRM_TEXT; llama.cpp src/models/hrm-text.cpp):
the L stack as blk.0 … blk.{lps−1}, the H stack after it; block_count is the cache-slot count, whose
later slots alias the same tensors, so llama.cpp's n_layer — and its KV cache — counts every application.
The planner's n_layers is that slot count too; blocks past 2 × lps hold no tensors of their own (llama.cpp
places a tensor by its blk number, create_tensor's dev_layer.at(bid), and each slot's KV by the slot).
vLLM's hrm_text.py (read from its source, not run here) also gives every application its own KV slot.
speed.py counts a block's weights once per application (`applications`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import EstimatorError
from .fields import LIMITS, _bool, _int

HRM_TEXT_MODEL_TYPES = {"hrm_text": "hrm_text"}


@dataclass(frozen=True)
class Hrm:
    layers_per_stack: int     # blocks in each of the L and H stacks
    h_cycles: int
    l_cycles: int
    attention_bias: bool      # q/k/v/o and gate projections
    mlp_bias: bool


def hrm_text_config(cfg: dict) -> dict:
    """HrmTextConfig's defaults for the fields the shared reader takes."""
    out = {"vocab_size": 151808, "hidden_size": 1536, "intermediate_size": 4096, "num_hidden_layers": 16,
           "num_attention_heads": 12, "head_dim": 128, "max_position_embeddings": 2048,
           "tie_word_embeddings": False}
    out.update({k: v for k, v in cfg.items() if v is not None or k not in out})
    return out


def hrm_text_fields(cfg: dict, layers: int, hidden: int, heads: int, notes: list[str]) -> dict[str, Any]:
    """Architecture fields of an HRM-Text config.json, read as HrmTextConfig.__post_init__ does."""
    if hidden % heads:   # HrmTextConfig.validate_architecture
        raise EstimatorError("num_attention_heads", f"hrm_text: {heads} does not divide hidden_size {hidden}")
    h_cycles = _int(cfg, "H_cycles", 2)
    l_cycles = _int(cfg, "L_cycles", 3)
    per_stack = cfg.get("num_layers_per_stack")
    lps = layers if per_stack is None else _int(cfg, "num_layers_per_stack")
    slots = lps * h_cycles * (l_cycles + 1)
    if slots > LIMITS["num_hidden_layers"]:
        raise EstimatorError("H_cycles", f"hrm_text: {lps} layers per stack × {h_cycles} H_cycles × "
                                         f"({l_cycles} L_cycles + 1) = {slots:,} attention applications per token "
                                         f"is beyond the sane limit {LIMITS['num_hidden_layers']:,}")
    hrm = Hrm(layers_per_stack=lps, h_cycles=h_cycles, l_cycles=l_cycles,
              attention_bias=_bool(cfg, "attention_bias", False), mlp_bias=_bool(cfg, "mlp_bias", False))
    out: dict[str, Any] = {
        "hrm": hrm, "n_layers": slots, "n_kv_heads": heads, "attn_gate": True,
        "qkv_bias": False, "o_bias": False, "mlp_bias": False,   # hrm_text_tensors writes the biases
    }
    notes.append(f"HRM-Text applies its 2 stacks of {lps} blocks {h_cycles} × ({l_cycles} + 1) times per token: "
                 f"{2 * lps} blocks of weights, {slots} attention applications, each with its own KV cache "
                 "(transformers' cache slots, llama.cpp's n_layer)")
    if per_stack is not None and layers < slots:
        # HrmTextModel addresses cache slot layer_idx + cycle_offset up to `slots`; DynamicCache(config=…)
        # makes num_hidden_layers of them, so generating with the cache stops at the first slot past it
        notes.append(f"num_hidden_layers {layers} is below the {slots} cache slots HrmTextModel addresses: "
                     "transformers' DynamicCache made from this config has too few layers to generate with")
    if hrm.attention_bias or hrm.mlp_bias:
        # measured on a converted tiny model with both: 67 tensors in the file, 47 created (src/models/hrm-text.cpp
        # takes the optional q/k/v biases, none for the gate, attn_output or the FFN)
        out["gguf_unsupported"] = ("llama.cpp 0.3.36's hrm_text has no attn_gate, attn_output or FFN biases, so a "
                                   "converted file with attention_bias / mlp_bias does not load (\"done_getting_tensors: "
                                   "wrong number of tensors\")")
    elif cfg.get("num_key_value_heads") not in (None, heads):
        # the converter writes head_count_kv from it; the model's K and V are num_attention_heads wide
        out["gguf_unsupported"] = ("convert_hf_to_gguf.py writes num_key_value_heads as the KV head count, but "
                                   "HRM-Text's K and V always have num_attention_heads heads, so llama.cpp would "
                                   "expect other shapes")
    return out


def hrm_text_tensors(arch: Any, add: Any) -> None:
    """The weight tensors in llama.cpp names (MODEL_ARCH.HRM_TEXT) and ggml order: the L stack's blocks,
    then the H stack's; no norm has a weight."""
    g: Hrm = arch.hrm
    H, V, F, q = arch.hidden_size, arch.vocab_size, arch.intermediate_size, arch.q_dim
    add("token_embd.weight", H, V)
    if not arch.tie_word_embeddings:
        add("output.weight", H, V)
    add("hrm.z_l_init", H)   # the converter writes it without a .weight suffix
    for i in range(2 * g.layers_per_stack):
        p = f"blk.{i}."
        for part in ("attn_q", "attn_k", "attn_v", "attn_gate"):
            add(p + part + ".weight", H, q)
            if g.attention_bias:
                add(p + part + ".bias", q)
        add(p + "attn_output.weight", q, H)
        if g.attention_bias:
            add(p + "attn_output.bias", H)
        for part in ("ffn_gate", "ffn_up"):
            add(p + part + ".weight", H, F)
            if g.mlp_bias:
                add(p + part + ".bias", F)
        add(p + "ffn_down.weight", F, H)
        if g.mlp_bias:
            add(p + "ffn_down.bias", H)


def applications(arch: Any, name: str) -> int:
    """How many times one token's forward applies a tensor: an L-stack block's H_cycles × L_cycles times,
    an H-stack block's H_cycles times (HrmTextModel.forward, src/models/hrm-text.cpp), any other once.
    Every application multiplies by the block's weights again, so decode reads them again and prefill
    spends their FLOP again."""
    g: Hrm | None = getattr(arch, "hrm", None)
    if g is None or not name.startswith("blk."):
        return 1
    block = int(name.split(".", 2)[1])
    return g.h_cycles * g.l_cycles if block < g.layers_per_stack else g.h_cycles


def applied_params(arch: Any) -> int:
    """The active parameters counted once per application (= active_params but for HRM-Text)."""
    if getattr(arch, "hrm", None) is None:
        return arch.active_params
    return sum(n * applications(arch, name) for name, _, n in arch.tensors())
