"""Per-tensor GGUF type choice: a port of llama.cpp's quantizer rules.

Source: `src/llama-quant.cpp` in the llama.cpp vendored by llama-cpp-python 0.3.36:
`tensor_allows_quantization`, `llama_tensor_get_type_impl`, `tensor_type_fallback`,
`llama_ftype_get_default_type`. Only the ftypes this product offers are ported, for the
architectures in architecture.py, Falcon's special cases included (its output Q8_0, its ffn_down
and attn_output rules).

Counters: llama.cpp walks tensors in `weights_map` order (`weight_name_comparer`: by layer
number, then by name), so its running counters `i_attention_wv` / `i_ffn_down` equal the layer
index for the models we build; `n_attention_wv` = number of attn_v (or fused attn_qkv) tensors,
`n_ffn_down` = n_layer_all.

MTP (NextN) layers: for Qwen3-Next and GLM-4.5 the converter keeps them as the last blocks
(block_count = layers + nextn) and the quantizer treats them like any block: no special case in
llama-quant.cpp outside glm5-next (nextn.eh_proj and shared_head_head are category OTHER, so the
ftype's base type; nextn.embed_tokens is not `token_embd.weight`, so also the base type), and its
counters include them (`init_quantize_state_counters`: n_attention_wv counts their attn_v,
n_ffn_down = hparams.n_layer_all). So the types of the *main* layers depend on them too
(use_more_bits over n_layer_all). llama.cpp then skips those blocks on load (TENSOR_SKIP without an
MTP context): `gguf_file_plan` is the file, `gguf_tensor_plan` what is loaded (the model buffer).

MXFP4_MOE (gpt-oss's GGUF type): 3-D tensors MXFP4, output / token_embd and every other
quantizable matrix Q8_0 (llama_tensor_get_type_impl, checked with llama_model_quantize on tiny
Qwen3-MoE and gpt-oss models: bench/mxfp4_moe_ground_truth.py).

Importance matrix: IQ2_XS and IQ3_XXS refuse to run without one (`tensor_requires_imatrix`), so
we model them *with* an imatrix (`has_imatrix = True`); every other type is modelled without.
"""

from __future__ import annotations

from functools import lru_cache

from .architecture import Architecture, layer_index
from .ggml_types import GGML_TYPE_SIZES, tensor_bytes

# ftype name (what people write) -> default tensor type (llama_ftype_get_default_type)
GGUF_FTYPES: dict[str, str] = {
    "F16": "F16",
    "Q8_0": "Q8_0",
    "Q6_K": "Q6_K",
    "Q5_K_M": "Q5_K",
    "Q5_K_S": "Q5_K",
    "Q5_1": "Q5_1",
    "Q5_0": "Q5_0",
    "Q4_K_M": "Q4_K",
    "Q4_K_S": "Q4_K",
    "Q4_1": "Q4_1",
    "Q4_0": "Q4_0",
    "Q3_K_L": "Q3_K",
    "Q3_K_M": "Q3_K",
    "Q3_K_S": "Q3_K",
    "Q2_K": "Q2_K",
    "IQ4_XS": "IQ4_XS",
    "IQ4_NL": "IQ4_NL",
    "IQ3_XXS": "IQ3_XXS",
    "IQ2_XS": "IQ2_XS",
    "MXFP4_MOE": "MXFP4",
}
NEEDS_IMATRIX = {"IQ3_XXS", "IQ2_XS"}

# tensor_type_fallback: when ne0 % block != 0
_FALLBACK = {
    "IQ2_XXS": "IQ4_NL", "IQ2_XS": "IQ4_NL", "IQ2_S": "IQ4_NL", "IQ3_XXS": "IQ4_NL",
    "IQ3_S": "IQ4_NL", "IQ4_XS": "IQ4_NL", "IQ1_S": "IQ4_NL", "IQ1_M": "IQ4_NL",
    "Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0",
}


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    """llama-quant.cpp `use_more_bits`: first and last eighth of layers, and every third in between."""
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


def allows_quantization(name: str, shape: tuple[int, ...]) -> bool:
    """`tensor_allows_quantization`: 2-D/3-D `*weight` tensors except norms and the MoE router."""
    return (
        sum(1 for d in shape[1:] if d > 1) >= 1   # ggml_n_dims >= 2: trailing 1s don't count ((H, 1) is 1-D)
        and name.endswith("weight")
        and "_norm.weight" not in name
        and "ffn_gate_inp.weight" not in name
        and "ssm_conv1d" not in name and "shortconv.conv.weight" not in name  # recurrent conv kernels
        and name != "position_embd.weight"   # learned positions (GPT-2, StarCoder): the converter writes F32
        and "altup_correct_coef" not in name and "altup_predict_coef" not in name   # Gemma 3n: written F32
    )


# Gemma 3n tensors llama-quantize keeps in the source type (llama-quant.cpp tensor_allows_quantization:
# "altup", "laurel" — "very small" — and "per_layer_model_proj"); the converter writes them 16-bit
KEPT_AS_SOURCE = ("altup", "laurel", "per_layer_model_proj")
# Matrices convert_hf_to_gguf.py writes F32 whatever --outtype says (conversion/base.py: the DSA indexer's
# weights_proj on every DSA model; conversion/hy_v4.py tensor_force_quant: HY V4's hyper-connection
# matrices). An F16 file keeps them F32; llama-quantize still quantizes them (measured on a converted tiny
# HY V4: F16 file 155,648 B larger than all-16-bit, Q4_K_M file equal to the rules below)
CONVERTED_F32 = ("indexer.proj.weight",)
CONVERTED_F32_HY_V4 = ("hc_attn_fn.weight", "hc_ffn_fn.weight", "output_hc_fn.weight")


def category(name: str) -> str:
    """`tensor_get_category` (order matters: output, token_embd, qkv, v, k, q, o, up, gate, down)."""
    if name == "output.weight":
        return "output"
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):   # Gemma 3n's per-layer embedding too
        return "token_embd"
    # attn_qkv and the unsplit MLA attn_kv_b are attn_v-like (category_is_attn_v)
    for key, cat in (("attn_qkv.weight", "attn_v"), ("attn_kv_b.weight", "attn_v"), ("attn_v.weight", "attn_v"),
                     ("attn_k.weight", "attn_k"), ("attn_q.weight", "attn_q"),
                     ("attn_output.weight", "attn_output"), ("ffn_up", "ffn_up"),
                     ("ffn_gate", "ffn_gate"), ("ffn_down", "ffn_down")):
        if key in name:
            return cat
    return "other"


def _is_llm_type_70b(arch: Architecture) -> bool:
    """LLM_TYPE_70B (models/llama.cpp, models/qwen2.cpp): 80 layers (llama: with GQA)."""
    if arch.n_layers != 80:
        return False
    if arch.arch == "llama":
        return arch.n_heads != arch.n_kv_heads
    return arch.arch == "qwen2"


def _impl(arch: Architecture, ftype: str, new_type: str, name: str, shape: tuple[int, ...],
          cat: str, has_imatrix: bool, i_attention_wv: int, i_ffn_down: int) -> str:
    """`llama_tensor_get_type_impl` for the ftypes in GGUF_FTYPES.

    `i_attention_wv` / `i_ffn_down` are llama.cpp's running counters (see module docstring);
    for MoE models the ffn_down rules use the layer parsed from the name (`layer_info`).
    """
    n_gqa = arch.n_gqa
    n_expert = arch.n_experts
    n_layer = arch.n_layers_all           # qs.n_ffn_down = hparams.n_layer_all (MTP blocks included)
    n_attention_wv = _n_attention_wv(arch)  # attn_v / attn_qkv in the file (init_quantize_state_counters)
    layer = layer_index(name) if arch.is_moe else i_ffn_down
    layer = layer or 0
    iq2 = ftype in ("IQ2_XXS", "IQ2_XS")
    falcon = arch.arch == "falcon"

    if ftype == "MXFP4_MOE":
        # output (and a tied token_embd) Q8_0; 3-D tensors (ne[2] > 1: the stacked experts, and
        # MLA's per-head attn_k_b / attn_v_b) MXFP4; every other quantizable tensor Q8_0.
        return "MXFP4" if len(shape) > 2 and shape[2] > 1 and cat not in ("output", "token_embd") else "Q8_0"
    if cat == "output" or (arch.tie_word_embeddings and cat == "token_embd"):
        if falcon or shape[0] % GGML_TYPE_SIZES[new_type][0] != 0:
            return "Q8_0"
        if iq2 or ftype == "IQ3_XXS":
            return "Q5_K"
        return new_type if new_type == "Q8_0" else "Q6_K"
    if cat == "token_embd":
        if iq2:
            return "Q2_K"
        if ftype == "IQ3_XXS":
            return "IQ3_S"
        return new_type
    if iq2:
        if cat == "attn_v":
            return "Q4_K" if (n_gqa >= 4 or n_expert >= 4) else "Q2_K"
        if n_expert == 8 and cat == "attn_k":
            return "Q4_K"
        if cat == "ffn_down":  # this branch uses the raw counter, even for MoE
            return "Q2_K" if i_ffn_down < n_layer // 8 else new_type
        if cat == "attn_output" and n_expert == 8:
            return "Q5_K"
        return new_type
    if cat == "attn_v":
        if ftype == "Q2_K":
            new_type = "Q4_K" if n_gqa >= 4 else "Q3_K"
        elif ftype == "IQ3_XXS":
            new_type = "Q4_K" if n_gqa >= 4 else ("IQ3_S" if not has_imatrix else "IQ3_XXS")
        elif ftype == "Q3_K_M":
            new_type = "Q5_K" if i_attention_wv < 2 else "Q4_K"
        elif ftype == "Q3_K_L":
            new_type = "Q5_K"
        elif ftype in ("IQ4_NL", "IQ4_XS") and n_gqa >= 4:
            new_type = "Q5_K"
        elif ftype in ("Q4_K_M", "Q5_K_M") and use_more_bits(i_attention_wv, n_attention_wv):
            new_type = "Q6_K"
        elif ftype == "Q4_K_S" and i_attention_wv < 4:
            new_type = "Q5_K"
        if _is_llm_type_70b(arch) and new_type in ("Q3_K", "Q4_K"):
            new_type = "Q5_K"
        if n_expert == 8:
            new_type = "Q8_0"
        return new_type
    if cat == "attn_k":
        if n_expert == 8:
            return "Q8_0"
        if ftype == "IQ3_XXS":
            return "IQ2_S"
        return new_type
    if cat == "attn_q":
        return "IQ2_S" if ftype == "IQ3_XXS" else new_type
    if cat == "ffn_down":
        if ftype == "Q2_K":
            return "Q3_K"
        if ftype == "IQ3_XXS" and not has_imatrix:
            return "Q4_K" if layer < n_layer // 8 else "Q3_K"
        if ftype == "Q3_K_M":
            if layer < n_layer // 16:
                return "Q5_K"
            return "Q4_K" if not falcon or use_more_bits(layer, n_layer) else "Q3_K"
        if ftype == "Q3_K_L":
            return "Q4_K" if falcon else "Q5_K"
        if ftype == "Q4_K_M":
            if falcon:
                return "Q6_K" if layer < n_layer // 16 else ("Q5_K" if use_more_bits(layer, n_layer) else "Q4_K")
            return "Q6_K" if use_more_bits(layer, n_layer) else new_type
        if layer < n_layer // 8 and ftype in ("IQ4_NL", "IQ4_XS") and not has_imatrix:
            return "Q5_K"
        if ftype == "Q5_K_M":
            return "Q6_K" if use_more_bits(layer, n_layer) else new_type
        if ftype == "Q4_K_S" and not falcon and layer < n_layer // 8:
            return "Q5_K"
        if ftype in ("Q4_0", "Q5_0") and has_imatrix and layer < n_layer // 8:
            return "Q4_1" if ftype == "Q4_0" else "Q5_1"
        return new_type
    if cat == "attn_output":
        if falcon:
            return "Q4_K" if ftype == "Q3_K_L" else new_type
        if n_expert == 8:
            if ftype in ("Q2_K", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ4_XS"):
                return "Q5_K"
            return new_type
        return {"Q2_K": "Q3_K", "IQ3_XXS": "IQ3_S", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K"}.get(ftype, new_type)
    return new_type


@lru_cache(maxsize=256)
def _n_attention_wv(arch: Architecture) -> int:
    """init_quantize_state_counters: tensors of category attn_v (attn_v, attn_qkv, attn_kv_b) in the file."""
    return sum(1 for name, _, _ in arch.gguf_tensors()
               if name.endswith(("attn_v.weight", "attn_qkv.weight", "attn_kv_b.weight")))


def _fallback(ne0: int, new_type: str) -> str:
    """`tensor_type_fallback`: row length not a multiple of the block size → compatible type or F16."""
    blck = GGML_TYPE_SIZES[new_type][0]
    if ne0 % blck == 0:
        return new_type
    result = _FALLBACK.get(new_type, new_type)
    if ne0 % GGML_TYPE_SIZES[result][0] != 0:
        result = "F16"
    return result


def tensor_type(arch: Architecture, ftype: str, name: str, shape: tuple[int, ...],
                has_imatrix: bool | None = None, i_attention_wv: int | None = None,
                i_ffn_down: int | None = None) -> str:
    """The ggml type llama-quantize gives one tensor (`llama_tensor_get_type`).

    Tensors that are not quantized keep their source type; we assume a convert_hf_to_gguf
    source where 1-D tensors (norms, biases, rope_freqs) and the MoE router are F32.
    """
    default = GGUF_FTYPES[ftype]
    if not allows_quantization(name, shape):
        return "F32"
    if default in ("F16", "BF16", "F32"):
        if name.endswith(CONVERTED_F32) or (arch.arch == "hy_v4" and name.endswith(CONVERTED_F32_HY_V4)):
            return "F32"
        return default
    if any(part in name for part in KEPT_AS_SOURCE):
        return "F16"
    if has_imatrix is None:
        has_imatrix = ftype in NEEDS_IMATRIX
    layer = layer_index(name) or 0
    chosen = _impl(arch, ftype, default, name, shape, category(name), has_imatrix,
                   layer if i_attention_wv is None else i_attention_wv,
                   layer if i_ffn_down is None else i_ffn_down)
    return _fallback(shape[0], chosen)


@lru_cache(maxsize=256)
def gguf_tensor_plan(arch: Architecture, ftype: str) -> tuple[tuple[str, str, int], ...]:
    """[(tensor name, ggml type, bytes)] for every tensor llama.cpp loads from the `ftype` file:
    the file's plan without the MTP blocks (layers >= n_layers), which it skips (cached)."""
    return tuple(t for t in gguf_file_plan(arch, ftype) if (layer_index(t[0]) or 0) < arch.n_layers)


@lru_cache(maxsize=256)
def gguf_file_plan(arch: Architecture, ftype: str) -> tuple[tuple[str, str, int], ...]:
    """[(tensor name, ggml type, bytes)] for every tensor in the GGUF file quantized as `ftype`,
    MTP blocks included where the converter keeps them (Architecture.gguf_tensors) (cached)."""
    plan = []
    i_attention_wv = i_ffn_down = 0
    ordered = sorted(arch.gguf_tensors(), key=lambda t: (-1 if layer_index(t[0]) is None else layer_index(t[0]), t[0]))
    for name, shape, _ in ordered:  # weights_map order: layer number, then name
        t = tensor_type(arch, ftype, name, shape, None, i_attention_wv, i_ffn_down)
        if allows_quantization(name, shape):
            cat = category(name)
            i_attention_wv += cat == "attn_v"
            i_ffn_down += cat == "ffn_down"
        plan.append((name, t, tensor_bytes(t, shape)))
    return tuple(plan)


def gguf_weights_bytes(arch: Architecture, ftype: str) -> int:
    """Exact sum of the tensor bytes llama.cpp loads (its model buffer(s), before repacking):
    the file's tensors less the MTP blocks it skips. Equal to gguf_file_tensor_bytes otherwise."""
    return sum(b for _, _, b in gguf_tensor_plan(arch, ftype))


def gguf_file_tensor_bytes(arch: Architecture, ftype: str) -> int:
    """Exact sum of tensor data bytes in the GGUF file, MTP blocks included (alignment padding and
    header excluded).

    The file itself is larger: a header with metadata (the tokenizer, often 1-10 MB) and each
    tensor's data offset padded to `general.alignment` (default 32 bytes, GGUF_DEFAULT_ALIGNMENT).
    """
    return sum(b for _, _, b in gguf_file_plan(arch, ftype))


def gguf_type_histogram(arch: Architecture, ftype: str) -> dict[str, int]:
    """ggml type -> number of tensors in the file, as llama-quantize's summary would show."""
    counts: dict[str, int] = {}
    for _, t, _ in gguf_file_plan(arch, ftype):
        counts[t] = counts.get(t, 0) + 1
    return counts
