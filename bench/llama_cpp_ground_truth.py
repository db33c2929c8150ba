"""Ground truth for every architecture the planner models exactly and llama.cpp converts: a tiny
random-weight instance of each, run through the real tools and compared with the estimator.

    python bench/llama_cpp_ground_truth.py [--workdir DIR] [--only TYPE ...] [--markdown]

--only also takes the names in VARIANTS (another instance of a type: Falcon-40B's block, ...).

The architectures are computed when the bench runs: each model type of transformers whose class
defaults the planner counts exactly (tests/planner/architecture_sweep.py `verdict` says "exact")
and whose class llama.cpp's converter registers (planner.model_definition.llama_cpp_convertible).
For each: `tiny_config` shrinks the default config (hidden 256, 4 heads, 2 KV heads, head_dim 64,
FFN 512, 8 experts of width 64 with 2 per token, 4 layers with per-layer lists cycled to the new
depth, small MLA ranks and Mamba / linear-attention widths, windows of 256 < the context), the
model is saved with random weights and the demo model's tokenizer (SmolLM2, 49,152 tokens),
converted to an F16 GGUF by the vendored convert_hf_to_gguf.py (with the hybrid bench's converter
patches where a type needs one), quantized to Q4_K_M with llama_model_quantize, and each file is
loaded by llama-cpp-python at n_ctx 4096 in a subprocess with a verbose log (n_ubatch 512, flash
attention off, swa_full on: llama-cpp-python's defaults, the estimator's Workload defaults).

Compared with the estimator reading the saved config.json (targets as bench/estimator_accuracy.py):
tensor names and ggml shapes exact (gguf.GGUFReader against Architecture.tensors(), gguf_tensors()
where the file keeps MTP blocks); GGUF tensor bytes of each file within 0.1 %; "llama_kv_cache:
size", "llama_memory_recurrent: size" within 1 % (or the log's 0.01 MiB rounding); the CPU compute
buffer within 5 %. A type whose tiny instance cannot be built, converted, quantized or loaded is
"not measured" with the reason, not a failure of the planner. Takes about a minute per type on two
cores.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench.estimator_accuracy import llama_buffers  # noqa: E402
from bench.hybrid_ground_truth import PUBLISHED_SPELLING, Q4_K_M, quantize  # noqa: E402
from bench.hybrid_ground_truth import convert as convert_patched  # noqa: E402
from bench.moe_mla_ground_truth import CONVERTER, MiB, N_CTX, demo_gguf, save_tiny  # noqa: E402
from planner.estimator import HARDWARE_PROFILES, Architecture, EstimatorError, Workload, estimate  # noqa: E402

HARDWARE = "cpu-2core-24gb"
TARGETS = {"tensors": 0.0, "bytes": 0.1, "kv": 1.0, "recurrent": 1.0, "compute": 5.0}   # |error| %
ROUNDING_MIB = 0.005   # llama.cpp logs MiB with two decimals
LAYERS = 4
# generic shrink: config key -> tiny value (applied where the key holds a positive int)
SIZES = {
    **dict.fromkeys(("hidden_size", "d_model", "n_embd"), 256),
    **dict.fromkeys(("num_attention_heads", "n_head", "num_heads"), 4),
    **dict.fromkeys(("head_dim", "attention_head_dim"), 64),
    **dict.fromkeys(("intermediate_size", "intermediate_size_mlp", "ffn_hidden_size", "n_inner"), 512),
    **dict.fromkeys(("moe_intermediate_size", "shared_expert_intermediate_size", "shared_intermediate_size"), 64),
    **dict.fromkeys(("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts"), 8),
    # MLA (DeepSeek): the ranks and head parts of bench/moe_mla_ground_truth.py
    "kv_lora_rank": 64, "q_lora_rank": 96, "qk_nope_head_dim": 32, "qk_rope_head_dim": 16, "v_head_dim": 32,
    # Mamba / Mamba-2 / gated delta net: the widths of bench/hybrid_ground_truth.py
    "mamba_n_heads": 8, "mamba_d_head": 64, "mamba_d_ssm": 512, "mamba_d_state": 32, "mamba_dt_rank": 16,
    "mamba_num_heads": 8, "mamba_head_dim": 64, "ssm_state_size": 32,
    "linear_key_head_dim": 32, "linear_value_head_dim": 32, "linear_num_key_heads": 2, "linear_num_value_heads": 4,
    # windows smaller than the context
    "sliding_window": 256, "attention_chunk_size": 256,
}
AT_MOST = {"num_key_value_heads": 2, "num_kv_heads": 2, "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1,
           "n_groups": 2}   # kept where already smaller (MQA stays MQA)
LAYER_KEYS = ("num_hidden_layers", "num_layers", "n_layer", "n_layers")
# model_type -> fields set after the generic shrink, only where it breaks a type
OVERRIDES: dict[str, dict[str, Any]] = {
    "bamba": {"attn_layer_indices": [2]},   # the default has no attention layer; the converter needs one
    "falcon_h1": {"head_dim": 64},          # the converter reads head_dim, which the default leaves out
    "cohere2": {"rotary_pct": 1.0},         # the converter reads it (published config.json files hold it)
    "olmoe": {"num_key_value_heads": 4},    # as OLMoE is published: llama.cpp's olmoe has no GQA K norm
    "glm4_moe_lite": {"first_k_dense_replace": 1},   # as GLM-4.7-Flash is published, matching mlp_layer_types
    # GPT-2's converter reads n_ctx (published config.json files hold it) and sizes position_embd by it
    "gpt2": {"n_positions": N_CTX, "n_ctx": N_CTX}, "gpt-sw3": {"n_positions": N_CTX, "n_ctx": N_CTX},
    "gpt_bigcode": {"n_positions": N_CTX},
    # the converter writes feed_forward_length = 4 × hidden_size and takes the K/V heads from num_kv_heads
    # (else 1): tiiuae/falcon-7b's config.json leaves it out, the saved class default states 71
    "falcon": {"ffn_hidden_size": 1024, "num_kv_heads": 1},
    "mamba2": {"num_heads": 8},   # expand × hidden_size / head_dim, the head count the converter writes
    # llama.cpp's minicpm3 takes V as hidden_size / heads wide and caches K/V for every head (MiniCPM3-4B's shape)
    "minicpm3": {"num_key_value_heads": 4, "v_head_dim": 64},
    # llama.cpp's mellum asserts at least one sliding-window layer; the class default has none
    "mellum": {"layer_types": ["sliding_attention"] * 3 + ["full_attention"]},
    # Kimi Linear: one MLA layer among KDA layers, KDA heads = attention heads (llama.cpp sizes KDA by them),
    # the layout also as linear_attn_config (the converter reads it there, as the published config.json
    # holds it), token ids inside the demo vocabulary
    "kimi_linear": {"layer_types": ["linear_attention"] * 3 + ["full_attention"], "linear_num_heads": 4,
                    "linear_head_dim": 64, "num_experts_per_token": 2, "first_k_dense_replace": 1,
                    "linear_attn_config": {"full_attn_layers": [4], "kda_layers": [1, 2, 3], "num_heads": 4,
                                           "head_dim": 64, "short_conv_kernel_size": 4},
                    "moe_router_activation_func": "sigmoid",   # as published: the converter's gating-function key
                    "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2},
    # Gemma 3n: llama.cpp 0.3.36 takes the per-layer input width (256), the LAuReL rank (64), a KV cache on
    # the first 20 layers and full attention on every 5th as Gemma 3n E2B/E4B have them, not from the file,
    # so the tiny model has that layout: 21 layers, the last one KV-shared; a per-layer vocabulary below
    # vocab_size (the converter pads it with zero rows, as it does Gemma 3n's 262,144 to 262,400)
    "gemma3n_text": {"intermediate_size": 512, "num_hidden_layers": 21, "num_kv_shared_layers": 1,
                     "hidden_size_per_layer_input": 256, "laurel_rank": 64, "vocab_size_per_layer_input": 49000,
                     "layer_types": ["full_attention" if (i + 1) % 5 == 0 else "sliding_attention" for i in range(21)],
                     "activation_sparsity_pattern": [0.95] * 10 + [0.0] * 11},
    # HRM-Text: 2 blocks per stack at the class's cycles (H 2, L 3): 4 blocks of weights, 16 cache slots, the
    # pair as a saved config.json holds it (the generic shrink sets num_hidden_layers, not the per-stack count)
    "hrm_text": {"num_layers_per_stack": 2, "num_hidden_layers": 16},
    # MiMo-V2-Flash: one full layer and three sliding ones, V narrower than K
    "mimo_v2_flash": {"layer_types": ["full_attention"] + ["sliding_attention"] * 3, "v_head_dim": 32,
                      "sliding_window": 129},
    # Laguna: per-layer head counts that differ; the sliding layers where llama.cpp 0.3.36 puts them (it does
    # not read layer_types: every layer but layer 0 of four slides, measured with the laguna-full variant)
    "laguna": {"num_attention_heads_per_layer": [4, 8, 4, 4],
               "layer_types": ["full_attention", "sliding_attention", "sliding_attention", "sliding_attention"]},
    # dots3 note text: layer_types cycle to indexed, indexed, sliding, sliding; the sliding layers' own widths
    # (8 heads, kv_lora 96, nope 48, V 48; q_lora and rope shared, as the converter requires); shared expert
    # as wide as a routed one (llama.cpp's n_ff_exp × n_expert_shared); a small indexer; token ids inside the
    # demo vocabulary
    "dots3_note_text": {"per_layer_config": {str(i): {"num_attention_heads": 8, "num_key_value_heads": 8,
                                                      "kv_lora_rank": 96, "qk_nope_head_dim": 48, "head_dim": 64,
                                                      "v_head_dim": 48} for i in (2, 3)},
                        "shared_experts_intermediate_size": 64, "index_n_heads": 4, "index_head_dim": 64,
                        "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2},
    # HY V4: token ids inside the demo vocabulary (the class default pads with id 120002); indexer_types
    # cycled to full, full, shared, shared
    "hy_v4": {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2},
    # DeepSeek-V4: head_dim 512 (llama.cpp 0.3.36 fails a graph assert at 64), o_groups dividing the 4 heads
    # (it asserts n_head % o_groups == 0), small output / indexer widths
    "deepseek_v4": {"head_dim": 512, "o_groups": 2, "o_lora_rank": 64, "index_n_heads": 4},
    # Nemotron-H: the dense block kinds (the class default also has an MoE layer, measured as nemotron_h-moe*)
    "nemotron_h": {"layers_block_type": ["linear_attention", "mlp", "full_attention", "mlp"]},
}
# further instances of a model type, measured under their own name with --only NAME:
# name -> (model type, fields over its default config, fields over the tiny config after OVERRIDES)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # Falcon-40B's block: grouped K/V heads, ln_attn and ln_mlp
    "falcon-40b": ("falcon", {"new_decoder_architecture": True, "hidden_size": 8192, "num_attention_heads": 128,
                              "num_kv_heads": 8, "ffn_hidden_size": 32768}, {"num_kv_heads": 2}),
    # Falcon 2 (11B): the new decoder architecture with one shared LayerNorm
    "falcon-11b": ("falcon", {"new_decoder_architecture": True, "num_ln_in_parallel_attn": 1, "num_kv_heads": 8,
                              "hidden_size": 4096, "num_attention_heads": 32, "ffn_hidden_size": 16384},
                   {"num_kv_heads": 2}),
    # HRM-Text with linear biases (attention_bias, mlp_bias), which llama.cpp's hrm_text does not create
    "hrm_text-bias": ("hrm_text", {"attention_bias": True, "mlp_bias": True}, {"attention_bias": True, "mlp_bias": True}),
    # Granite SWA MoE with its shared expert (shared_mlp)
    "granitemoe_swa-shared": ("granitemoe_swa", {"shared_intermediate_size": 1024}, {"shared_intermediate_size": 128}),
    # Laguna as its class defaults have it: full attention on every layer (sliding_window still set)
    "laguna-full": ("laguna", {}, {"layer_types": ["full_attention"] * 4}),
    # Nemotron-H with MoE layers (Nemotron 3 Nano's block kinds), without and with the latent projection,
    # and the class default's mix of MLP and MoE layers (which llama.cpp does not load)
    "nemotron_h-moe": ("nemotron_h", {}, {"layers_block_type": ["linear_attention", "moe", "full_attention", "moe"],
                                          "moe_shared_expert_intermediate_size": 128}),
    "nemotron_h-moe-latent": ("nemotron_h", {}, {"layers_block_type": ["linear_attention", "moe", "full_attention",
                                                                       "moe"],
                                                 "moe_shared_expert_intermediate_size": 128, "moe_latent_size": 128}),
    "nemotron_h-moe-mlp": ("nemotron_h", {}, {"layers_block_type": ["linear_attention", "moe", "full_attention", "mlp"],
                                              "moe_shared_expert_intermediate_size": 128}),
}
# model types converted through bench/hybrid_ground_truth.py's converter patches and config spellings
PATCHED = {"qwen3_next": "qwen3-next", "jamba": "jamba", "nemotron_h": "nemotron-h", "granitemoehybrid": "granite-4"}
MTP_KEYS = ("mtp_num_hidden_layers", "num_nextn_predict_layers")
# The converter with every text model's set_vocab swapped for the GPT-2 BPE reader: the demo
# tokenizer is a GPT-2 BPE, which the SentencePiece readers (Gemma's) do not accept; the tokenizer
# changes no tensor. Used when the plain conversion fails.
GPT2_VOCAB_CONVERT = """
import runpy, sys
sys.path.insert(0, sys.argv[1])
sys.argv = [sys.argv[1] + "/convert_hf_to_gguf.py"] + sys.argv[2:]
import conversion
registered = conversion.get_model_class
def gpt2_vocab(name, mmproj=False):
    model_class = registered(name, mmproj)
    if not mmproj:
        model_class.set_vocab = lambda self: self._set_vocab_gpt2()
    return model_class
conversion.get_model_class = gpt2_vocab
runpy.run_path(sys.argv[0], run_name="__main__")
"""
LOAD = """
import sys, llama_cpp
llama_cpp.Llama(model_path=sys.argv[1], n_ctx=int(sys.argv[2]), n_gpu_layers=0, n_threads=2, verbose=True)
"""


class NotMeasured(Exception):
    """The tiny instance could not be built, converted, quantized or loaded (not the planner's fault)."""


@dataclass
class Check:
    model_type: str
    what: str
    metric: str          # a TARGETS key
    estimate: float
    measured: float
    unit: str = "B"
    same: bool | None = None   # set for exact comparisons (tensor sets)

    @property
    def error_pct(self) -> float:
        if self.measured == 0:
            return 0.0 if self.estimate == 0 else float("inf")
        return (self.estimate - self.measured) / self.measured * 100

    @property
    def ok(self) -> bool:
        if self.same is not None:
            return self.same
        if self.unit == "MiB-log" and abs(self.estimate - self.measured) <= ROUNDING_MIB * MiB:
            return True
        return abs(self.error_pct) <= TARGETS[self.metric]


# ----------------------------------------------------------------------------- which types

def exact_convertible(only: list[str] | None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """[(model_type, class)] the planner models exactly and llama.cpp converts, and [(model_type,
    why not)] for the --only types that are not."""
    from tests.planner.architecture_sweep import verdict

    from planner.model_definition import causal_lm_model_types, llama_cpp_convertible, load_libraries

    models = load_libraries()["models"]
    registered = llama_cpp_convertible()
    chosen, skipped = [], []
    variants = [name for name in only or () if name in VARIANTS]
    for mt in [m for m in only or causal_lm_model_types() if m not in VARIANTS] + variants:
        base = VARIANTS.get(mt, (mt,))[0]
        cls = (models.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES.get(base)
               or models.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(base))
        if cls not in registered:   # cheap filter before building the default model on the meta device
            skipped.append((mt, f"llama.cpp's converter does not register {cls}"))
            continue
        v = verdict(variant_config(mt))
        if v.status != "exact":
            skipped.append((mt, f"the planner's verdict on its default config is {v.status}: {v.reason[:160]}"))
        elif v.class_name not in registered:
            skipped.append((mt, f"llama.cpp's converter does not register {v.class_name}"))
        else:
            chosen.append((mt, v.class_name))
    return chosen, (skipped if only else [])


# ----------------------------------------------------------------------------- tiny config

def variant_config(name: str) -> dict[str, Any]:
    """The default config of a model type, or of a VARIANTS entry's type with its fields."""
    from tests.planner.architecture_sweep import default_config

    base, extra, _ = VARIANTS.get(name, (name, {}, {}))
    return {**default_config(base), **extra}


def tiny_config(cfg: dict[str, Any], vocab: int, variant: str = "") -> dict[str, Any]:
    """cfg shrunk generically (see SIZES), its text part given the demo tokenizer's vocabulary and
    N_CTX positions; nested vision/audio parts shrunk the same way."""
    out = _shrink(dict(cfg))
    for key, value in cfg.items():
        if key.endswith("_config") and isinstance(value, dict):
            out[key] = _shrink(dict(value))
    text = out.get("text_config") if isinstance(out.get("text_config"), dict) else out
    text.update(vocab_size=vocab, max_position_embeddings=N_CTX)
    return {**out, **OVERRIDES.get(cfg.get("model_type", ""), {}), **VARIANTS.get(variant, ("", {}, {}))[2]}


def _shrink(cfg: dict[str, Any]) -> dict[str, Any]:
    old = next((cfg[k] for k in LAYER_KEYS if isinstance(cfg.get(k), int)), None)
    if old:
        for key in LAYER_KEYS:
            if isinstance(cfg.get(key), int):
                cfg[key] = LAYERS
        for key, value in list(cfg.items()):   # per-layer lists and patterns follow the new depth
            if isinstance(value, (list, str)) and len(value) == old and old > 1:
                cycled = [value[i % old] for i in range(LAYERS)]
                cfg[key] = "".join(cycled) if isinstance(value, str) else cycled
            elif (isinstance(value, list) and value and all(isinstance(v, int) for v in value)
                  and ("layers" in key or "idxs" in key)):   # layer indices: those still there
                cfg[key] = [v for v in value if v < LAYERS]
        if isinstance(cfg.get("first_k_dense_replace"), int):
            cfg["first_k_dense_replace"] = min(cfg["first_k_dense_replace"], LAYERS - 1)
        for key in [k for k in cfg if k.endswith("_layer_period")]:   # Jamba: a period the depth holds
            period = cfg[key]
            while isinstance(period, int) and period > LAYERS:
                period //= 2
            offset_key = key.replace("_period", "_offset")
            cfg[key] = period
            if isinstance(cfg.get(offset_key), int):
                cfg[offset_key] %= period
    for key, tiny in SIZES.items():
        if isinstance(cfg.get(key), int) and not isinstance(cfg[key], bool) and cfg[key] > 0:
            cfg[key] = min(cfg[key], tiny) if key in ("sliding_window", "attention_chunk_size") else tiny
    for key, most in AT_MOST.items():
        if isinstance(cfg.get(key), int) and cfg[key] > most:
            cfg[key] = most
    if isinstance(cfg.get("kv_lora_rank"), int) and isinstance(cfg.get("num_attention_heads"), int):
        cfg["num_key_value_heads"] = cfg["num_attention_heads"]   # MLA: the converter splits kv_b_proj by it
    experts = next((cfg[k] for k in ("num_local_experts", "num_experts", "n_routed_experts") if
                    isinstance(cfg.get(k), int)), None)
    if experts and isinstance(cfg.get("num_experts_per_tok"), int):
        cfg["num_experts_per_tok"] = min(cfg["num_experts_per_tok"], experts)
    if isinstance(cfg.get("topk_group"), int) and isinstance(cfg.get("n_group"), int):
        cfg["topk_group"] = min(cfg["topk_group"], cfg["n_group"])
    return cfg


# ----------------------------------------------------------------------------- the real tools

@functools.cache
def demo_vocab() -> int:
    import transformers

    gguf = demo_gguf()
    return len(transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name))


def build(mt: str, cls: str, folder: Path) -> dict[str, Any]:
    """Save the tiny random-weight model of model type `mt`; returns its config.json as saved."""
    import transformers

    from planner.model_definition import load_libraries

    transformers.utils.logging.disable_progress_bar()
    base = VARIANTS.get(mt, (mt,))[0]
    cfg = tiny_config(variant_config(mt), demo_vocab(), mt)
    config_class = load_libraries()["configs"].CONFIG_MAPPING[base].__name__
    fields = {k: v for k, v in cfg.items() if k not in (
        "model_type", "transformers_version", "architectures", "_name_or_path", "vocab_size",
        "max_position_embeddings", "id2label", "label2id")}
    # save_tiny builds through AutoModelForCausalLM; a vision-language class through its own auto class
    auto = (transformers.AutoModelForImageTextToText
            if base in load_libraries()["models"].MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES else transformers.AutoModelForCausalLM)
    try:
        with mock.patch.object(transformers, "AutoModelForCausalLM", auto):
            save_tiny(config_class, cls, fields, folder)
    except Exception as exc:  # noqa: BLE001
        raise NotMeasured(f"transformers cannot build the tiny {cls}: {type(exc).__name__}: {str(exc)[:200]}") from None
    saved = json.loads((folder / "config.json").read_text())
    if base == "kimi_linear":
        _kimi_linear_dense_mlp_names(folder)
    if base == "hy_v4":
        _hy_v4_published_names(folder)
    if base == "deepseek_v4":
        _deepseek_v4_published_layout(folder, saved)
    if base == "gemma3n_text":
        _gemma3n_shared_layer_kv(folder, saved)
    if base == "dots3_note_text":   # the file in the published spelling; the estimator reads transformers'
        (folder / "config.json").write_text(json.dumps(_dots3_published_spelling(saved), indent=2))
    if base == "mimo_v2_flash":
        saved = _mimo_v2_published_spelling(saved)
        (folder / "config.json").write_text(json.dumps(saved, indent=2))
    if PATCHED.get(mt) in PUBLISHED_SPELLING:
        saved = PUBLISHED_SPELLING[PATCHED[mt]](saved)
        (folder / "config.json").write_text(json.dumps(saved, indent=2))
    return saved


def _kimi_linear_dense_mlp_names(folder: Path) -> None:
    """transformers 5.23 saves Kimi Linear's dense MLP under block_sparse_moe.* (its save-time renaming
    of mlp. applies to every layer); the published checkpoints, which the converter maps, keep it as
    mlp.gate_proj / up_proj / down_proj. Only the names change."""
    from safetensors.torch import load_file, save_file

    for path in folder.glob("*.safetensors"):
        tensors = load_file(path)
        renamed = {re.sub(r"\.block_sparse_moe\.((gate|up|down)_proj\.weight)$", r".mlp.\1", k): v
                   for k, v in tensors.items()}
        save_file(renamed, path, metadata={"format": "pt"})


def _deepseek_v4_published_layout(folder: Path, cfg: dict[str, Any]) -> None:
    """The converter reads DeepSeek-V4 only as published: config keys compress_ratios, num_hash_layers and
    qk_rope_head_dim, tensors without the model. prefix (embed, hc_head_*, attn.kv_norm, which transformers 5.23
    saves as embed_tokens, hc_head.hc_*, attn.norm), routed experts as FP4 (two codes a byte) with one E8M0
    scale byte per 32 (random codes, scale 2^-7). Other tensors stay as saved."""
    import torch
    from safetensors.torch import load_file, save_file

    rate = {"sliding_attention": 0, **cfg["compress_rates"]}
    published = {**cfg, "compress_ratios": [rate[t] for t in cfg["layer_types"]],
                 "num_hash_layers": cfg["mlp_layer_types"].count("hash_moe"),
                 "qk_rope_head_dim": int(cfg["head_dim"] * cfg["partial_rotary_factor"])}
    (folder / "config.json").write_text(json.dumps(published, indent=2))
    codes = torch.Generator().manual_seed(0)
    for path in folder.glob("*.safetensors"):
        out = {}
        for k, v in load_file(path).items():
            k = {"embed_tokens.weight": "embed.weight"}.get(k.removeprefix("model."), k.removeprefix("model."))
            k = re.sub(r"\.attn\.norm\.weight$", ".attn.kv_norm.weight", k.replace("hc_head.hc_", "hc_head_"))
            if re.fullmatch(r"layers\.\d+\.ffn\.experts\.\d+\.w[123]\.weight", k):
                rows, cols = v.shape
                out[k] = torch.randint(0, 256, (rows, cols // 2), dtype=torch.uint8, generator=codes)
                out[k.removesuffix("weight") + "scale"] = torch.full((rows, cols // 32), 120, dtype=torch.uint8)
            else:
                out[k] = v
        save_file(out, path, metadata={"format": "pt"})


def _hy_v4_published_names(folder: Path) -> None:
    """transformers 5.23 saves HY V4 by reversing its load-time renames one by one, which leaves names
    neither the published checkpoint nor the converter has: model.layers.N.hc_pre.hc_attn_layer.hc_fn for
    hc_attn_layer.hc_pre.hc_fn, model.hc_pre.hc_head.hc_head_fn for model.hc_head.hc_head_fn, and the dense
    and shared MLPs' gate_proj as linear_gate (only the attention gate is linear_gate). Only the names change."""
    from safetensors.torch import load_file, save_file

    for path in folder.glob("*.safetensors"):
        renamed = {}
        for k, v in load_file(path).items():
            k = re.sub(r"\.hc_pre\.(hc_attn_layer|hc_mlp_layer)\.hc_(fn|base|scale)$", r".\1.hc_pre.hc_\2", k)
            k = re.sub(r"^model\.hc_pre\.hc_head\.", "model.hc_head.", k)
            renamed[re.sub(r"\.mlp\.(shared_experts\.)?linear_gate\.weight$", r".mlp.\1gate_proj.weight", k)] = v
        save_file(renamed, path, metadata={"format": "pt"})


def _dots3_published_spelling(cfg: dict[str, Any]) -> dict[str, Any]:
    """dots3 note's config.json as its checkpoint spells it (Dots3NoteConfig: the text fields at the top
    level of model_type dots3_note) with the keys conversion/dots3.py reads: the sliding layers' widths as
    swa_*, the window as sliding_window_size, first_k_dense_replace, scoring_func / topk_method, use_dsa,
    rope_theta / swa_rope_theta. transformers' own spelling (per_layer_config) does not convert: the
    converter reads config.json through AutoConfig, which folds swa_* into per_layer_config."""
    kinds = cfg["layer_types"]
    sliding = {int(k): v for k, v in cfg["per_layer_config"].items()}[kinds.index("sliding_attention")]
    widths = {k: sliding.get(k, cfg[k]) for k in ("num_attention_heads", "num_key_value_heads", "q_lora_rank",
                                                  "kv_lora_rank", "head_dim", "qk_nope_head_dim", "qk_rope_head_dim",
                                                  "v_head_dim")}
    out = {k: v for k, v in cfg.items() if k not in ("per_layer_config", "sliding_window", "rope_parameters")}
    return {**out, "model_type": "dots3_note", "architectures": ["Dots3NoteForCausalLM"],
            **{f"swa_{k}": v for k, v in widths.items()}, "sliding_window_size": cfg["sliding_window"],
            "first_k_dense_replace": cfg["mlp_layer_types"].index("sparse"), "scoring_func": "sigmoid",
            "topk_method": "noaux_tc", "use_dsa": True, "rope_theta": 80000000.0, "swa_rope_theta": 50000.0,
            # the towers' configs as the checkpoint has them: their adapters write the text width (the
            # converter's tokenizer reads the whole Dots3NoteConfig, which checks it)
            "vision_config": {"adapter_out_dim": cfg["hidden_size"]}, "audio_config": {"adapter_out_dim": cfg["hidden_size"]}}


def _mimo_v2_published_spelling(cfg: dict[str, Any]) -> dict[str, Any]:
    """MiMo-V2-Flash's config.json as published spells the layout the converter reads: the SWA layers as
    hybrid_layer_pattern (1 = sliding), their head counts and widths as swa_* keys, the router's
    topk_method, one rope_parameters entry with the partial rotary factor."""
    sliding = [1 if t == "sliding_attention" else 0 for t in cfg["layer_types"]]
    return {**cfg, "hybrid_layer_pattern": sliding, "swa_num_key_value_heads": 2 * cfg["num_key_value_heads"],
            "swa_head_dim": cfg["head_dim"], "swa_v_head_dim": cfg["v_head_dim"],
            "swa_num_attention_heads": cfg["num_attention_heads"], "topk_method": "noaux_tc",
            "rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0, "partial_rotary_factor": 0.334}}


def _gemma3n_shared_layer_kv(folder: Path, cfg: dict[str, Any]) -> None:
    """The published Gemma 3n checkpoints hold k_proj, v_proj and k_norm on the KV-shared layers too,
    and llama.cpp loads them there; transformers 5.23 builds and saves none. Random ones are added,
    shaped as on the other layers."""
    import torch
    from safetensors.torch import load_file, save_file

    layers, shared = cfg["num_hidden_layers"], cfg["num_kv_shared_layers"]
    for path in folder.glob("*.safetensors"):
        tensors = load_file(path)
        source = f"model.layers.{layers - shared - 1}.self_attn."
        if source + "k_proj.weight" not in tensors:
            continue
        for i in range(layers - shared, layers):
            for part in ("k_proj.weight", "v_proj.weight", "k_norm.weight"):
                tensors[f"model.layers.{i}.self_attn.{part}"] = torch.randn_like(tensors[source + part])
        save_file(tensors, path, metadata={"format": "pt"})


def convert_and_quantize(mt: str, folder: Path, work: Path, notes: list[str]) -> dict[str, Path]:
    f16, q4 = work / f"{mt}-F16.gguf", work / f"{mt}-Q4_K_M.gguf"
    try:
        convert_patched(PATCHED.get(mt, mt), folder, f16)
    except RuntimeError as exc:
        first = _last_error(str(exc))
        done = subprocess.run([sys.executable, "-c", GPT2_VOCAB_CONVERT, str(CONVERTER.parent), str(folder),
                               "--outtype", "f16", "--outfile", str(f16)], capture_output=True, text=True)
        if done.returncode:
            raise NotMeasured(f"convert_hf_to_gguf.py failed: {first}") from None
        notes.append(f"converted with the GPT-2 vocabulary reader (the plain conversion failed: {first[:120]})")
    try:
        quantize(f16, q4)
    except RuntimeError as exc:
        raise NotMeasured(f"llama_model_quantize (Q4_K_M = {Q4_K_M}) failed: {_last_error(str(exc))}") from None
    return {"F16": f16, "Q4_K_M": q4}


def load_log(path: Path) -> dict[str, int]:
    """Bytes from llama.cpp's load log: attention KV, recurrent state, CPU compute buffer."""
    done = subprocess.run([sys.executable, "-c", LOAD, str(path), str(N_CTX)], capture_output=True, text=True,
                          timeout=900)
    log = done.stderr + done.stdout
    if done.returncode:
        raise NotMeasured(f"llama-cpp-python cannot load {path.name}: {_last_error(log)}")
    mib = lambda pattern: round(sum(float(m) for m in re.findall(pattern, log)) * MiB)  # noqa: E731
    return {"kv": mib(r"llama_kv_cache: size = +([\d.]+) MiB"),
            "recurrent": mib(r"llama_memory_recurrent: size = +([\d.]+) MiB"),
            "compute": llama_buffers(log)["compute"]}


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    causes = [ln for ln in lines if re.search(r"error loading model|GGML_ASSERT|failed to quantize", ln)]
    errors = [ln for ln in lines if re.search(r"error|Error|failed|not found|unknown", ln)]
    return (causes or errors or lines or ["(no output)"])[-1][:300]


# ----------------------------------------------------------------------------- comparison

def measure(mt: str, cls: str, work: Path) -> tuple[list[Check], list[str]]:
    """The checks of one model type, and lines explaining differences."""
    from gguf import GGUFReader

    folder = work / mt
    notes: list[str] = []
    cfg = build(mt, cls, folder)
    files = convert_and_quantize(mt, folder, work, notes)
    logs = {scheme: load_log(path) for scheme, path in files.items()}
    readers = {scheme: GGUFReader(path) for scheme, path in files.items()}
    real = {(t.name, tuple(int(d) for d in t.shape)) for t in readers["F16"].tensors}
    try:
        arch = Architecture.from_config(cfg)
        if arch.mtp_in_gguf and not any(_layer(n) >= arch.n_layers for n, _ in real):
            # a transformers model has no MTP weights, so the converted file has none either
            cfg = {**cfg, **dict.fromkeys(MTP_KEYS, 0)}
            arch = Architecture.from_config(cfg)
            notes.append("MTP layers set to 0: the tiny checkpoint holds none")
        wl = Workload(runtime="llama.cpp", context=N_CTX)
        rows = {r.scheme: r for r in estimate(arch, HARDWARE_PROFILES[HARDWARE], wl, schemes=list(files)).rows}
    except EstimatorError as exc:
        return [Check(mt, f"estimator refused the tiny config: {exc.field}: {exc.message}"[:90], "tensors", 0, 1,
                      same=False)], []
    mine = {(n, tuple(s)) for n, s, _ in arch.tensors()}
    if real != mine and real > mine:   # the file keeps MTP blocks llama.cpp skips
        mine = {(n, tuple(s)) for n, s, _ in arch.gguf_tensors()}
    checks = [Check(mt, "tensor names/shapes (count)", "tensors", len(mine), len(real), "n", same=real == mine)]
    for name, shape in sorted(mine - real)[:6]:
        notes.append(f"only in the estimate: {name} {shape}")
    for name, shape in sorted(real - mine)[:6]:
        notes.append(f"only in the F16 file: {name} {shape}")
    for scheme, reader in readers.items():
        row, log = rows[scheme], logs[scheme]
        checks.append(Check(mt, f"GGUF tensor bytes {scheme}", "bytes", row.gguf_file_tensor_bytes,
                            sum(int(t.n_bytes) for t in reader.tensors)))
        checks.append(Check(mt, f"KV {scheme} load", "kv", row.kv_cache_bytes, log["kv"], "MiB-log"))
        if row.recurrent_state_bytes or log["recurrent"]:
            checks.append(Check(mt, f"recurrent {scheme} load", "recurrent", row.recurrent_state_bytes,
                                log["recurrent"], "MiB-log"))
        checks.append(Check(mt, f"compute buffer {scheme} load", "compute", row.compute_bytes, log["compute"],
                            "MiB-log"))
    return checks, notes


def _layer(name: str) -> int:
    m = re.match(r"blk\.(\d+)\.", name)
    return int(m.group(1)) if m else -1


def print_check(c: Check) -> None:
    if c.unit == "n":
        est, meas, err = f"{c.estimate:,.0f}", f"{c.measured:,.0f}", "exact" if c.same else "differs"
    else:
        est, meas, err = f"{c.estimate / MiB:,.3f} MiB", f"{c.measured / MiB:,.3f} MiB", f"{c.error_pct:+.3f} %"
    print(f"{c.model_type:17} {c.what:32} {est:>14} {meas:>14} {err:>10}  {'ok' if c.ok else 'FAIL'}", flush=True)


def summary(results: dict[str, list[Check]], not_measured: dict[str, str], markdown: bool) -> None:
    print(f"\n{len(results)} architectures measured, {len(not_measured)} not measured")
    for metric, target in TARGETS.items():
        having = [mt for mt, cs in results.items() if any(c.metric == metric for c in cs)]
        good = [mt for mt in having if all(c.ok for c in results[mt] if c.metric == metric)]
        print(f"  {metric:10} ({'exact' if metric == 'tensors' else f'±{target:g} %'}): "
              f"{len(good)} of {len(having)} meet the target")
    failures = [c for cs in results.values() for c in cs if not c.ok]
    print("failures:" if failures else "failures: none")
    for c in failures:
        print(f"  {c.model_type}: {c.what}: estimate {c.estimate:,.0f}, measured {c.measured:,.0f}"
              + ("" if c.same is not None else f" ({c.error_pct:+.3f} %)"))
    print("not measured:" if not_measured else "not measured: none")
    for mt, why in not_measured.items():
        print(f"  {mt}: {why}")
    if markdown:
        print("\n| model type | tensors | GGUF bytes F16 / Q4_K_M | KV | recurrent | compute |")
        print("|---|---|---:|---:|---:|---:|")
        for mt, cs in results.items():
            print(f"| {mt} | " + " | ".join(_cell(cs, m) for m in TARGETS) + " |")
        for mt, why in not_measured.items():
            print(f"| {mt} | not measured: {why} | | | | |")


def _cell(checks: list[Check], metric: str) -> str:
    cs = [c for c in checks if c.metric == metric]
    if not cs:
        return "–"
    if metric == "tensors":
        return "exact" if all(c.ok for c in cs) else "✗ differs"
    if metric == "bytes":
        return " / ".join(f"{c.error_pct:+.3f} %{'' if c.ok else ' ✗'}" for c in cs)
    worst = max(cs, key=lambda c: abs(c.error_pct))
    return f"{worst.error_pct:+.2f} %{'' if all(c.ok for c in cs) else ' ✗'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep the built files here instead of a temporary folder")
    parser.add_argument("--only", nargs="+", metavar="TYPE", help="these model types only")
    parser.add_argument("--markdown", action="store_true", help="also print the summary table as Markdown")
    args = parser.parse_args()
    chosen, skipped = exact_convertible(args.only)
    for mt, why in skipped:
        print(f"{mt}: skipped: {why}")
    print(f"{len(chosen)} architectures exact in the planner and convertible by llama.cpp: "
          f"{', '.join(mt for mt, _ in chosen)}\n")
    print(f"{'model type':17} {'what':32} {'estimate':>14} {'measured':>14} {'error':>10}")
    results: dict[str, list[Check]] = {}
    not_measured: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for mt, cls in chosen:
            try:
                checks, notes = measure(mt, cls, work)
            except NotMeasured as exc:
                not_measured[mt] = str(exc)
                print(f"{mt:17} not measured: {exc}", flush=True)
                continue
            results[mt] = checks
            for c in checks:
                print_check(c)
            for note in notes:
                print(f"{'':17} {note}")
    summary(results, not_measured, args.markdown)
    sys.exit(1 if any(not c.ok for cs in results.values() for c in cs) else 0)


if __name__ == "__main__":
    main()
