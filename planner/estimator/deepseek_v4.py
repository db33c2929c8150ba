"""DeepSeek-V4 (transformers model_type "deepseek_v4", llama.cpp architecture "deepseek4").

transformers 5.23 (models/deepseek_v4/configuration_deepseek_v4.py, modeling_deepseek_v4.py):
- DeepseekV4Config.__post_init__: `layer_types` per layer, one of sliding_attention /
  compressed_sparse_attention (CSA) / heavily_compressed_attention (HCA); default two HCA layers, then CSA and
  HCA alternating; the published spelling `compress_ratios` (0 / 4 / 128 per layer) maps to them.
  `compress_rates` per type (default CSA 4, HCA 128; `compress_rate_csa` / `compress_rate_hca` fold in).
  `mlp_layer_types`: the first `num_hash_layers` (default 3) hash_moe, moe after.
- DeepseekV4Attention: one shared K=V head of head_dim: q_a_proj (hidden → q_lora_rank), q_a_norm, q_b_proj
  (q_lora_rank → heads × head_dim), kv_proj (hidden → head_dim), kv_norm, the grouped output projection o_a_proj
  (o_groups blocks of heads × head_dim / o_groups → o_lora_rank each, one weight of o_groups × o_lora_rank rows)
  and o_b_proj (o_groups × o_lora_rank → hidden), one sink per head. A CSA/HCA layer adds a compressor:
  kv_proj and gate_proj (hidden → w), position_bias (rate × w), kv_norm (head_dim), with w = head_dim for HCA
  and 2 × head_dim for CSA (two overlapping series); CSA's compressor also holds the lightning indexer:
  the same four at index_head_dim, q_b_proj (q_lora_rank → index_n_heads × index_head_dim) and
  weights_proj (hidden → index_n_heads).
- DeepseekV4SparseMoeBlock: a router weight (experts × hidden) with e_score_correction_bias (a persistent
  buffer) on moe layers or tid2eid (vocab × top-k token → expert table, a persistent buffer) on hash_moe
  layers; experts of moe_intermediate_size and one shared MLP of moe_intermediate_size (n_shared_experts does
  not widen it: `intermediate_size` is mapped to moe_intermediate_size).
- DeepseekV4HyperConnection (mHC, attn_hc and ffn_hc per layer): fn ((2 + hc_mult) × hc_mult rows of
  hc_mult × hidden), base ((2 + hc_mult) × hc_mult), scale (3); the model's hc_head: hc_fn (hc_mult rows of
  hc_mult × hidden), hc_base (hc_mult), hc_scale (1). Two norms per layer; lm_head tied only with
  tie_word_embeddings. The checkpoint's MTP layer (num_nextn_predict_layers) is not built.

GGUF (conversion/deepseek.py DeepseekV4Model, gguf-py MODEL_ARCH.DEEPSEEK4): the names below, checked on a
converted tiny model. The converter reads the published checkpoint only and fixes the file's types itself
(GGUF_REFUSAL), so no GGUF rows are planned; llama.cpp's caches for the loaded tiny model are modelled
(deepseek_v4_kv_cache_bytes, deepseek_v4_state_bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import EstimatorError
from .ffn_tensors import add_gated_ffn, add_routed_experts
from .fields import _bool, _int

DEEPSEEK_V4_MODEL_TYPES = {"deepseek_v4": "deepseek4"}
SLIDING, CSA, HCA = "sliding_attention", "compressed_sparse_attention", "heavily_compressed_attention"
_RATIO_TO_TYPE = {0: SLIDING, 4: CSA, 128: HCA}   # configuration_deepseek_v4.py _COMPRESS_RATIO_TO_LAYER_TYPE
_TYPES_KEY = "deepseek_v4_layer_types"

# Measured with a tiny random-weight DeepSeek-V4 (4 layers, hidden 256) saved by transformers 5.23 and the
# convert_hf_to_gguf.py of llama-cpp-python 0.3.36: as saved it fails ("KeyError: 'num_hash_layers'", then
# "Missing hash routing tensor layers.0.ffn.gate.tid2eid", then "Missing routed expert tensors for
# layers.0.ffn.experts.0.w1.weight"); in the published layout (bench/llama_cpp_ground_truth.py
# _deepseek_v4_published_layout) it converts, names and shapes as deepseek_v4_tensors, but with the experts
# repacked to MXFP4, the 16-bit matrices kept BF16 and the file type MOSTLY_MXFP4_MOE whatever --outtype asks;
# llama_model_quantize to Q4_K_M then fails: "requantizing from type mxfp4 is disabled".
GGUF_REFUSAL = ("convert_hf_to_gguf.py (DeepseekV4Model) converts only the published DeepSeek-V4 checkpoint (its "
                "config keys num_hash_layers / compress_ratios / qk_rope_head_dim, its layers.* names, its routed "
                "experts as FP4 weight + scale pairs) and always writes the experts as MXFP4 and 16-bit matrices "
                "as BF16 (file type MXFP4_MOE, whatever the type asked for), and llama-quantize refuses to "
                "requantize that file (\"requantizing from type mxfp4 is disabled\"), so the F16 / Q* files "
                "planned here are not what can be made")


@dataclass(frozen=True)
class DeepseekV4:
    layer_types: tuple[str, ...]   # per layer: sliding_attention / compressed_sparse_attention / heavily_...
    hash_layers: tuple[int, ...]   # hash_moe layers (tid2eid table instead of the router bias)
    csa_rate: int
    hca_rate: int
    q_lora_rank: int
    o_groups: int
    o_lora_rank: int
    index_heads: int
    index_head_dim: int
    hc_mult: int

    def compressor_width(self, i: int, head_dim: int) -> int:
        """The compressor's kv/gate width of layer i: two series on CSA, one on HCA, none on sliding layers."""
        return {SLIDING: 0, CSA: 2 * head_dim, HCA: head_dim}[self.layer_types[i]]

    def rate(self, i: int) -> int:
        return {SLIDING: 0, CSA: self.csa_rate, HCA: self.hca_rate}[self.layer_types[i]]

    def llama_cpp_refusal(self, arch: Any) -> str:
        """Why llama.cpp 0.3.36 would not load this layout ("" when it does): its loader takes compression
        ratios 0, 4 and 128 only and asserts n_head % o_groups == 0 (llama_model_deepseek4), and a converted
        tiny model with head_dim 64 failed a reshape assert building its graph (head_dim 512 loads)."""
        if {self.csa_rate, self.hca_rate} - {4, 128} or self.csa_rate != 4:
            return (f"llama.cpp loads compression rates CSA 4 and HCA 128 only, not {self.csa_rate} / "
                    f"{self.hca_rate}")
        if arch.n_heads % self.o_groups:
            return f"llama.cpp asserts num_attention_heads % o_groups == 0 ({arch.n_heads} % {self.o_groups})"
        if arch.head_dim != 512:
            return (f"llama.cpp's DeepSeek-V4 graph was measured to load with head_dim 512 only (head_dim 64 "
                    f"failed an assert); this config has {arch.head_dim}")
        return ""


def deepseek_v4_config(cfg: dict) -> dict:
    """DeepseekV4Config's defaults for the fields the shared reader takes (the shared MLP's width is
    moe_intermediate_size: the config maps intermediate_size onto it)."""
    out = {"vocab_size": 129280, "hidden_size": 4096, "moe_intermediate_size": 2048, "num_hidden_layers": 43,
           "num_attention_heads": 64, "num_key_value_heads": 1, "head_dim": 512, "max_position_embeddings": 1048576,
           "n_routed_experts": 256, "num_experts_per_tok": 6, "sliding_window": 128}
    out.update({k: v for k, v in cfg.items() if v is not None or k not in out})
    if cfg.get("num_local_experts") is not None and cfg.get("n_routed_experts") is None:   # attribute_map
        out["n_routed_experts"] = cfg["num_local_experts"]
    if cfg.get("moe_intermediate_size") is None and cfg.get("intermediate_size") is not None:   # attribute_map
        out["moe_intermediate_size"] = cfg["intermediate_size"]
    out["intermediate_size"] = out["moe_intermediate_size"]
    # its layer types are not the sliding/full ones the shared sliding-window reader knows: read here only
    out[_TYPES_KEY] = out.pop("layer_types", None)
    return out


def _layer_types(cfg: dict, layers: int) -> list[str]:
    """layer_types as DeepseekV4Config.__post_init__ settles them: given, else from compress_ratios, else default."""
    types = cfg.get(_TYPES_KEY, cfg.get("layer_types"))
    if types is None and cfg.get("compress_ratios") is not None:
        ratios = cfg["compress_ratios"]
        if (not isinstance(ratios, list) or len(ratios) < layers
                or any(r not in _RATIO_TO_TYPE or isinstance(r, bool) for r in ratios)):
            raise EstimatorError("compress_ratios", f"deepseek_v4: must be at least {layers} entries of 0, 4 or 128")
        types = [_RATIO_TO_TYPE[r] for r in ratios[:layers]]
    if types is None:
        types = [HCA] * min(layers, 2) + [CSA if i % 2 else HCA for i in range(max(layers - 2, 0))]
    if not isinstance(types, list) or len(types) != layers or not set(types) <= {SLIDING, CSA, HCA}:
        raise EstimatorError("layer_types", f"deepseek_v4: must be {layers} entries of {SLIDING} / {CSA} / {HCA}")
    return types


def _mlp_layer_types(cfg: dict, layers: int) -> list[str]:
    mlp = cfg.get("mlp_layer_types")
    if mlp is None:
        hashed = _int(cfg, "num_hash_layers", 3, minimum=0)
        mlp = ["hash_moe"] * min(layers, hashed) + ["moe"] * max(0, layers - hashed)
    if not isinstance(mlp, list) or len(mlp) != layers or not set(mlp) <= {"hash_moe", "moe"}:
        raise EstimatorError("mlp_layer_types", f"deepseek_v4: must be {layers} entries of hash_moe / moe")
    return mlp


def _compress_rates(cfg: dict) -> tuple[int, int]:
    rates = cfg.get("compress_rates")
    if rates is None:
        rates = {CSA: 4, HCA: 128}
    if not isinstance(rates, dict):
        raise EstimatorError("compress_rates", f"deepseek_v4: must be an object with {CSA} and {HCA}")
    rates = {**rates}
    for key, legacy in ((CSA, "compress_rate_csa"), (HCA, "compress_rate_hca")):
        if cfg.get(legacy) is not None:
            rates[key] = cfg[legacy]
    csa = _int({"compress_rates": rates.get(CSA)}, "compress_rates")
    hca = _int({"compress_rates": rates.get(HCA)}, "compress_rates")
    return csa, hca


def deepseek_v4_fields(cfg: dict, layers: int, heads: int, head_dim: int, notes: list[str]) -> dict[str, Any]:
    """Architecture fields of a DeepSeek-V4 config.json, read as DeepseekV4Config.__post_init__ does."""
    types = _layer_types(cfg, layers)
    mlp = _mlp_layer_types(cfg, layers)
    csa_rate, hca_rate = _compress_rates(cfg)
    experts = _int(cfg, "n_routed_experts")
    top_k = _int(cfg, "num_experts_per_tok")
    if top_k > experts:
        raise EstimatorError("num_experts_per_tok", f"deepseek_v4: {top_k} > number of experts {experts}")
    o_groups = _int(cfg, "o_groups", 8)
    if (heads * head_dim) % o_groups:
        raise EstimatorError("o_groups", f"deepseek_v4: {o_groups} does not divide num_attention_heads × head_dim "
                                         f"({heads} × {head_dim})")
    rope = cfg.get("qk_rope_head_dim")
    if rope is None:
        factor = cfg.get("partial_rotary_factor")
        rope = int(head_dim * (factor if isinstance(factor, (int, float)) and not isinstance(factor, bool)
                               else 64 / 512))
    m = DeepseekV4(layer_types=tuple(types), hash_layers=tuple(i for i, t in enumerate(mlp) if t == "hash_moe"),
                   csa_rate=csa_rate, hca_rate=hca_rate, q_lora_rank=_int(cfg, "q_lora_rank", 1024),
                   o_groups=o_groups, o_lora_rank=_int(cfg, "o_lora_rank", 1024),
                   index_heads=_int(cfg, "index_n_heads", 64), index_head_dim=_int(cfg, "index_head_dim", 128),
                   hc_mult=_int(cfg, "hc_mult", 4))
    moe_inter = _int(cfg, "moe_intermediate_size")
    mtp = _int(cfg, "num_nextn_predict_layers", 1, minimum=0)
    notes[:] = [n for n in notes if not n.startswith("llama.cpp loads this model without sliding-window")]
    if mtp:
        notes.append(f"{mtp} MTP layer(s) (num_nextn_predict_layers) of the published checkpoint: transformers "
                     "does not build them, so they are not counted here")
    return {
        "deepseek_v4": m, "n_experts": experts, "n_experts_per_tok": top_k, "moe_intermediate_size": moe_inter,
        "shared_expert_intermediate_size": moe_inter, "expert_bias": True, "dense_layers": (),
        "q_lora_rank": m.q_lora_rank, "qk_rope_head_dim": rope, "attn_sinks": True,
        "qkv_bias": False, "o_bias": False, "mlp_bias": False,
        "sliding_window": _int(cfg, "sliding_window", 128), "swa_layers": (), "swa_in_llama_cpp": True,
        "gguf_unsupported": GGUF_REFUSAL,
        "tie_word_embeddings": _bool(cfg, "tie_word_embeddings", False),
    }


def deepseek_v4_tensors(arch: Any, add: Any) -> None:
    """The weight tensors (and the two persistent routing buffers) in llama.cpp names (MODEL_ARCH.DEEPSEEK4)
    and ggml order."""
    m: DeepseekV4 = arch.deepseek_v4
    H, V, D, n = arch.hidden_size, arch.vocab_size, arch.head_dim, m.hc_mult
    hc = (2 + n) * n   # mHC projection rows: pre (n), post (n), comb (n × n)
    add("token_embd.weight", H, V)
    add("output_norm.weight", H)
    if not arch.tie_word_embeddings:
        add("output.weight", H, V)
    add("output_hc_fn.weight", n * H, n)
    add("output_hc_base.weight", n)
    add("output_hc_scale.weight", 1)
    for i in range(arch.n_layers):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", H)
        add(p + "attn_sinks.weight", arch.n_heads)
        add(p + "attn_q_a.weight", H, m.q_lora_rank)
        add(p + "attn_q_a_norm.weight", m.q_lora_rank)
        add(p + "attn_q_b.weight", m.q_lora_rank, arch.n_heads * D)
        add(p + "attn_kv.weight", H, D)
        add(p + "attn_kv_a_norm.weight", D)
        add(p + "attn_output_a.weight", arch.n_heads * D // m.o_groups, m.o_groups * m.o_lora_rank)
        add(p + "attn_output_b.weight", m.o_groups * m.o_lora_rank, H)
        w = m.compressor_width(i, D)
        if w:
            add(p + "attn_compressor_kv.weight", H, w)
            add(p + "attn_compressor_gate.weight", H, w)
            add(p + "attn_compressor_ape.weight", w, m.rate(i))
            add(p + "attn_compressor_norm.weight", D)
        if m.layer_types[i] == CSA:   # the lightning indexer and its own compressor (two series)
            iw = 2 * m.index_head_dim
            add(p + "indexer.attn_q_b.weight", m.q_lora_rank, m.index_heads * m.index_head_dim)
            add(p + "indexer.proj.weight", H, m.index_heads)
            add(p + "indexer_compressor_kv.weight", H, iw)
            add(p + "indexer_compressor_gate.weight", H, iw)
            add(p + "indexer_compressor_ape.weight", iw, m.csa_rate)
            add(p + "indexer_compressor_norm.weight", m.index_head_dim)
        for part in ("attn", "ffn"):
            add(p + f"hc_{part}_fn.weight", n * H, hc)
            add(p + f"hc_{part}_base.weight", hc)
            add(p + f"hc_{part}_scale.weight", 3)
        add(p + "ffn_norm.weight", H)
        E, F = arch.n_experts, arch.moe_intermediate_size
        if i in m.hash_layers:   # hash routing: a token-id → experts table instead of the score bias
            add(p + "ffn_gate_tid2eid.weight", arch.n_experts_per_tok, V)
        add_routed_experts(add, p, H, F, E, router_bias=i not in m.hash_layers)
        add_gated_ffn(add, p, H, F, "_shexp")


def _one_sequence(arch: Any, runtime: str, batch: int) -> None:
    """Refuse the caches not measured: vLLM's, llama.cpp's for several sequences or a layout it does not load."""
    if runtime == "llama.cpp" and arch.deepseek_v4.llama_cpp_refusal(arch):
        raise EstimatorError("runtime", f"deepseek_v4: {arch.deepseek_v4.llama_cpp_refusal(arch)}")
    if runtime == "vllm":
        raise EstimatorError("runtime", "deepseek_v4: vLLM's cache for DeepSeek-V4's compressed attention has not "
                                        "been measured here; plan it with llama.cpp or transformers")
    if runtime == "llama.cpp" and batch > 1:
        raise EstimatorError("batch", "deepseek_v4: llama.cpp's DeepSeek-V4 caches were measured for one sequence "
                                      "only; plan batch 1 (or the transformers runtime)")


def deepseek_v4_kv_cache_bytes(arch: Any, runtime: str, batch: int, context: int, cells: int, swa_cells: int,
                               elem: float, elem_txt: str) -> tuple[int, str]:
    """The attention caches after `context` tokens.

    llama.cpp 0.3.36 (llama_kv_cache_dsv4; measured with a converted tiny DeepSeek-V4 in llama-cpp-python, see
    the tests): K only (K is V), one head_dim row per cell: the raw window of every layer in the SWA cache
    (`swa_cells`: full size with swa_full), a CSA cache of pad(cells / 4, 256) cells on the CSA layers, an HCA
    cache of pad(cells / 128, 256) on the HCA layers, and the lightning indexer's cache of pad(cells / 4, 256)
    index_head_dim rows on the CSA layers. The compressors' running state is apart (deepseek_v4_state_bytes).

    transformers 5.23 (modeling_deepseek_v4.py), per sequence and layer:
    - sliding_attention: DynamicSlidingWindowLayer, K and V apart, the last sliding_window - 1 tokens of the
      one head_dim-wide head each;
    - HCA (DeepseekV4HCACache): that window once (K is V), the compressed entries (one head_dim row per
      hca_rate tokens), and the compressor's buffer of the tokens since the last full window (kv and gate,
      head_dim each);
    - CSA (DeepseekV4CSACache): the window once, compressed entries per csa_rate tokens (head_dim), buffered kv
      and gate (2 × head_dim each), the last full window's first series (update_overlap_state keeps
      chunk[:, -1, :, :head_dim]: csa_rate tokens × head_dim, kv and gate), and the same for the indexer at
      index_head_dim.
    vLLM is refused: its DeepSeek-V4 cache has not been measured."""
    _one_sequence(arch, runtime, batch)
    m: DeepseekV4 = arch.deepseek_v4
    D, T = arch.head_dim, context
    count = {t: m.layer_types.count(t) for t in (SLIDING, HCA, CSA)}
    if runtime == "llama.cpp":
        csa_cells, hca_cells = _pad(cells // m.csa_rate), _pad(cells // m.hca_rate)
        rows = (arch.n_layers * D * swa_cells + count[CSA] * (D + m.index_head_dim) * csa_cells
                + count[HCA] * D * hca_cells)
        total = int(rows * elem)
        return total, (f"K only: {arch.n_layers} layers × {D} × {swa_cells:,} window cells + {count[CSA]} CSA "
                       f"layers × ({D} + {m.index_head_dim} indexer) × {csa_cells:,} cells + {count[HCA]} HCA layers "
                       f"× {D} × {hca_cells:,} cells (compressed caches: cells / rate, padded to 256) × {elem_txt} "
                       f"= {total:,} B")
    window = min(T, arch.sliding_window - 1)
    hca = window * D + (T // m.hca_rate) * D + 2 * (T % m.hca_rate) * D
    overlap = 1 if T >= m.csa_rate else 0

    def csa_part(width: int) -> int:   # compressed rows, buffered kv + gate (two series), overlap kv + gate
        return (T // m.csa_rate) * width + 2 * (T % m.csa_rate) * 2 * width + overlap * 2 * m.csa_rate * width

    csa = window * D + csa_part(D) + csa_part(m.index_head_dim)
    per_seq = count[SLIDING] * 2 * window * D + count[HCA] * hca + count[CSA] * csa
    total = int(batch * per_seq * elem)
    return total, (f"{batch} batch × ({count[SLIDING]} sliding layers × 2 × {window:,} tokens × {D} + "
                   f"{count[HCA]} HCA layers × {hca:,} + {count[CSA]} CSA layers × {csa:,} elements: the window of "
                   f"{window:,} tokens (K = V), one {D}-wide entry per {m.hca_rate} / {m.csa_rate} tokens, the "
                   f"compressor buffers and the indexer's {m.index_head_dim}-wide entries) × {elem_txt} = {total:,} B")


def deepseek_v4_state_bytes(arch: Any, runtime: str, batch: int) -> tuple[int, str]:
    """llama.cpp's compressor state (llama_dsv4_comp_state, F32, a kv and a score tensor per layer; measured
    as above): coff × rate rows of coff × width per layer, coff = 2 on CSA (two overlapping series), 1 on HCA;
    width head_dim for the attention compressors, index_head_dim for the indexer's. transformers keeps its
    compressor buffers in the cache (deepseek_v4_kv_cache_bytes)."""
    _one_sequence(arch, runtime, batch)
    if runtime != "llama.cpp":
        return 0, "the compressors' buffers are part of transformers' cache = 0 B"
    m: DeepseekV4 = arch.deepseek_v4
    D, I = arch.head_dim, m.index_head_dim
    csa, hca = m.layer_types.count(CSA), m.layer_types.count(HCA)
    csa_rows, lid_rows = (2 * m.csa_rate) * (2 * D), (2 * m.csa_rate) * (2 * I)
    hca_rows = m.hca_rate * D
    total = 2 * 4 * (csa * (csa_rows + lid_rows) + hca * hca_rows)
    return total, (f"compressor state (F32, kv + score): {csa} CSA layers × ({2 * m.csa_rate} × {2 * D} + indexer "
                   f"{2 * m.csa_rate} × {2 * I}) + {hca} HCA layers × {m.hca_rate} × {D} elements × 2 × 4 B "
                   f"= {total:,} B")


def _pad(n: int, to: int = 256) -> int:
    return -(-n // to) * to
