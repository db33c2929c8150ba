"""Vision towers and projectors of multimodal checkpoints, counted apart from the text model.

The estimator plans the text decoder (what llama.cpp's main GGUF holds; the converter writes the
vision part to a separate mmproj file). The tower's parameters are reported as their own figure
so the page can show the checkpoint total. Layouts are transformers' modules:
- Gemma 3: SiglipVisionModel (modeling_siglip.py: Conv2d patch embedding with bias, learned
  position embedding, encoder layers of 2 LayerNorms + q/k/v/out and fc1/fc2 with biases,
  post_layernorm; the attention-pooling head only if vision_use_head) and
  Gemma3MultiModalProjector (mm_input_projection_weight vision × text, mm_soft_emb_norm);
- Qwen2.5-VL: Qwen2_5_VisionTransformerPretrainedModel (Conv3d patch embedding without bias,
  blocks of 2 RMSNorms + fused qkv / proj and a gated MLP with biases, Qwen2_5_VLPatchMerger);
- Llama 4: Llama4VisionModel (modeling_llama4.py: Llama4UnfoldConvolution, a bias-free Linear over
  unfolded patches; class_embedding; positional_embedding_vlm over (image/patch)² + 1 positions;
  layernorm_pre / layernorm_post; Llama4VisionEncoderLayer = 2 LayerNorms + q/k/v/o with biases
  (heads × hidden//heads wide) + Llama4VisionMLP fc1/fc2 with biases; no final encoder norm;
  vision_adapter Llama4VisionPixelShuffleMLP -> Llama4VisionMLP2, fc1 intermediate_size ×
  projector_input_dim and fc2 projector_output_dim², both bias-free) and Llama4MultiModalProjector
  (linear_1 vision_output_dim × text hidden, no bias);
- Mistral Small 3.x: PixtralVisionModel (modeling_pixtral.py: Conv2d patch_conv without bias, ln_pre
  RMSNorm, PixtralAttentionLayer = attention_norm + q/k/v/o hidden × hidden bias-free + ffn_norm +
  gated PixtralMLP bias-free; RoPE only, no learned positions) and Mistral3MultiModalProjector
  (modeling_mistral3.py: norm RMSNorm, Mistral3PatchMerger merging_layer hidden·merge² × hidden,
  linear_1 hidden·len(vision_feature_layer) × text hidden and linear_2 text hidden², biases only if
  multimodal_projector_bias);
- Qwen3.5 / Qwen3.5-MoE: Qwen3_5VisionModel (modeling_qwen3_5.py: Conv3d patch embedding with bias,
  pos_embed over num_position_embeddings, blocks of 2 LayerNorms + qkv / proj and fc1 / fc2 with
  biases, Qwen3_5VisionPatchMerger with its LayerNorm before the shuffle; Qwen3-VL's deepstack
  mergers are removed).
Other vision towers are not counted, and their configs are refused.
"""

from __future__ import annotations

from typing import Any

from .errors import EstimatorError
from .fields import _bool, _int

# Multimodal configs whose vision tower and projector are counted (model_type of the outer config).
MULTIMODAL_MODEL_TYPES = frozenset({"gemma3", "qwen2_5_vl", "llama4", "mistral3", "qwen3_5", "qwen3_5_moe"})


def _siglip(v: dict) -> int:
    D, inner = _int(v, "hidden_size", 768), _int(v, "intermediate_size", 3072)
    P, image, ch = _int(v, "patch_size", 16), _int(v, "image_size", 224), _int(v, "num_channels", 3)
    layers = _int(v, "num_hidden_layers", 12)
    embeddings = ch * P * P * D + D + (image // P) ** 2 * D
    layer = 2 * 2 * D + 4 * (D * D + D) + (D * inner + inner) + (inner * D + D)
    head = 0
    if _bool(v, "vision_use_head", True):  # SiglipMultiheadAttentionPoolingHead: probe, MHA, LayerNorm, MLP
        head = D + (3 * D * D + 3 * D) + (D * D + D) + 2 * D + (D * inner + inner) + (inner * D + D)
    return embeddings + layers * layer + 2 * D + head


def _qwen2_5_vl(v: dict) -> int:
    D, inner = _int(v, "hidden_size", 3584), _int(v, "intermediate_size", 3420)
    P, tp, ch = _int(v, "patch_size", 14), _int(v, "temporal_patch_size", 2), _int(v, "in_channels", 3)
    depth, merge, out = _int(v, "depth", 32), _int(v, "spatial_merge_size", 2), _int(v, "out_hidden_size", 3584)
    block = 2 * D + (D * 3 * D + 3 * D) + (D * D + D) + 2 * (D * inner + inner) + (inner * D + D)
    wide = D * merge * merge
    merger = D + (wide * wide + wide) + (wide * out + out)
    return ch * tp * P * P * D + depth * block + merger


def _qwen3_5(v: dict) -> int:
    D, inner = _int(v, "hidden_size", 1152), _int(v, "intermediate_size", 4304)
    P, tp, ch = _int(v, "patch_size", 16), _int(v, "temporal_patch_size", 2), _int(v, "in_channels", 3)
    depth, merge, out = _int(v, "depth", 27), _int(v, "spatial_merge_size", 2), _int(v, "out_hidden_size", 3584)
    embeddings = ch * tp * P * P * D + D + _int(v, "num_position_embeddings", 2304) * D
    block = 2 * 2 * D + (D * 3 * D + 3 * D) + (D * D + D) + (D * inner + inner) + (inner * D + D)
    wide = D * merge * merge
    merger = 2 * D + (wide * wide + wide) + (wide * out + out)
    return embeddings + depth * block + merger


def _llama4(v: dict, text_hidden: int) -> int:
    D, inner = _int(v, "hidden_size", 768), _int(v, "intermediate_size", 5632)
    P, image, ch = _int(v, "patch_size", 14), _int(v, "image_size", 448), _int(v, "num_channels", 3)
    layers, heads = _int(v, "num_hidden_layers", 34), _int(v, "num_attention_heads", 16)
    proj_in, proj_out = _int(v, "projector_input_dim", 4096), _int(v, "projector_output_dim", 4096)
    width = heads * (D // heads)                     # Llama4VisionAttention: num_heads * head_dim
    embeddings = ch * P * P * D + D + ((image // P) ** 2 + 1) * D + 2 * 2 * D   # + layernorm_pre/post
    layer = 2 * 2 * D + 3 * (D * width + width) + (width * D + D) + (D * inner + inner) + (inner * D + D)
    adapter = inner * proj_in + proj_out * proj_out
    projector = _int(v, "vision_output_dim", 7680) * text_hidden
    return embeddings + layers * layer + adapter + projector


def _mistral3(cfg: dict, v: dict, text_hidden: int) -> int:
    D, inner = _int(v, "hidden_size", 1024), _int(v, "intermediate_size", 4096)
    P, ch, layers = _int(v, "patch_size", 16), _int(v, "num_channels", 3), _int(v, "num_hidden_layers", 24)
    tower = ch * P * P * D + D + layers * (2 * D + 4 * D * D + 3 * D * inner)
    merge = _int(cfg, "spatial_merge_size", 2)
    feature_layer = cfg.get("vision_feature_layer", -1)
    n_features = len(feature_layer) if isinstance(feature_layer, (list, tuple)) else 1
    bias = text_hidden if _bool(cfg, "multimodal_projector_bias", False) else 0
    projector = D + D * merge * merge * D + (D * n_features * text_hidden + bias) + (text_hidden ** 2 + bias)
    return tower + projector


def vision_params(cfg: dict, notes: list[str]) -> int:
    """Parameters of the vision tower + projector in a multimodal config.json; 0 when none."""
    v = cfg.get("vision_config")
    if not isinstance(v, dict):
        return 0
    model_type = cfg.get("model_type")
    if model_type == "gemma3":
        v = {"vision_use_head": False, **v}   # Gemma3Config's SiglipVisionConfig default
        text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else {}
        D = _int(v, "hidden_size", 1152)
        return _siglip(v) + D * _int(text, "hidden_size", 2304) + D
    if model_type in ("qwen2_5_vl",):
        return _qwen2_5_vl(v)
    if model_type in ("qwen3_5", "qwen3_5_moe"):
        return _qwen3_5(v)
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else {}
    if model_type == "llama4":
        return _llama4(v, _int(text, "hidden_size", 5120))        # Llama4TextConfig default
    if model_type == "mistral3":
        return _mistral3(cfg, v, _int(text, "hidden_size", 4096))  # MistralConfig default
    raise EstimatorError("vision_config", f"the vision tower of {model_type!r} is not one the estimator counts "
                                          f"(it counts {', '.join(sorted(MULTIMODAL_MODEL_TYPES))}), so it refuses "
                                          "rather than guess")


def vision_fields(cfg: Any, notes: list[str]) -> dict[str, int]:
    n = vision_params(cfg, notes) if isinstance(cfg, dict) else 0
    if n:
        notes.append(f"vision tower + projector: {n:,} parameters, not in the text model's total "
                     "(llama.cpp keeps them in a separate mmproj GGUF)")
    return {"vision_params": n}
