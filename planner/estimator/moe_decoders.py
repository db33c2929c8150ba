"""Config readers for MoE decoders whose layouts the plain llama-like reading gets wrong: ERNIE 4.5
MoE (its own expert keys, a MoE layer range) and the DeepSeek Sparse Attention models, DeepSeek-V3.2
and GLM-5 (MLA plus a lightning indexer per layer).

Each reader returns the Architecture fields that differ from the plain reading. Layouts as
transformers builds them (modeling_ernie4_5_moe.py, modeling_deepseek_v32.py,
modeling_glm_moe_dsa.py) and as llama.cpp's converter writes and llama.cpp loads them
(conversion/ernie.py, conversion/deepseek.py DeepseekV32Model, conversion/glm.py GlmMoeDsaModel;
src/models/ernie4-5-moe.cpp, src/models/deepseek32.cpp, src/models/glm-dsa.cpp); checked against
converted tiny models by bench/moe_decoders_ground_truth.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .errors import EstimatorError
from .fields import _bool, _int
from .layouts import deepseek_fields

DSA_MODEL_TYPES = {"deepseek_v32": "deepseek32", "glm_moe_dsa": "glm-dsa"}
# Architectures read from config.json only: from GGUF metadata they are refused, not read as llama-like
GGUF_METADATA_UNREAD = {"ernie4_5-moe", *DSA_MODEL_TYPES.values()}


@dataclass(frozen=True)
class Indexer:
    """The DSA lightning indexer (DeepSeek-V3.2 §2.1): per layer wq_b (q_lora_rank → n_heads ×
    head_dim), wk (hidden → head_dim), a LayerNorm k_norm (weight and bias) and weights_proj
    (hidden → n_heads). `layers` are the layers that run their own indexer; GLM-5.2's "shared"
    layers (indexer_types) reuse the previous one's top-k and have none."""

    n_heads: int
    head_dim: int
    layers: tuple[int, ...]      # MTP blocks (index >= num_hidden_layers) included where they have one

    def cached_layers(self, n_layers: int) -> int:
        """Main layers with their own indexer: llama.cpp caches indexer keys for each of them."""
        return sum(1 for i in self.layers if i < n_layers)


def ernie_moe_fields(cfg: dict, layers: int, notes: list[str]) -> dict[str, Any]:
    """ERNIE 4.5 MoE (configuration_ernie4_5_moe.py, modeling_ernie4_5_moe.py).

    Experts are moe_num_experts, moe_k of them per token, moe_intermediate_size wide; a layer is MoE
    iff (i + 1) % moe_layer_interval == 0 and moe_layer_start_index <= i <= moe_layer_end_index
    (-1: the last layer), dense (intermediate_size) otherwise. The moe_num_shared_experts shared
    experts are one MLP of moe_num_shared_experts × moe_intermediate_size. The router carries
    e_score_correction_bias, a (1, E) parameter, that the converter writes as exp_probs_b.bias
    ({E, 1} in ggml order). Embeddings are tied by default (tie_word_embeddings=True).

    llama.cpp (src/models/ernie4-5-moe.cpp) makes layer il MoE iff il >= n_layer_dense_lead and
    (il + 1) % n_moe_layer_step == 0: it has no end index, so a config whose MoE range stops
    before the last layer cannot be loaded there.
    """
    if _bool(cfg, "use_bias", False):
        raise EstimatorError("use_bias", "true: no published ERNIE 4.5 MoE checkpoint sets it and the estimator "
                                         "does not model the biases, so it refuses rather than guess")
    experts = _int(cfg, "moe_num_experts", 64)
    top_k = _int(cfg, "moe_k", 6)
    if top_k > experts:
        raise EstimatorError("moe_k", f"{top_k} > moe_num_experts {experts}")
    moe_inter = _int(cfg, "moe_intermediate_size", 1536)
    shared = _int(cfg, "moe_num_shared_experts", 2, minimum=0)
    start = _int(cfg, "moe_layer_start_index", 1, minimum=0)
    step = _int(cfg, "moe_layer_interval", 1)
    end = cfg.get("moe_layer_end_index", -1)
    end = layers - 1 if end == -1 else _int(cfg, "moe_layer_end_index", minimum=0)
    moe = [i for i in range(layers) if (i + 1) % step == 0 and start <= i <= end]
    gguf_moe = [i for i in range(layers) if i >= start and (i + 1) % step == 0]
    unsupported = ""
    if moe != gguf_moe:
        unsupported = (f"llama.cpp has no moe_layer_end_index: it would load layers {sorted(set(gguf_moe) - set(moe))} "
                       "as MoE, which this checkpoint has as dense (src/models/ernie4-5-moe.cpp)")
    kv_heads = _int(cfg, "num_key_value_heads", _int(cfg, "num_attention_heads"))
    written = _int(cfg, "intermediate_size") // kv_heads
    if shared and moe and written != shared * moe_inter:
        # conversion/ernie.py writes expert_shared_feed_forward_length = intermediate_size //
        # num_key_value_heads and llama.cpp shapes the shared expert by it (measured: a tiny model
        # with 128 there and a 256-wide shared expert fails "tensor 'blk.1.ffn_gate_shexp.weight'
        # has wrong shape")
        unsupported = unsupported or (
            f"llama.cpp cannot load it: the converter writes the shared expert width as intermediate_size // "
            f"num_key_value_heads = {written}, the checkpoint's is moe_num_shared_experts × moe_intermediate_size = "
            f"{shared * moe_inter}")
    return {
        "arch": "ernie4_5-moe",
        "n_experts": experts,
        "n_experts_per_tok": top_k,
        "moe_intermediate_size": moe_inter,
        "shared_expert_intermediate_size": shared * moe_inter,
        "dense_layers": tuple(i for i in range(layers) if i not in moe),
        "expert_bias": True,
        "tie_word_embeddings": _bool(cfg, "tie_word_embeddings", True),
        "gguf_unsupported": unsupported,
    }


def dsa_fields(cfg: dict, model_type: str, layers: int, heads: int, notes: list[str]) -> dict[str, Any]:
    """DeepSeek-V3.2 / GLM-5 (configuration_deepseek_v32.py, configuration_glm_moe_dsa.py): the
    DeepSeek-V3 MLA + MoE layout (layouts.deepseek_fields) with the MLP kind of each layer from
    mlp_layer_types (default: first_k_dense_replace dense layers, then MoE) and a lightning indexer
    of index_n_heads × index_head_dim. llama.cpp's deepseek32 / glm-dsa graphs read the dense lead
    from leading_dense_block_count only (conversion/deepseek.py DeepseekV2Model.set_gguf_parameters),
    so another mlp_layer_types pattern is not loadable there.
    """
    if _bool(cfg, "attention_bias", False):
        raise EstimatorError("attention_bias", "true: no published checkpoint sets it and the estimator does not "
                                               "model the MLA biases, so it refuses rather than guess")
    if cfg.get("q_lora_rank") is None:
        raise EstimatorError("q_lora_rank", "is required: the DSA indexer projects from the query latent")
    fields = deepseek_fields(cfg, layers, heads, [])
    first_dense = len(fields["dense_layers"])
    kinds = cfg.get("mlp_layer_types")
    if kinds is None:
        dense = fields["dense_layers"]
    elif isinstance(kinds, list) and len(kinds) == layers and set(kinds) <= {"dense", "sparse"}:
        dense = tuple(i for i, kind in enumerate(kinds) if kind == "dense")
    else:
        raise EstimatorError("mlp_layer_types", f"must be a list of {layers} entries, each \"dense\" or \"sparse\"")
    kinds_idx = cfg.get("indexer_types")
    if kinds_idx is None or model_type != "glm_moe_dsa":   # DeepseekV32 builds an indexer on every layer
        full = tuple(range(layers))
    elif isinstance(kinds_idx, list) and len(kinds_idx) == layers and set(kinds_idx) <= {"full", "shared"}:
        full = tuple(i for i, kind in enumerate(kinds_idx) if kind == "full")
    else:
        raise EstimatorError("indexer_types", f"must be a list of {layers} entries, each \"full\" or \"shared\"")
    unsupported = ""
    if model_type == "deepseek_v32":
        # conversion/deepseek.py (DeepseekV2Model.set_gguf_parameters) writes no expert_gating_func and
        # llama.cpp requires it for deepseek32 (measured with a converted tiny model)
        unsupported = ("llama.cpp (llama-cpp-python 0.3.36) cannot load the vendored converter's DeepSeek-V3.2 GGUF: "
                       "\"key not found in model: deepseek32.expert_gating_func\"")
    if dense != tuple(range(first_dense)):
        unsupported = unsupported or (f"llama.cpp reads only a leading dense block count (first_k_dense_replace {first_dense}); "
                       f"this config's dense layers are {list(dense)} (mlp_layer_types)")
    n_mtp = fields["n_nextn_layers"]
    if n_mtp:
        notes.append(f"{n_mtp} multi-token-prediction layer(s) (num_nextn_predict_layers): transformers does not "
                     "build them (not in the total, counted in mtp_params); convert_hf_to_gguf.py keeps them in the "
                     "GGUF (skip_mtp = False), llama.cpp skips them on load (in the file size, not the model buffer)")
    moe = [i for i in range(layers) if i not in dense]
    if n_mtp and moe and moe[0] in full:
        # the MTP block is a copy of a MoE decoder layer (DeepSeek-V3.2's inference model.py: an MTP
        # block is a Block, indexer included); GLM-5.2's with "shared" layers is counted without one
        full += tuple(range(layers, layers + n_mtp))
    notes.append("DSA lightning indexer: llama.cpp caches its keys (index_head_dim per token) beside the MLA latent")
    return {
        **fields,
        "arch": DSA_MODEL_TYPES[model_type],
        "dense_layers": dense,
        "indexer": Indexer(_int(cfg, "index_n_heads"), _int(cfg, "index_head_dim"), full),
        "gguf_unsupported": unsupported,
    }


def add_indexer_tensors(add: Callable[..., None], p: str, hidden: int, q_lora_rank: int, indexer: Indexer) -> None:
    """A layer's indexer as convert_hf_to_gguf.py writes it (ggml order, ne0 first)."""
    add(p + "indexer.attn_q_b.weight", q_lora_rank, indexer.n_heads * indexer.head_dim)
    add(p + "indexer.attn_k.weight", hidden, indexer.head_dim)
    add(p + "indexer.k_norm.weight", indexer.head_dim)
    add(p + "indexer.k_norm.bias", indexer.head_dim)
    add(p + "indexer.proj.weight", hidden, indexer.n_heads)
