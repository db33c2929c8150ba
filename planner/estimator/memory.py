"""Runtime memory besides weights: KV cache, compute buffers, fixed overhead, training state.

Each function returns (bytes, formula) so the UI can show the arithmetic with the user's numbers.
"""

from __future__ import annotations

import copy

from .architecture import Architecture
from .deepseek_v4 import deepseek_v4_kv_cache_bytes, deepseek_v4_state_bytes
from .dots3 import dots3_kv_cache_bytes
from .errors import EstimatorError
from .hardware import Hardware
from .hybrid import recurrent_state_bytes
from .workload import Workload

MiB = 2**20
LLAMA_CPP_CTX_PAD = 256      # llama-context.cpp: cparams.n_ctx = GGML_PAD(n_ctx, 256)
VLLM_BLOCK = 16              # vLLM default block_size (tokens per KV block)
VLLM_MAX_BATCHED_TOKENS = 8192   # vLLM V1 default max_num_batched_tokens used in its profiling run
VLLM_MAX_NUM_SEQS = 256


def _pad(n: int, to: int) -> int:
    return -(-n // to) * to


def llama_cpp_kv_cells(arch: Architecture, wl: Workload) -> int:
    """KV cells llama.cpp allocates (all sequences together).

    llama-context.cpp: n_ctx = GGML_PAD(n_ctx, 256); with n_seq_max = batch and kv_unified=false
    (the default) each sequence gets its own stream of n_ctx_seq = GGML_PAD(n_ctx / n_seq, 256)
    cells, so the total is n_ctx_seq × n_seq. We take `context` as the per-sequence context, so
    the user's n_ctx is context × batch. Sliding-window layers: see llama_cpp_swa_cells.
    """
    per_seq = _pad(_pad(wl.context * wl.batch, LLAMA_CPP_CTX_PAD) // wl.batch, LLAMA_CPP_CTX_PAD)
    return per_seq * wl.batch


def llama_cpp_swa_cells(arch: Architecture, wl: Workload) -> int:
    """KV cells of llama.cpp's SWA cache (all sequences together) for the local layers.

    llama-kv-cache-iswa.cpp (llama_kv_cache_iswa ctor): size_swa = GGML_PAD(min(size_base,
    n_swa × (unified ? n_seq_max : 1) + n_ubatch), 256) — "the SWA cache is always padded to
    256" — and size_swa = size_base when swa_full. Each of the n_seq_max streams (kv_unified off)
    gets that many cells.
    """
    base = llama_cpp_kv_cells(arch, wl)
    if wl.swa_full or not arch.swa_in_llama_cpp:
        return base
    per_seq = base // wl.batch
    ub = min(wl.n_ubatch, wl.context * wl.batch)
    return min(per_seq, _pad(arch.sliding_window + ub, LLAMA_CPP_CTX_PAD)) * wl.batch


def vllm_cache_unmeasured(arch: Architecture) -> str:
    """Why vLLM's KV cache for this architecture is not planned ("" where it is): caches vLLM keeps
    beyond the attention pages this estimator sizes, which nobody has measured here."""
    if arch.deepseek_v4 is not None:
        return "deepseek_v4: vLLM's cache for DeepSeek-V4's compressed attention has not been measured here"
    if arch.dots3 is not None:
        return (f"{arch.arch}: vLLM's cache for this model's per-layer MLA widths (sliding layers wider than the "
                "indexed ones) and its DSA indexer keys has not been measured here")
    if arch.indexer is not None:
        return (f"{arch.arch}: vLLM keeps a second cache of the DSA indexer keys beside the MLA latent, and its "
                "size has not been measured here")
    return ""


def kv_cache_bytes(arch: Architecture, wl: Workload, context: int | None = None) -> tuple[int, str]:
    """Bytes of the K and V caches for the workload (optionally at another context): the KV cache
    alone, of the layers that have one (a hybrid's attention layers). A hybrid's recurrent state is
    its own figure (recurrent_bytes), as llama.cpp allocates and logs it apart (llama_memory_hybrid:
    "llama_kv_cache: size = …" for the KV, "llama_memory_recurrent: … R (f32) …, S (f32) …" for
    the state).

    Sliding-window layers (`arch.swa_layers`): llama.cpp sizes them by llama_cpp_swa_cells;
    transformers' DynamicSlidingWindowLayer (cache_utils.py) keeps "the last sliding_window - 1
    tokens"; vLLM's sliding-window spec pages only the window (blocks of 16).
    """
    if context is not None and context != wl.context:
        wl = _with_context(wl, context)
    L, kvh, hd = arch.kv_layers, arch.n_kv_heads, arch.head_dim  # hybrids: attention layers only
    elem = wl.kv_bytes_per_element
    elem_txt = {"f16": "2 B", "q8_0": "34/32 B (q8_0)", "q4_0": "18/32 B (q4_0)", "fp8": "1 B (fp8)"}[wl.kv_dtype]
    if wl.runtime == "vllm" and vllm_cache_unmeasured(arch):
        raise EstimatorError("runtime", vllm_cache_unmeasured(arch) + "; plan it with llama.cpp or transformers")
    if arch.deepseek_v4 is not None:   # compressed attention: window, compressed entries, compressor buffers
        cells = (llama_cpp_kv_cells(arch, wl), llama_cpp_swa_cells(arch, wl)) if wl.runtime == "llama.cpp" else (0, 0)
        return deepseek_v4_kv_cache_bytes(arch, wl.runtime, wl.batch, wl.context, *cells, elem, elem_txt)
    if arch.dots3 is not None:   # latent widths per layer kind, windowed sliding layers, indexer keys (dots3.py)
        if wl.runtime == "llama.cpp":
            tokens = (llama_cpp_kv_cells(arch, wl), llama_cpp_swa_cells(arch, wl), "cells")
        elif wl.runtime == "vllm":
            tokens = (_pad(wl.context, VLLM_BLOCK) * wl.batch,
                      _pad(min(wl.context, arch.sliding_window), VLLM_BLOCK) * wl.batch, "tokens")
        else:   # transformers: DynamicSlidingWindowLayer keeps sliding_window - 1 tokens
            tokens = (wl.batch * wl.context, wl.batch * min(wl.context, arch.sliding_window - 1), "tokens")
        return dots3_kv_cache_bytes(arch, wl.runtime, *tokens, elem, elem_txt)
    if arch.is_mla:
        return _mla_kv_cache_bytes(arch, wl, elem, elem_txt)
    if arch.kv_layout:
        return _per_layer_kv_cache_bytes(arch, wl, elem, elem_txt)
    n_swa = len(arch.swa_layers) if arch.sliding_window else 0
    row = 2 * kvh * hd  # K + V elements per layer per cell
    if wl.runtime == "llama.cpp":
        # llama-kv-cache.cpp: per layer a K tensor [n_embd_k_gqa, kv_size] and V [n_embd_v_gqa, kv_size]
        # of type_k/type_v; ggml_row_size(q8_0, n) = n × 34/32.
        cells = llama_cpp_kv_cells(arch, wl)
        seqs = f"{' × ' + str(wl.batch) + ' seqs' if wl.batch > 1 else ''}"
        swa_cells = llama_cpp_swa_cells(arch, wl) if n_swa else cells
        if swa_cells == cells:
            total = int(2 * L * kvh * hd * cells * elem)
            return total, (f"2 × {L} layers × {kvh} kv_heads × {hd} head_dim × {cells:,} cells "
                           f"(ctx padded to 256{seqs}) × {elem_txt} = {total:,} B")
        total = int(row * ((L - n_swa) * cells + n_swa * swa_cells) * elem)
        return total, (f"2 × {kvh} kv_heads × {hd} head_dim × ({L - n_swa} full layers × {cells:,} cells + "
                       f"{n_swa} SWA layers × {swa_cells:,} cells (window {arch.sliding_window} + ubatch, padded "
                       f"to 256{seqs})) × {elem_txt} = {total:,} B")
    if wl.runtime == "vllm":
        # PagedAttention: blocks of 16 tokens; requirement for `batch` sequences of `context` tokens.
        tokens = _pad(wl.context, VLLM_BLOCK) * wl.batch
        local = _pad(min(wl.context, arch.sliding_window), VLLM_BLOCK) * wl.batch if n_swa else tokens
        total = int(row * ((L - n_swa) * tokens + n_swa * local) * elem)
        if local == tokens:
            return total, (f"2 × {L} layers × {kvh} kv_heads × {hd} head_dim × {tokens:,} tokens "
                           f"(blocks of 16 × {wl.batch} seqs) × {elem_txt} = {total:,} B")
        return total, (f"2 × {kvh} kv_heads × {hd} head_dim × ({L - n_swa} full layers × {tokens:,} tokens + "
                       f"{n_swa} sliding layers × {local:,} (window, blocks of 16 × {wl.batch} seqs)) × "
                       f"{elem_txt} = {total:,} B")
    # transformers DynamicCache: grows to batch × seq per layer; sliding layers keep window - 1.
    local = min(wl.context, arch.sliding_window - 1) if n_swa else wl.context
    tok_sum = (L - n_swa) * wl.context + n_swa * local
    total = int(wl.batch * row * tok_sum * elem)
    if tok_sum == L * wl.context:
        txt = (f"2 × {wl.batch} batch × {wl.context:,} seq × {L} layers × {kvh} kv_heads × {hd} head_dim × "
               f"{elem_txt} = {total:,} B")
    else:
        txt = (f"2 × {wl.batch} batch × {tok_sum:,} layer-tokens ({n_swa} sliding layers keep "
               f"{local:,}) × {kvh} kv_heads × {hd} head_dim × {elem_txt} = {total:,} B")
    return total, txt


def _per_layer_kv_cache_bytes(arch: Architecture, wl: Workload, elem: float, elem_txt: str) -> tuple[int, str]:
    """KV cache where layers differ in KV width (`arch.kv_layout`: (n_kv_heads, head_dim) per layer,
    (0, 0) for a layer that keeps no cache). llama.cpp (llama-kv-cache.cpp) allocates per layer K
    [n_embd_k_gqa(il), kv_size] and V [n_embd_v_gqa(il), kv_size] and none for a layer that reuses
    another's (Gemma 4 KV sharing: "layer N: does not have KV cache", llama-cpp-python 0.3.36).
    Sliding layers get llama_cpp_swa_cells / the window, as in kv_cache_bytes."""
    swa = set(arch.swa_layers) if arch.sliding_window else set()
    if wl.runtime == "llama.cpp":
        full_t = llama_cpp_kv_cells(arch, wl)
        local_t = llama_cpp_swa_cells(arch, wl) if swa else full_t
        unit = "cells"
    elif wl.runtime == "vllm":
        full_t = _pad(wl.context, VLLM_BLOCK) * wl.batch
        local_t = _pad(min(wl.context, arch.sliding_window), VLLM_BLOCK) * wl.batch if swa else full_t
        unit = "tokens"
    else:   # transformers DynamicCache; DynamicSlidingWindowLayer keeps sliding_window - 1 tokens
        full_t = wl.batch * wl.context
        local_t = wl.batch * min(wl.context, arch.sliding_window - 1) if swa else full_t
        unit = "tokens"
    groups: dict[tuple[int, int, int], int] = {}
    for i, (kvh, hd) in enumerate(arch.kv_layout):
        if kvh:
            key = (kvh, hd, local_t if i in swa else full_t)
            groups[key] = groups.get(key, 0) + 1
    total = int(sum(2 * n * kvh * hd * t for (kvh, hd, t), n in groups.items()) * elem)
    parts = " + ".join(f"{n} layers × {kvh} kv_heads × {hd} head_dim × {t:,} {unit}"
                       for (kvh, hd, t), n in sorted(groups.items()))
    if arch.mimo_v2 is not None:   # V is v_head_dim wide, K head_dim
        vd = arch.v_head_dim
        # llama.cpp with flash attention off pads every layer's V row to the widest (measured on a converted
        # tiny MiMo-V2: "padding V cache to 128", the full layer's 2 heads × 32 logged as V (f16) 1.00 MiB)
        v_pad = max(kvh for kvh, _ in arch.kv_layout) * vd if wl.runtime == "llama.cpp" and not wl.flash_attn else 0
        total = int(sum(n * (kvh * hd + (v_pad or kvh * vd)) * t for (kvh, hd, t), n in groups.items()) * elem)
        v_txt = f"V padded to {v_pad}" if v_pad else f"{vd} V per head"
        parts = " + ".join(f"{n} layers × ({kvh} kv_heads × {hd} K + {v_txt}) × {t:,} {unit}"
                           for (kvh, hd, t), n in sorted(groups.items()))
        return total, f"({parts}) × {elem_txt} = {total:,} B"
    none = sum(1 for kvh, _ in arch.kv_layout if not kvh)
    shared = f" ({none} layers reuse another layer's cache)" if none else ""
    return total, f"2 × ({parts}){shared} × {elem_txt} = {total:,} B"


# the same figure, by the name bench/hybrid_ground_truth.py imports
attention_kv_bytes = kv_cache_bytes


def layer_cache_bytes(arch: Architecture, kv: int, state: int) -> tuple[list[int], list[int]]:
    """Each repeating layer's share of the KV cache and of the recurrent state: the KV split evenly
    over the layers that have one (all, or a hybrid's attention layers), the state over the
    recurrent layers; 0 elsewhere. llama.cpp allocates both per layer, on that layer's device when
    it is offloaded (llama-kv-cache.cpp and llama-memory-recurrent.cpp: model.dev_layer(il)), so
    each moves with its layer."""
    L = arch.n_layers
    if arch.hybrid is None:
        return [kv // L] * L, [0] * L
    attn, rec = set(arch.hybrid.attention_layers), set(arch.hybrid.recurrent_layers)
    kv_layer = kv // len(attn) if attn else 0
    state_layer = state // len(rec) if rec else 0
    return ([kv_layer if i in attn else 0 for i in range(L)],
            [state_layer if i in rec else 0 for i in range(L)])


def recurrent_bytes(arch: Architecture, wl: Workload) -> tuple[int, str]:
    """Recurrent state of a hybrid/recurrent model for the workload's sequences (hybrid.py
    recurrent_state_bytes: llama.cpp's R/S buffers in F32; transformers/vLLM in 16 bits); 0 otherwise."""
    if arch.deepseek_v4 is not None:   # llama.cpp's compressor state, logged apart from its KV caches
        return deepseek_v4_state_bytes(arch, wl.runtime, wl.batch)
    if arch.hybrid is None or not arch.hybrid.recurrent_layers:
        return 0, "no recurrent layers = 0 B"
    return recurrent_state_bytes(arch, wl.runtime, wl.batch)


def _mla_kv_cache_bytes(arch: Architecture, wl: Workload, elem: float, elem_txt: str) -> tuple[int, str]:
    """Multi-head Latent Attention (DeepSeek-V2 §2.1.2): every runtime caches the compressed latent
    c_kv (kv_lora_rank) and the shared rope key (qk_rope_head_dim), one row per layer per token,
    not per-head K and V.

    llama.cpp (llama-kv-cache.cpp, llama_kv_cache ctor): K tensor [n_embd_k_gqa = kv_lora_rank +
    n_rot, kv_size] per layer, and `has_v = !hparams.is_mla()`: no V tensor (V is read from the
    latent). Measured with a converted tiny DeepSeek-V3 (4 layers, kv_lora 64, rope 16) in
    llama-cpp-python 0.3.36 at n_ctx 4096: "K (f16): 2.50 MiB, V (f16): 0.00 MiB" = 4 × 80 × 4096 × 2.
    transformers 5.23 (modeling_deepseek_v3.py DeepseekV3Attention.forward): "Cache read / write is
    performed while latent KV is still compressed": the cache keeps kv_nope [1 head × kv_lora_rank]
    as keys and k_rot [1 head × qk_rope_head_dim] as values.
    vLLM (vllm/v1/kv_cache_interface.py MLAAttentionSpec.real_page_size_bytes = block_size ×
    num_kv_heads (1) × head_size (kv_lora_rank + qk_rope_head_dim) × dtype size, no V). Its
    "fp8_ds_mla" cache (656 B per token) is not modelled: fp8 here is 1 B per element.
    """
    L, row = arch.kv_layers, arch.mla_kv_dim   # a hybrid (Kimi Linear): its MLA layers only
    parts = f"({arch.kv_lora_rank} kv_lora_rank + {arch.qk_rope_head_dim} rope)"
    if wl.runtime == "llama.cpp" and arch.mla_legacy:
        # A legacy GGUF (unsplit attn_kv_b, no key_length_mla) is not is_mla(): llama.cpp decompresses
        # and caches per-head K (qk_nope + qk_rope) and V (v_head_dim) for all n_head_kv = n_head heads.
        cells = llama_cpp_kv_cells(arch, wl)
        per = arch.n_heads * (arch.head_dim + arch.v_head_dim)
        total = int(L * per * cells * elem)
        return total, (f"{L} layers × {arch.n_heads} heads × ({arch.head_dim} K + {arch.v_head_dim} V) × {cells:,} "
                       f"cells (legacy GGUF without MLA keys: per-head cache) × {elem_txt} = {total:,} B")
    idx_layers, idx_dim = (arch.indexer.cached_layers(L), arch.indexer.head_dim) if arch.indexer else (0, 0)
    if wl.runtime == "llama.cpp":
        cells = llama_cpp_kv_cells(arch, wl)
        total = int((L * row + idx_layers * idx_dim) * cells * elem)
        # DSA (deepseek32, glm-dsa): a second cache of the indexer keys, index_head_dim per token on each
        # layer with its own indexer (measured: tiny DeepSeek-V3.2 / GLM-5.2 in llama-cpp-python 0.3.36,
        # "llama_kv_cache: … 4 layers … K (f16): 1.00 MiB" for index_head_dim 32 at 4096 cells)
        idx = f" + DSA indexer keys: {idx_layers} layers × {idx_dim}" if idx_layers else ""
        return total, (f"MLA latent (K only, no V): {L} layers × {parts}{idx} × {cells:,} cells (ctx padded to 256"
                       f"{' × ' + str(wl.batch) + ' seqs' if wl.batch > 1 else ''}) × {elem_txt} = {total:,} B")
    if wl.runtime == "vllm":
        tokens = _pad(wl.context, VLLM_BLOCK) * wl.batch
        total = int(L * row * tokens * elem)
        return total, (f"MLA latent: {L} layers × {parts} × {tokens:,} tokens (blocks of 16 × {wl.batch} seqs) "
                       f"× {elem_txt} = {total:,} B")
    # transformers DynamicIndexedLayer (cache_utils.py) keeps [batch, seq, index_head_dim] indexer keys
    total = int(wl.batch * wl.context * (L * row + idx_layers * idx_dim) * elem)
    idx = f" + {idx_layers} indexer layers × {idx_dim} keys" if idx_layers else ""
    return total, (f"MLA latent: {wl.batch} batch × {wl.context:,} seq × ({L} layers × {parts}{idx}) × {elem_txt} "
                   f"= {total:,} B")


def _with_context(wl: Workload, context: int) -> Workload:
    """The same (already validated) workload at another context; skips re-validation for speed."""
    clone = copy.copy(wl)
    object.__setattr__(clone, "context", context)
    return clone


def compute_bytes(arch: Architecture, wl: Workload, context: int | None = None,
                  n_outputs: int | None = None) -> tuple[int, str]:
    """Activation / scratch memory for one forward pass at the workload's worst case."""
    ctx = wl.context if context is None else context
    H, F, V = arch.hidden_size, arch.intermediate_size, arch.vocab_size
    if arch.is_moe:
        F = max(arch.moe_intermediate_size * arch.n_experts_per_tok, arch.shared_expert_intermediate_size)
    if wl.runtime == "llama.cpp":
        return _llama_cpp_compute(arch, wl, ctx, H, F, V, n_outputs)
    if wl.runtime == "vllm":
        # Profiling run over max_num_batched_tokens: one layer's activations in fp16 (hidden states,
        # qkv, MLP gate/up) + fp32 logits for up to max_num_seqs sampled rows.
        T = VLLM_MAX_BATCHED_TOKENS
        act = T * (4 * H + arch.q_dim + 2 * arch.kv_dim + 3 * F) * 2
        logits = VLLM_MAX_NUM_SEQS * V * 4
        total = act + logits
        return total, (f"{T} batched tokens × (4×{H} + {arch.q_dim + 2 * arch.kv_dim} qkv + 3×{F} ffn) × 2 B + "
                       f"{VLLM_MAX_NUM_SEQS} seqs × {V:,} vocab × 4 B logits = {total:,} B")
    # transformers: prefill of the whole prompt, layer by layer under no_grad (one layer's
    # activations alive) + fp32 logits for every prompt position (a plain forward() call; generate()
    # with logits_to_keep=1 needs far less, so this is conservative). SDPA/flash attention on GPU
    # does not materialise the seq² scores.
    B, S = wl.batch, min(ctx, wl.prompt) if wl.prompt_tokens else ctx
    act = B * S * (4 * H + arch.q_dim + 2 * arch.kv_dim + 3 * F) * 2
    logits = B * S * V * 4
    total = act + logits
    return total, (f"{B} × {S:,} tokens × (4×{H} + {arch.q_dim + 2 * arch.kv_dim} + 3×{F}) × 2 B activations + "
                   f"{B} × {S:,} × {V:,} vocab × 4 B fp32 logits = {total:,} B")


def _llama_cpp_compute(arch: Architecture, wl: Workload, ctx: int, H: int, F: int, V: int,
                       n_outputs: int | None = None) -> tuple[int, str]:
    """llama.cpp compute buffer ("compute buffer size" in its log), modelled from the reserved graph.

    llama-context.cpp reserves the worst-case graph for n_ubatch tokens (llama-cpp-python:
    n_ubatch = min(n_ubatch, n_batch), n_batch = min(n_ctx, 512)) with n_outputs = n_ubatch, over
    one sequence's n_kv cells. ggml-alloc frees each tensor after its last use (graph inputs such
    as the KQ mask included), so the buffer is the largest of three phases:
      output:    logits [n_vocab, n_ubatch] f32 + 2 residual-stream tensors [n_embd, n_ubatch] f32;
      attention: without flash attention the KQ scores f32 [n_kv, n_ubatch, n_head] (soft_max runs
                 in place) + the f32 KQ mask [n_kv, n_ubatch]; with flash attention only an f16
                 mask; plus q, k, v, kqv and 3 residual tensors: (3·n_embd + 2·q_dim + 2·kv_dim) ×
                 n_ubatch × 4 B;
      FFN:       gate, up and GLU output [n_ff, n_ubatch] f32 + 2 residual tensors.
    Calibrated on CPU with SmolLM2-135M Q4_K_M (llama-cpp-python 0.3.36, n_ubatch 512): measured
    98.25 MiB at n_ctx 512/1024 (model: 98.25), 99.38 at 2048/4096 (model: 98.25) and
    166.38 MiB at 8192 (model: 166.37) without flash attention; 98.25 MiB with it.
    """
    ub = min(wl.n_ubatch, ctx * wl.batch)
    n_kv = llama_cpp_kv_cells(arch, _with_context(wl, ctx)) // wl.batch
    residual = 2 * H * ub * 4
    # n_outputs: the reserve is for n_ubatch logits rows; generation asks for one per sequence
    # (planner/estimator/repack.py uses that for the pages a CPU process actually touches)
    rows = ub if n_outputs is None else min(ub, n_outputs)
    output = V * rows * 4 + residual
    attn_tensors = (3 * H + 2 * arch.q_dim + 2 * arch.kv_dim) * ub * 4
    if wl.flash_attn:
        attn = n_kv * ub * 2 + attn_tensors
        attn_txt = f"f16 mask {n_kv:,} × {ub} × 2 + q/k/v/out {attn_tensors:,}"
    else:
        attn = n_kv * ub * arch.n_heads * 4 + n_kv * ub * 4 + attn_tensors
        attn_txt = f"{n_kv:,} n_kv × {ub} ubatch × ({arch.n_heads} heads + 1 mask) × 4 B + q/k/v/out {attn_tensors:,}"
    ffn = 3 * F * ub * 4 + residual
    total = max(attn, ffn, output)
    return total, (f"max(logits {V:,} × {rows} × 4 + residual = {output:,}, attention {attn_txt} = {attn:,}, "
                   f"ffn 3 × {F} × {ub} × 4 + residual = {ffn:,}) = {total:,} B")


def overhead_bytes(hw: Hardware, wl: Workload) -> tuple[int, str]:
    """Fixed runtime overhead outside weights/KV/compute.

    GPU: the CUDA context + cuBLAS workspace, ~500 MiB per device as seen in nvidia-smi for an
    idle torch/llama.cpp process; vLLM adds CUDA graphs (~0.5 GiB more, its profiler log).
    Apple/phone/CPU: the process and runtime (~150 MiB for llama.cpp, ~600 MiB for torch).
    """
    n = hw.device_count
    if hw.kind == "gpu":
        per = 1024 * MiB if wl.runtime == "vllm" else 500 * MiB
        total = per * n
        return total, f"{per // MiB} MiB CUDA context{' + graphs' if wl.runtime == 'vllm' else ''} × {n} device(s) = {total:,} B"
    per = 600 * MiB if wl.runtime in ("transformers", "vllm") else 150 * MiB
    return per, f"{per // MiB} MiB runtime/process overhead = {per:,} B"


# ---------------------------------------------------------------- training

def lora_params(arch: Architecture, rank: int, targets: tuple[str, ...]) -> int:
    """LoRA adds A [r × d_in] and B [d_out × r] per target module per layer: r × (d_in + d_out).

    (Hu et al. 2021, "LoRA"; peft `LoraLayer.update_layer`.) MoE experts are not targeted.
    """
    H, Fd = arch.hidden_size, arch.intermediate_size if not arch.is_moe else 0
    dims = {"q": (H, arch.q_dim), "k": (H, arch.kv_dim), "v": (H, arch.kv_dim), "o": (arch.q_dim, H),
            "gate": (H, Fd), "up": (H, Fd), "down": (Fd, H)}
    per_layer = sum(rank * (dims[t][0] + dims[t][1]) for t in targets if dims[t][0] and dims[t][1])
    return per_layer * arch.n_layers


def activation_bytes(arch: Architecture, wl: Workload) -> tuple[int, str]:
    """Training activations without recomputation (Korthikanti et al. 2022, "Reducing Activation
    Recomputation in Large Transformer Models", eq. 1): per layer s·b·h·(34 + 5·a·s/h) bytes with
    16-bit activations; with flash attention the 5·a·s²·b score term is not stored. Plus fp32
    logits and their gradient: b·s·V·8 bytes.
    """
    s, b, h, a, L, V = wl.context, wl.batch, arch.hidden_size, arch.n_heads, arch.n_layers, arch.vocab_size
    per_layer = 34 * s * b * h + (0 if wl.flash_attn else 5 * a * s * s * b)
    logits = b * s * V * 8
    total = per_layer * L + logits
    score = "" if wl.flash_attn else f" + 5·{a}·{s}²·{b}"
    return total, f"{L} layers × (34·{s}·{b}·{h}{score}) + logits {b}·{s}·{V:,}·8 = {total:,} B"


def training_bytes(arch: Architecture, wl: Workload, weights_bytes: int, scheme_family: str,
                   scheme_name: str) -> tuple[int, str]:
    """Memory beyond the (frozen or trained) weights for fine-tuning; 0 for inference.

    Full fine-tune, mixed-precision Adam (Rajbhandari et al. 2020, ZeRO, §3.1: 16 bytes/param =
    2 fp16 weights + 2 fp16 grads + 4 fp32 master + 4 momentum + 4 variance). The weights are
    already in `weights_bytes`, so training adds 2 (grad) + 4 (master) + 8 (Adam) = 14 B/param for
    16-bit weights, or 4 (grad) + 8 (Adam) = 12 B/param for FP32 weights.
    LoRA / QLoRA: the base stays frozen as loaded; adapters are trained in fp32 (peft upcasts
    adapter weights, autocast_adapter_dtype=True): 4 weight + 4 grad + 8 Adam = 16 B per LoRA param.
    QLoRA's paged AdamW can spill optimizer state to host RAM; we count it on device (worst case).
    """
    if wl.mode == "inference":
        return 0, "inference: no optimizer state, gradients or stored activations = 0 B"
    act, act_txt = activation_bytes(arch, wl)
    P = arch.total_params
    if wl.mode == "full":
        per = 12 if scheme_name == "FP32" else 14
        state = P * per
        total = state + act
        return total, (f"{P:,} params × {per} B (grads + fp32 master + Adam m,v) + activations [{act_txt}] = {total:,} B")
    n_lora = lora_params(arch, wl.lora_rank, wl.lora_targets)
    state = n_lora * 16
    total = state + act
    return total, (f"LoRA {n_lora:,} params (rank {wl.lora_rank} × (d_in + d_out) × {len(wl.lora_targets)} modules × "
                   f"{arch.n_layers} layers) × 16 B + activations [{act_txt}] = {total:,} B")
