"""Model architecture: the shape numbers that decide parameter count, tensor list and KV cache.

The tensor list uses llama.cpp GGUF tensor names (`src/llama-arch.cpp`, `LLM_TENSOR_NAMES`) and
ggml shape order: `shape[0]` is ne0, the row length (the *input* dimension of a linear layer),
e.g. `blk.0.attn_k.weight` of SmolLM2-135M is (576, 192). This is the order `gguf.GGUFReader`
reports and the one llama.cpp's quantizer tests for block-size compatibility.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .attention_tensors import add_qk_norms, add_qkv_projections
from .dense import Dense, dense_tensors
from .hybrid import Hybrid, hybrid_layer, hybrid_tensors
from .moe_decoders import Indexer, add_indexer_tensors
from .gemma4 import Gemma4, gemma4_tensors
from .gemma3n import Gemma3n, gemma3n_gguf_only, gemma3n_tensors
from .kimi_linear import kimi_linear_tensors
from .hrm_text import Hrm, hrm_text_tensors
from .mimo_v2 import MimoV2, mimo_v2_tensors
from .laguna import Laguna, laguna_tensors
from .dots3 import Dots3, dots3_tensors
from .hy_v4 import HyV4, hy_v4_tensors
from .deepseek_v4 import DeepseekV4, deepseek_v4_tensors

TensorSpec = tuple[str, tuple[int, ...], int]  # (gguf name, ggml shape, n_params)


@dataclass(frozen=True)
class Architecture:
    """Decoder-only transformer shape. Build with `from_config`, `from_gguf_metadata`, `from_param_count`."""

    name: str
    arch: str                      # llama.cpp architecture name: llama, qwen2, gemma2, phi3, qwen2moe, qwen3,
                                   # deepseek2, llama4
    hidden_size: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool = False
    qkv_bias: bool = False         # Qwen2: q/k/v projections have bias
    o_bias: bool = False           # Llama `attention_bias=True`: o_proj has bias too
    mlp_bias: bool = False
    fused_qkv: bool = False        # Phi-3: one qkv_proj and one gate_up_proj
    extra_norms: int = 0           # Gemma 2: post-attention and post-FFN norms (2 extra per layer)
    parallel_ffn: bool = False     # Cohere 2 MoE: attention and MLP read one pre-norm (no ffn_norm)
    attn_gate: bool = False        # AFMoE: a sigmoid gate on the attention output (attn_gate, hidden → q_dim)
    sub_norms: bool = False        # BitNet: RMSNorms before o_proj (attn_sub_norm, hidden) and down_proj (ffn_sub_norm, F)
    qk_norm: bool = False          # Qwen3: per-head RMSNorm on q and k (head_dim weights each)
    qk_norm_full: bool = False     # MiniMax-M2: the q/k RMSNorms span the whole projection (q_dim, kv_dim)
    n_experts: int = 0             # 0 = dense MLP
    n_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0
    shared_expert_gate: bool = False   # Qwen2-MoE: sigmoid gate (n_embd -> 1) on the shared expert
    dense_layers: tuple[int, ...] = ()  # MoE models: layers with a dense FFN of intermediate_size
                                        # (DeepSeek first_k_dense_replace, Llama 4 interleave step)
    expert_bias: bool = False      # DeepSeek-V3: router bias per expert (`exp_probs_b.bias`)
    moe_bias: bool = False         # gpt-oss: router bias + per-expert gate/up/down biases
    fused_moe_gate_up: bool = False  # Granite SWA MoE: the converter keeps gate+up fused (ffn_gate_up_exps,
                                     # the shared expert's as one ffn_up_shexp of 2 × its width)
    attn_sinks: bool = False       # gpt-oss: one learned attention-sink logit per head (`attn_sinks`)
    q_lora_rank: int = 0           # MLA (DeepSeek-V2/V3): low-rank query; 0 = plain attn_q
    kv_lora_rank: int = 0          # MLA latent width; 0 = not MLA. head_dim = qk_nope + qk_rope then
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    n_nextn_layers: int = 0        # multi-token-prediction layers (DeepSeek-V3, Qwen3-Next): in the
                                   # checkpoint, not in the forward pass; counted in mtp_params
    mla_legacy: bool = False       # deepseek2 GGUF from before llama.cpp split kv_b (no key_length_mla):
                                   # one attn_kv_b, and llama.cpp caches per-head K and V for it
    sliding_window: int = 0        # tokens; 0 = none
    swa_layers: tuple[int, ...] = ()   # layers that use the sliding window (Gemma 2, gpt-oss: even
                                       # layers; Gemma 3: 5 of every 6; Mistral v0.1: all)
    swa_in_llama_cpp: bool = True  # False where llama.cpp ignores the window (Mistral v0.1 loads as
                                   # plain llama, which has no SWA: full cache on every layer)
    hybrid: Hybrid | None = None   # recurrent/hybrid layer layout (hybrid.py); None = every layer attention
    dense: Dense | None = None     # a non-llama dense block (dense.py: OLMo, Phi, GPT-NeoX, ...); None = llama's
    indexer: Indexer | None = None  # DeepSeek-V3.2 / GLM-5 DSA lightning indexer (moe_decoders.py)
    gemma4: Gemma4 | None = None   # Gemma 4 block (gemma4.py)
    gemma3n: Gemma3n | None = None  # Gemma 3n block (gemma3n.py)
    hrm: Hrm | None = None         # HRM-Text's cycled L/H stacks (hrm_text.py)
    mimo_v2: MimoV2 | None = None  # MiMo-V2-Flash block (mimo_v2.py)
    laguna: Laguna | None = None   # Laguna block (laguna.py)
    dots3: Dots3 | None = None     # dots3 note text block: MLA per layer kind, DSA indexer, SWA (dots3.py)
    hy_v4: HyV4 | None = None      # HY V4 block: MLA + DSA, gate, sinks, hyper-connections (hy_v4.py)
    deepseek_v4: DeepseekV4 | None = None  # DeepSeek-V4 block: compressed attention, mHC (deepseek_v4.py)
    kv_layout: tuple[tuple[int, int], ...] = ()  # per layer (n_kv_heads, head_dim) where layers differ;
                                                 # (0, 0) = no cache of its own; () = every layer the same
    vision_params: int = 0         # vision tower + projector of a multimodal checkpoint (not in the total)
    rope_freqs: bool = False       # Llama 3.1 rope scaling: GGUF stores `rope_freqs.weight` (head_dim/2 f32)
    rope_factors: bool = False     # LongRoPE (MiniCPM3): GGUF stores rope_factors_long / _short (n_rot/2 f32 each)
    stated_params: int = 0         # quick mode: the count the user gave ("7B"); 0 = none given
    gguf_unsupported: str = ""     # why llama.cpp can't run this model (its converter does not register the
                                   # HF class, or it loads it differently); "" = GGUF rows are planned
    source: str = "config"         # "config" | "gguf" | "param_count" | "preset"
    # no model id or file is known (a bare parameter count, a pasted config without _name_or_path):
    # commands carry a placeholder the user fills instead of `name`
    anonymous: bool = False
    notes: tuple[str, ...] = field(default=(), compare=False)

    # ---- constructors (implemented in loaders.py to keep this module short) ----
    @classmethod
    def from_config(cls, cfg: Any, name: str = "") -> "Architecture":
        from .loaders import architecture_from_config
        return architecture_from_config(cfg, name)

    @classmethod
    def from_gguf_metadata(cls, meta: Any, name: str = "") -> "Architecture":
        from .loaders import architecture_from_gguf_metadata
        return architecture_from_gguf_metadata(meta, name)

    @classmethod
    def from_param_count(cls, count: Any, name: str = "") -> "Architecture":
        from .param_count import architecture_from_param_count
        return architecture_from_param_count(count, name)

    # ---- derived sizes ----
    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """n_embd_k_gqa = n_embd_v_gqa = n_kv_heads × head_dim (llama-hparams.cpp)."""
        return self.n_kv_heads * self.head_dim

    @property
    def n_gqa(self) -> int:
        """llama_hparams::n_gqa() = n_head / n_head_kv (integer division)."""
        return self.n_heads // self.n_kv_heads

    @property
    def kv_layers(self) -> int:
        """Layers with a KV cache: all, or a hybrid's attention layers only."""
        return len(self.hybrid.attention_layers) if self.hybrid else self.n_layers

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 1

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def mla_kv_dim(self) -> int:
        """MLA cache row per layer per token: the latent c_kv plus the shared rope key.

        llama.cpp: n_embd_k_gqa = n_embd_head_k × n_head_kv = (kv_lora_rank + n_rot) × 1 (the
        converter writes key_length = kv_lora_rank + qk_rope_head_dim and head_count_kv = 1).
        """
        return self.kv_lora_rank + self.qk_rope_head_dim

    def is_moe_layer(self, i: int) -> bool:
        if self.hybrid is not None:
            return self.hybrid.ffns[i] == "moe"
        return self.is_moe and i not in self.dense_layers

    def tensors(self) -> list[TensorSpec]:
        """The weight tensors of the forward pass, as GGUF names them: (name, ggml shape, n_params).
        What llama.cpp loads; MTP layers are not in it (see gguf_tensors). Cached per object."""
        return list(self._tensors)

    def gguf_tensors(self) -> list[TensorSpec]:
        """Every tensor the converted GGUF file holds: tensors() plus, where the converter keeps
        them (mtp_in_gguf), the MTP blocks blk.<n_layers + k>.* after the main layers."""
        return list(self._tensors + self._mtp_tensors)

    @property
    def n_layers_all(self) -> int:
        """The GGUF's block_count, llama.cpp's hparams.n_layer_all: main layers + MTP layers in the file."""
        return self.n_layers + (self.n_nextn_layers if self.mtp_in_gguf else 0)

    @cached_property
    def _tensors(self) -> tuple[TensorSpec, ...]:
        out: list[TensorSpec] = []
        add = _adder(out)
        if self.arch == "kimi-linear":   # a hybrid whose attention layers are MLA
            kimi_linear_tensors(self, add)
            return tuple(out)
        if self.hybrid is not None:
            hybrid_tensors(self, add)
            return tuple(out)
        if self.dense is not None:
            dense_tensors(self, add)
            return tuple(out)
        if self.gemma4 is not None:
            gemma4_tensors(self, add)
            return tuple(out)
        if self.gemma3n is not None:
            gemma3n_tensors(self, add)
            return tuple(out)
        if self.hrm is not None:
            hrm_text_tensors(self, add)
            return tuple(out)
        if self.mimo_v2 is not None:
            mimo_v2_tensors(self, add)
            return tuple(out)
        if self.laguna is not None:
            laguna_tensors(self, add)
            return tuple(out)
        if self.dots3 is not None:
            dots3_tensors(self, add)
            return tuple(out)
        if self.hy_v4 is not None:
            hy_v4_tensors(self, add)
            return tuple(out)
        if self.deepseek_v4 is not None:
            deepseek_v4_tensors(self, add)
            return tuple(out)
        H, V = self.hidden_size, self.vocab_size
        add("token_embd.weight", H, V)
        add("output_norm.weight", H)
        if not self.tie_word_embeddings:
            add("output.weight", H, V)
        if self.rope_freqs:
            add("rope_freqs.weight", self.head_dim // 2)
        if self.rope_factors:
            add("rope_factors_long.weight", self.qk_rope_head_dim // 2)
            add("rope_factors_short.weight", self.qk_rope_head_dim // 2)
        for i in range(self.n_layers):
            self._add_layer(add, i)
        return tuple(out)

    def _add_layer(self, add: Any, i: int) -> None:
        """Block i's tensors (a main layer, or an MTP layer i >= n_layers: same decoder block)."""
        H = self.hidden_size
        p = f"blk.{i}."
        add(p + "attn_norm.weight", H)
        if self.is_mla:
            self._add_mla(add, p)
            if self.indexer is not None and i in self.indexer.layers:
                add_indexer_tensors(add, p, H, self.q_lora_rank, self.indexer)
        elif self.fused_qkv:
            add(p + "attn_qkv.weight", H, self.q_dim + 2 * self.kv_dim)
        else:
            add_qkv_projections(add, p, H, self.q_dim, self.kv_dim)
        if self.qkv_bias or self.o_bias:
            add(p + "attn_q.bias", self.q_dim)
            add(p + "attn_k.bias", self.kv_dim)
            add(p + "attn_v.bias", self.kv_dim)
        if self.qk_norm_full:   # modeling_minimax_m2.py: q_norm(n_heads·head_dim), k_norm(n_kv_heads·head_dim)
            add(p + "attn_q_norm.weight", self.q_dim)
            add(p + "attn_k_norm.weight", self.kv_dim)
        elif self.qk_norm:
            add_qk_norms(add, p, self.head_dim)
        if self.attn_gate:
            add(p + "attn_gate.weight", H, self.q_dim)
        if self.sub_norms:
            add(p + "attn_sub_norm.weight", H)
        if not self.is_mla:
            add(p + "attn_output.weight", self.q_dim, H)
        if self.o_bias:
            add(p + "attn_output.bias", H)
        if self.attn_sinks:
            add(p + "attn_sinks.weight", self.n_heads)
        if self.extra_norms:
            add(p + "post_attention_norm.weight", H)
        # gpt-oss (models/openai-moe.cpp) and GLM-4.5 (models/glm4-moe.cpp; gguf-py lists ATTN_POST_NORM,
        # not FFN_NORM, for GLM4_MOE): the pre-FFN norm is LLM_TENSOR_ATTN_POST_NORM
        if not self.parallel_ffn:
            add(p + ("post_attention_norm.weight" if self.arch in ("gpt-oss", "glm4moe") else "ffn_norm.weight"), H)
        if self.is_moe_layer(i):
            E, F = self.n_experts, self.moe_intermediate_size
            add(p + "ffn_gate_inp.weight", H, E)
            if self.fused_moe_gate_up:
                add(p + "ffn_gate_up_exps.weight", H, 2 * F, E)
            else:
                add(p + "ffn_gate_exps.weight", H, F, E)
                add(p + "ffn_up_exps.weight", H, F, E)
            add(p + "ffn_down_exps.weight", F, H, E)
            if self.moe_bias:  # models/openai-moe.cpp load_arch_tensors
                add(p + "ffn_gate_inp.bias", E)
                add(p + "ffn_gate_exps.bias", F, E)
                add(p + "ffn_up_exps.bias", F, E)
                add(p + "ffn_down_exps.bias", H, E)
            if self.expert_bias:
                # ERNIE 4.5 keeps e_score_correction_bias as (1, E): {E, 1} in the GGUF
                # HY V3's checkpoint names it e_score_correction_bias (no .bias suffix): the converter writes
                # blk.N.exp_probs_b (seen on a converted tiny model)
                name = "exp_probs_b" if self.arch == "hy_v3" else "exp_probs_b.bias"
                add(p + name, *((E, 1) if self.arch == "ernie4_5-moe" else (E,)))
            S = self.shared_expert_intermediate_size
            if S:
                if self.shared_expert_gate:
                    add(p + "ffn_gate_inp_shexp.weight", H)
                if self.fused_moe_gate_up:
                    add(p + "ffn_up_shexp.weight", H, 2 * S)
                else:
                    add(p + "ffn_gate_shexp.weight", H, S)
                    add(p + "ffn_up_shexp.weight", H, S)
                add(p + "ffn_down_shexp.weight", S, H)
        elif self.fused_qkv:
            add(p + "ffn_up.weight", H, 2 * self.intermediate_size)
            add(p + "ffn_down.weight", self.intermediate_size, H)
        else:
            F = self.intermediate_size
            add(p + "ffn_gate.weight", H, F)
            add(p + "ffn_up.weight", H, F)
            add(p + "ffn_down.weight", F, H)
            if self.sub_norms:
                add(p + "ffn_sub_norm.weight", F)
            if self.mlp_bias:
                add(p + "ffn_gate.bias", F)
                add(p + "ffn_up.bias", F)
                add(p + "ffn_down.bias", H)
        if self.extra_norms:
            add(p + "post_ffw_norm.weight", H)

    def _add_mla(self, add: Any, p: str) -> None:
        """MLA attention as convert_hf_to_gguf.py (DeepseekV2Model) writes it: kv_b_proj is split
        per head into attn_k_b (k_nope part, transposed) and attn_v_b, for the absorbed-MLA path.
        Shapes checked against a converted tiny DeepSeek-V3 (ggml order, ne0 first).
        """
        H, nh = self.hidden_size, self.n_heads
        rope, kvr = self.qk_rope_head_dim, self.kv_lora_rank
        nope = self.head_dim - rope
        if self.q_lora_rank:
            add(p + "attn_q_a.weight", H, self.q_lora_rank)
            add(p + "attn_q_a_norm.weight", self.q_lora_rank)
            add(p + "attn_q_b.weight", self.q_lora_rank, self.q_dim)
        else:
            add(p + "attn_q.weight", H, self.q_dim)
        add(p + "attn_kv_a_mqa.weight", H, kvr + rope)
        add(p + "attn_kv_a_norm.weight", kvr)
        if self.mla_legacy:  # llama-model.cpp / models/deepseek2.cpp: "only old legacy GGUF files"
            add(p + "attn_kv_b.weight", kvr, nh * (nope + self.v_head_dim))
        else:
            add(p + "attn_k_b.weight", nope, kvr, nh)
            add(p + "attn_v_b.weight", kvr, self.v_head_dim, nh)
        add(p + "attn_output.weight", nh * self.v_head_dim, H)

    @cached_property
    def _mtp_tensors(self) -> tuple[TensorSpec, ...]:
        """The MTP (NextN) blocks as convert_hf_to_gguf.py writes them and llama.cpp declares them
        (models/glm4-moe.cpp, models/qwen3next.cpp load_arch_tensors, TENSOR_SKIP unless an MTP
        context is loaded): a full decoder block (Qwen3-Next: a full-attention MoE block; GLM-4.5:
        an MoE block) plus nextn.eh_proj {2·n_embd, n_embd}, nextn.enorm, nextn.hnorm,
        nextn.shared_head_norm, and GLM-4.5's own nextn.embed_tokens / nextn.shared_head_head
        {n_embd, n_vocab} (its checkpoints carry model.layers.<n>.embed_tokens and
        shared_head.head; Qwen3-Next's mtp.* has neither and uses the main ones)."""
        if not self.mtp_in_gguf:
            return ()
        out: list[TensorSpec] = []
        add = _adder(out)
        H, V = self.hidden_size, self.vocab_size
        for i in range(self.n_layers, self.n_layers_all):
            if self.hybrid is not None:   # Qwen3.5 dense: the MTP block has a dense MLP
                hybrid_layer(self, add, i, "attn", "dense" if self.arch == "qwen35" else "moe")
            else:
                self._add_layer(add, i)
            p = f"blk.{i}.nextn."
            add(p + "eh_proj.weight", 2 * H, H)
            if self.hybrid is None:
                add(p + "embed_tokens.weight", H, V)
            add(p + "enorm.weight", H)
            add(p + "hnorm.weight", H)
            if self.hybrid is None:
                add(p + "shared_head_head.weight", H, V)
            add(p + "shared_head_norm.weight", H)
        return tuple(out)

    @cached_property
    def mtp_params(self) -> int:
        """Multi-token-prediction layers: in the HF checkpoint, not in the forward pass (transformers
        builds neither DeepSeek-V3's layer 61 nor Qwen3-Next's `mtp.*`).

        Per layer: a full decoder layer (DeepSeek-V3: an MoE layer; Qwen3-Next: a full-attention MoE
        layer), eh_proj (2·hidden → hidden) and enorm, hnorm, shared_head.norm (hidden each).
        DeepSeek-V3 (README_WEIGHTS.md) also stores its own embed_tokens and shared_head.head
        (vocab × hidden each); Qwen3-Next's MTP shares the main embedding and head
        (llama.cpp models/qwen3next.cpp: nextn.embed_tokens / shared_head_head TENSOR_NOT_REQUIRED).
        """
        if not self.n_nextn_layers:
            return 0
        attn = [i for i in range(self.n_layers) if self.hybrid is None or i in self.hybrid.attention_layers]
        moe_layer = next((self.layer_params[i] for i in attn if self.is_moe_layer(i)), self.layer_params[attn[-1]])
        H = self.hidden_size
        own_vocab = 0 if self.hybrid is not None else 2 * self.vocab_size * H
        return self.n_nextn_layers * (moe_layer + own_vocab + 3 * H + 2 * H * H)

    @property
    def mtp_in_gguf(self) -> bool:
        """Whether convert_hf_to_gguf.py writes the MTP layers into the GGUF (as blk.<n_layers>.*):
        Qwen3-Next and GLM-4.5 yes (_QwenMtpMixin / conversion/glm.py add them to block_count unless
        --no-mtp), DeepSeek-V3 no (DeepseekV2Model.skip_mtp); DeepSeek-V3.2 and GLM-5 yes
        (conversion/deepseek.py DeepseekV32Model, conversion/glm.py GlmMoeDsaModel: skip_mtp = False).
        llama.cpp loads them only for a draft
        (MTP) context (TENSOR_SKIP otherwise), so they are in the file size, not the model buffer."""
        return bool(self.n_nextn_layers) and self.arch in ("qwen3next", "qwen35", "qwen35moe", "glm4moe",
                                                           "deepseek32", "glm-dsa")

    @cached_property
    def total_params(self) -> int:
        """Sum of all tensors = the HF safetensors total (rope_freqs and rope_factors are GGUF-only, excluded),
        plus the per-layer scalars a dense model's converter writes as metadata (dense.py checkpoint_only)."""
        extra = self.dense.checkpoint_only * self.n_layers if self.dense else 0
        if self.gemma3n is not None:   # GGUF-only parameters (padding, the shared layers' K/V)
            extra -= sum(gemma3n_gguf_only(self).values())
        return extra + sum(n for name, _, n in self._tensors if not name.startswith(("rope_freqs", "rope_factors")))

    @cached_property
    def expert_params(self) -> int:
        """Parameters in routed experts (all of them)."""
        return sum(n for name, _, n in self._tensors if "_exps." in name)

    @cached_property
    def active_params(self) -> int:
        """Parameters used per token: total minus the routed experts not selected (top-k of E)."""
        if not self.is_moe:
            return self.total_params
        unused = self.expert_params * (self.n_experts - self.n_experts_per_tok) // self.n_experts
        return self.total_params - unused

    @cached_property
    def embedding_params(self) -> int:
        return self.hidden_size * self.vocab_size

    @cached_property
    def layer_params(self) -> list[int]:
        per = [self.dense.checkpoint_only if self.dense else 0] * self.n_layers
        if self.gemma3n is not None:
            for i, n in gemma3n_gguf_only(self).items():
                if i is not None:
                    per[i] -= n
        for name, _, n in self._tensors:
            i = layer_index(name)
            if i is not None:
                per[i] += n
        return per

    def to_dict(self) -> dict[str, Any]:
        # A model without attention layers (Mamba) has no heads: its stand-in values are not shown.
        attention = self.kv_layers > 0
        return {
            "name": self.name,
            "arch": self.arch,
            "total_params": self.total_params,
            "active_params": self.active_params,
            "hidden_size": self.hidden_size,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads if attention else None,
            "n_kv_heads": self.n_kv_heads if attention else None,
            "head_dim": self.head_dim if attention else None,
            "intermediate_size": self.intermediate_size,
            "vocab_size": self.vocab_size,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "n_experts": self.n_experts,
            "n_experts_per_tok": self.n_experts_per_tok,
            "kv_lora_rank": self.kv_lora_rank or None,
            "mtp_params": self.mtp_params or None,
            "mtp_in_gguf": self.mtp_in_gguf,
            "vision_params": self.vision_params or None,
            "kv_layers": self.kv_layers,
            "recurrent_layers": len(self.hybrid.recurrent_layers) if self.hybrid else 0,
            "sliding_window": self.sliding_window,
            "stated_params": self.stated_params or None,
            "source": self.source,
            "notes": list(self.notes),
        }


def _adder(out: list[TensorSpec]) -> Any:
    """add(name, *ggml_shape) appending (name, shape, n_params) to out."""
    def add(name: str, *shape: int) -> None:
        n = 1
        for d in shape:
            n *= d
        out.append((name, tuple(shape), n))
    return add


def layer_index(tensor_name: str) -> int | None:
    """`blk.12.attn_q.weight` -> 12; non-layer tensors -> None."""
    if not tensor_name.startswith("blk."):
        return None
    end = tensor_name.index(".", 4)
    return int(tensor_name[4:end])
