"""config.json of current models (2024-12 on), as their Hugging Face repos publish them.

Only the fields that decide a tensor's shape, a cache's size or which layers do what are kept
(token ids, dropout, init ranges and chat templates are left out). Where the published file
leaves a field to the config class's default, the default is written out and marked
"(class default)", so the estimator does not have to know transformers' defaults.
Which configs were checked against a copy of the file is listed in tests/planner/test_presets.py.
"""

from __future__ import annotations

from typing import Any


def _qwen3(hidden: int, layers: int, heads: int, inter: int, tied: bool) -> dict[str, Any]:
    """Qwen/Qwen3-{0.6B..32B} config.json: 8 KV heads of 128, qk-norm, 40960 positions."""
    return {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": hidden,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": 8, "head_dim": 128,
        "intermediate_size": inter, "vocab_size": 151936, "max_position_embeddings": 40960,
        "tie_word_embeddings": tied, "attention_bias": False, "rope_theta": 1000000, "rms_norm_eps": 1e-6,
        "use_sliding_window": False, "sliding_window": None, "max_window_layers": layers,
    }


def _qwen3_moe(hidden: int, layers: int, heads: int, kv: int, inter: int, moe_inter: int) -> dict[str, Any]:
    """Qwen/Qwen3-30B-A3B, Qwen3-235B-A22B config.json: 128 experts, 8 per token, no shared expert."""
    return {
        "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": hidden,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": 128,
        "intermediate_size": inter, "moe_intermediate_size": moe_inter, "num_experts": 128,
        "num_experts_per_tok": 8, "decoder_sparse_step": 1, "mlp_only_layers": [], "norm_topk_prob": True,
        "vocab_size": 151936, "max_position_embeddings": 40960, "tie_word_embeddings": False,
        "attention_bias": False, "rope_theta": 1000000, "rms_norm_eps": 1e-6, "use_sliding_window": False,
        "sliding_window": None, "max_window_layers": layers,
    }


QWEN3 = {
    "qwen3-0.6b": _qwen3(1024, 28, 16, 3072, True),
    "qwen3-1.7b": _qwen3(2048, 28, 16, 6144, True),
    "qwen3-4b": _qwen3(2560, 36, 32, 9728, True),
    "qwen3-8b": _qwen3(4096, 36, 32, 12288, False),
    "qwen3-14b": _qwen3(5120, 40, 40, 17408, False),
    "qwen3-32b": _qwen3(5120, 64, 64, 25600, False),
    "qwen3-30b-a3b": _qwen3_moe(2048, 48, 32, 4, 6144, 768),
    "qwen3-235b-a22b": _qwen3_moe(4096, 94, 64, 4, 12288, 1536),
}

# Qwen/Qwen3-Next-80B-A3B-Instruct: gated DeltaNet layers with full (gated) attention every 4th.
QWEN3_NEXT_80B = {
    "architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next", "hidden_size": 2048,
    "num_hidden_layers": 48, "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 256,
    "intermediate_size": 5120, "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512,
    "num_experts": 512, "num_experts_per_tok": 10, "decoder_sparse_step": 1, "mlp_only_layers": [],
    "norm_topk_prob": True, "full_attention_interval": 4, "linear_conv_kernel_dim": 4,
    "linear_key_head_dim": 128, "linear_num_key_heads": 16, "linear_value_head_dim": 128,
    "linear_num_value_heads": 32, "partial_rotary_factor": 0.25, "vocab_size": 151936,
    "max_position_embeddings": 262144, "tie_word_embeddings": False, "rope_theta": 10000000,
    "rms_norm_eps": 1e-6, "use_sliding_window": False,
}

_GEMMA3_TEXT = {
    "model_type": "gemma3_text", "head_dim": 256, "vocab_size": 262208, "max_position_embeddings": 131072,
    "query_pre_attn_scalar": 256, "sliding_window": 1024, "sliding_window_pattern": 6,
    "rope_theta": 1000000, "rope_local_base_freq": 10000, "rope_scaling": {"rope_type": "linear", "factor": 8.0},
    "tie_word_embeddings": True, "hidden_activation": "gelu_pytorch_tanh", "rms_norm_eps": 1e-6,
}
# SigLIP so400m tower shared by Gemma 3 4B/12B/27B (896 px, patch 14, no pooling head).
_GEMMA3_VISION = {
    "model_type": "siglip_vision_model", "hidden_size": 1152, "intermediate_size": 4304,
    "num_hidden_layers": 27, "num_attention_heads": 16, "image_size": 896, "patch_size": 14,
    "vision_use_head": False,
}


def _gemma3(hidden: int, layers: int, heads: int, kv: int, inter: int, **text: Any) -> dict[str, Any]:
    """google/gemma-3-{4b,12b,27b}-it config.json (Gemma3ForConditionalGeneration). The 4b file
    leaves heads, KV heads, head_dim and vocab_size to Gemma3TextConfig: written out here."""
    return {
        "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "mm_tokens_per_image": 256,
        "text_config": {**_GEMMA3_TEXT, "hidden_size": hidden, "num_hidden_layers": layers,
                        "num_attention_heads": heads, "num_key_value_heads": kv, "intermediate_size": inter, **text},
        "vision_config": dict(_GEMMA3_VISION),
    }


GEMMA3 = {
    # google/gemma-3-1b-it: text only (Gemma3ForCausalLM), 32k context, 512-token window
    "gemma-3-1b": {**_GEMMA3_TEXT, "architectures": ["Gemma3ForCausalLM"], "hidden_size": 1152,
                   "num_hidden_layers": 26, "num_attention_heads": 4, "num_key_value_heads": 1,
                   "intermediate_size": 6912, "vocab_size": 262144, "max_position_embeddings": 32768,
                   "sliding_window": 512, "rope_scaling": None},
    "gemma-3-4b": _gemma3(2560, 34, 8, 4, 10240),
    "gemma-3-12b": _gemma3(3840, 48, 16, 8, 15360),
    "gemma-3-27b": _gemma3(5376, 62, 32, 16, 21504, head_dim=128, query_pre_attn_scalar=168),
}

# openai/gpt-oss-20b and -120b config.json; quantization_config: MXFP4 experts, the modules listed
# in modules_to_not_convert stay BF16.
GPT_OSS_20B = {
    "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "hidden_size": 2880,
    "num_hidden_layers": 24, "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64,
    "intermediate_size": 2880, "vocab_size": 201088, "max_position_embeddings": 131072,
    "tie_word_embeddings": False, "attention_bias": True, "num_local_experts": 32, "num_experts_per_tok": 4,
    "experts_per_token": 4, "sliding_window": 128, "layer_types": ["sliding_attention", "full_attention"] * 12,
    "initial_context_length": 4096, "rope_theta": 150000, "swiglu_limit": 7.0, "rms_norm_eps": 1e-5,
    "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                     "original_max_position_embeddings": 4096, "truncate": False},
    "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]},
}
GPT_OSS_120B = {**GPT_OSS_20B, "num_hidden_layers": 36, "num_local_experts": 128,
                "layer_types": ["sliding_attention", "full_attention"] * 18}

# deepseek-ai/DeepSeek-V3 config.json; DeepSeek-R1 (and R1-0528, V3-0324) ship the same shape.
# quantization_config: FP8 E4M3 weights with one scale per 128x128 block.
DEEPSEEK_V3 = {
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "vocab_size": 129280,
    "hidden_size": 7168, "intermediate_size": 18432, "moe_intermediate_size": 2048, "num_hidden_layers": 61,
    "num_nextn_predict_layers": 1, "num_attention_heads": 128, "num_key_value_heads": 128,
    "n_shared_experts": 1, "n_routed_experts": 256, "routed_scaling_factor": 2.5, "kv_lora_rank": 512,
    "q_lora_rank": 1536, "qk_rope_head_dim": 64, "v_head_dim": 128, "qk_nope_head_dim": 128,
    "topk_method": "noaux_tc", "n_group": 8, "topk_group": 4, "num_experts_per_tok": 8, "moe_layer_freq": 1,
    "first_k_dense_replace": 3, "norm_topk_prob": True, "scoring_func": "sigmoid",
    "max_position_embeddings": 163840, "tie_word_embeddings": False, "rope_theta": 10000,
    "rope_scaling": {"type": "yarn", "factor": 40, "beta_fast": 32, "beta_slow": 1, "mscale": 1.0,
                     "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096},
    "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                            "weight_block_size": [128, 128]},
}

# moonshotai/Kimi-K2-Instruct config.json: the DeepSeek-V3 architecture with 384 experts, 64 heads,
# one dense layer and no MTP layer (architectures DeepseekV3ForCausalLM, model_type kimi_k2).
KIMI_K2 = {
    **DEEPSEEK_V3, "model_type": "kimi_k2", "vocab_size": 163840, "num_nextn_predict_layers": 0,
    "num_attention_heads": 64, "num_key_value_heads": 64, "n_routed_experts": 384,
    "routed_scaling_factor": 2.827, "n_group": 1, "topk_group": 1, "first_k_dense_replace": 1,
    "max_position_embeddings": 131072, "rope_theta": 50000,
    "rope_scaling": {"type": "yarn", "factor": 32.0, "beta_fast": 1.0, "beta_slow": 1.0, "mscale": 1.0,
                     "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096},
}

_LLAMA4_TEXT = {
    "model_type": "llama4_text", "hidden_size": 5120, "intermediate_size": 8192, "intermediate_size_mlp": 16384,
    "num_hidden_layers": 48, "num_attention_heads": 40, "num_key_value_heads": 8, "head_dim": 128,
    "num_experts_per_tok": 1, "vocab_size": 202048, "attention_bias": False, "attention_chunk_size": 8192,
    "tie_word_embeddings": False, "rope_theta": 500000, "rms_norm_eps": 1e-5,
}
_LLAMA4_VISION = {
    "model_type": "llama4_vision_model", "hidden_size": 1408, "intermediate_size": 5632,
    "num_hidden_layers": 34, "num_attention_heads": 16, "image_size": 336, "patch_size": 14,
    "pixel_shuffle_ratio": 0.5, "projector_input_dim": 4096, "projector_output_dim": 4096,
    "vision_output_dim": 4096, "multi_modal_projector_bias": False, "vision_feature_layer": -1,
}
# meta-llama/Llama-4-Scout-17B-16E-Instruct: every layer MoE (16 experts + a shared one)
LLAMA4_SCOUT = {
    "architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4",
    "text_config": {**_LLAMA4_TEXT, "num_local_experts": 16, "interleave_moe_layer_step": 1,
                    "use_qk_norm": True, "max_position_embeddings": 10485760,
                    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}},
    "vision_config": dict(_LLAMA4_VISION),
}
# meta-llama/Llama-4-Maverick-17B-128E-Instruct: MoE on every 2nd layer (128 experts + a shared one)
LLAMA4_MAVERICK = {
    "architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4",
    "text_config": {**_LLAMA4_TEXT, "num_local_experts": 128, "interleave_moe_layer_step": 2,
                    "use_qk_norm": False, "max_position_embeddings": 1048576, "rope_scaling": None},
    "vision_config": dict(_LLAMA4_VISION),
}

# mistralai/Mistral-Small-3.2-24B-Instruct-2506 (Mistral3ForConditionalGeneration, Pixtral tower)
MISTRAL_SMALL_32 = {
    "architectures": ["Mistral3ForConditionalGeneration"], "model_type": "mistral3",
    "tie_word_embeddings": False,  # written out: transformers 5's Mistral3Config ties lm_head by default
    "multimodal_projector_bias": False, "projector_hidden_act": "gelu", "spatial_merge_size": 2,
    "vision_feature_layer": -1,
    "text_config": {"model_type": "mistral", "hidden_size": 5120, "num_hidden_layers": 40,
                    "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
                    "intermediate_size": 32768, "vocab_size": 131072, "max_position_embeddings": 131072,
                    "tie_word_embeddings": False, "rope_theta": 1000000000.0, "sliding_window": None,
                    "rms_norm_eps": 1e-5},
    "vision_config": {"model_type": "pixtral", "hidden_size": 1024, "intermediate_size": 4096,
                      "num_hidden_layers": 24, "num_attention_heads": 16, "head_dim": 64,
                      "image_size": 1540, "patch_size": 14, "rope_theta": 10000.0},
}

# microsoft/phi-4 (Phi3ForCausalLM; fused qkv_proj and gate_up_proj)
PHI4 = {
    "architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_size": 5120, "num_hidden_layers": 40,
    "num_attention_heads": 40, "num_key_value_heads": 10, "intermediate_size": 17920, "vocab_size": 100352,
    "max_position_embeddings": 16384, "original_max_position_embeddings": 16384, "tie_word_embeddings": False,
    "rope_theta": 250000, "rms_norm_eps": 1e-5, "sliding_window": None,
}

# zai-org/GLM-4.5-Air (Glm4MoeForCausalLM): one dense layer, then 128 experts + 1 shared, q/k/v bias,
# half-rotary heads; one MTP layer (layer 46) in the checkpoint only.
GLM45_AIR = {
    "architectures": ["Glm4MoeForCausalLM"], "model_type": "glm4_moe", "hidden_size": 4096,
    "num_hidden_layers": 46, "num_attention_heads": 96, "num_key_value_heads": 8, "head_dim": 128,
    "intermediate_size": 10944, "moe_intermediate_size": 1408, "n_routed_experts": 128, "n_shared_experts": 1,
    "num_experts_per_tok": 8, "first_k_dense_replace": 1, "n_group": 1, "topk_group": 1,
    "routed_scaling_factor": 1.0, "norm_topk_prob": True, "num_nextn_predict_layers": 1,
    "attention_bias": True, "use_qk_norm": False, "partial_rotary_factor": 0.5, "vocab_size": 151552,
    "max_position_embeddings": 131072, "tie_word_embeddings": False, "rms_norm_eps": 1e-5,
}


def _granite4_layer_types() -> list[str]:
    """Granite 4.0-H: 40 layers, attention at 5, 15, 25, 35, Mamba-2 elsewhere."""
    return ["attention" if i % 10 == 5 else "mamba" for i in range(40)]


_GRANITE4_H = {
    "architectures": ["GraniteMoeHybridForCausalLM"], "model_type": "granitemoehybrid",
    "num_hidden_layers": 40, "vocab_size": 100352, "max_position_embeddings": 131072,
    "tie_word_embeddings": True, "position_embedding_type": "nope", "attention_bias": False,
    "mamba_d_state": 128, "mamba_d_head": 64, "mamba_d_conv": 4, "mamba_expand": 2, "mamba_n_groups": 1,
    "mamba_chunk_size": 256, "mamba_conv_bias": True, "mamba_proj_bias": False, "rms_norm_eps": 1e-5,
}
# ibm-granite/granite-4.0-h-small: 72 experts (10 per token) + shared expert on every layer
GRANITE4_H_SMALL = {
    **_GRANITE4_H, "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
    "intermediate_size": 768, "shared_intermediate_size": 1536, "num_local_experts": 72,
    "num_experts_per_tok": 10, "mamba_n_heads": 128, "layer_types": _granite4_layer_types(),
}
# ibm-granite/granite-4.0-h-tiny: 64 experts (6 per token) + shared expert on every layer
GRANITE4_H_TINY = {
    **_GRANITE4_H, "hidden_size": 1536, "num_attention_heads": 12, "num_key_value_heads": 4,
    "intermediate_size": 512, "shared_intermediate_size": 1024, "num_local_experts": 64,
    "num_experts_per_tok": 6, "mamba_n_heads": 48, "layer_types": _granite4_layer_types(),
}


_NEMOTRON_H = {
    "architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h", "attention_head_dim": 128,
    "num_key_value_heads": 8, "mamba_head_dim": 64, "n_groups": 8, "conv_kernel": 4, "expand": 2,
    "chunk_size": 128, "mlp_hidden_act": "relu2", "mamba_hidden_act": "silu", "attention_bias": False,
    "mlp_bias": False, "use_bias": False, "use_conv_bias": True, "mamba_proj_bias": False,
    "vocab_size": 131072, "max_position_embeddings": 8192, "tie_word_embeddings": False,
    "layer_norm_epsilon": 1e-5, "rms_norm_eps": 1e-5, "sliding_window": None,
}
# nvidia/Nemotron-H-56B-Base-8K config.json (a verbatim copy is vendored in github
# ai-dynamo/aiconfigurator, model_configs/nvidia--Nemotron-H-56B-Base-8K_config.json): 118 layers,
# 54 Mamba-2 (M), 54 MLP (-) and 10 attention (*) in hybrid_override_pattern.
NEMOTRON_H_56B = {
    **_NEMOTRON_H, "hidden_size": 8192, "intermediate_size": 32768, "num_hidden_layers": 118,
    "hybrid_override_pattern": "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*"
                               "-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-",
    "num_attention_heads": 64, "mamba_num_heads": 256, "ssm_state_size": 256,
}
# nvidia/Nemotron-H-8B-Base-8K: the sizes are github NVIDIA-NeMo/Megatron-Bridge's
# NemotronHModelProvider8B (models/nemotronh/nemotron_h_provider.py, whose 56B provider has the 56B
# config.json's sizes above), in config.json's names; the checkpoints' own configuration_nemotron_h.py
# defaults to the same sizes. The other fields are the family's, as in the 56B file.
NEMOTRON_H_8B = {
    **_NEMOTRON_H, "hidden_size": 4096, "intermediate_size": 21504, "num_hidden_layers": 52,
    "hybrid_override_pattern": "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-",
    "num_attention_heads": 32, "mamba_num_heads": 128, "ssm_state_size": 128,
}


# Qwen3.5 (natively multimodal): gated DeltaNet layers with gated full attention every 4th, one MTP
# layer in the checkpoint only, and the same 27-layer vision tower in every size.
_QWEN3_5_VISION = {
    "depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16, "in_channels": 3,
    "patch_size": 16, "temporal_patch_size": 2, "spatial_merge_size": 2, "num_position_embeddings": 2304,
    "deepstack_visual_indexes": [], "hidden_act": "gelu_pytorch_tanh",
}


def _qwen3_5(hidden: int, layers: int, heads: int, kv: int, linear_v_heads: int, **text: Any) -> dict[str, Any]:
    """Qwen/Qwen3.5-{27B,35B-A3B,122B-A10B,397B-A17B} config.json; verbatim copies are vendored in
    github ai-dynamo/aiconfigurator (model_configs/Qwen--Qwen3.5-*_config.json). `text` carries the
    feed-forward fields: intermediate_size (dense) or the experts'."""
    moe = "num_experts" in text
    model_type = "qwen3_5_moe" if moe else "qwen3_5"
    return {
        "architectures": ["Qwen3_5MoeForConditionalGeneration" if moe else "Qwen3_5ForConditionalGeneration"],
        "model_type": model_type, "tie_word_embeddings": False,
        "text_config": {
            "model_type": f"{model_type}_text", "hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": 256, "attn_output_gate": True,
            "attention_bias": False, "full_attention_interval": 4,
            "layer_types": ["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(layers)],
            "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_num_key_heads": 16,
            "linear_value_head_dim": 128, "linear_num_value_heads": linear_v_heads, "mlp_only_layers": [],
            "mtp_num_hidden_layers": 1, "mtp_use_dedicated_embeddings": False, "vocab_size": 248320,
            "max_position_embeddings": 262144, "hidden_act": "silu", "rms_norm_eps": 1e-6,
            "mamba_ssm_dtype": "float32",
            "rope_parameters": {"mrope_interleaved": True, "mrope_section": [11, 11, 10], "rope_type": "default",
                                "rope_theta": 10000000, "partial_rotary_factor": 0.25},
            **text,
        },
        "vision_config": {**_QWEN3_5_VISION, "model_type": model_type, "out_hidden_size": hidden},
    }


QWEN3_5 = {
    "qwen3.5-27b": _qwen3_5(5120, 64, 24, 4, 48, intermediate_size=17408),
    "qwen3.5-35b-a3b": _qwen3_5(2048, 40, 16, 2, 32, num_experts=256, num_experts_per_tok=8,
                                moe_intermediate_size=512, shared_expert_intermediate_size=512),
    "qwen3.5-122b-a10b": _qwen3_5(3072, 48, 32, 2, 64, num_experts=256, num_experts_per_tok=8,
                                  moe_intermediate_size=1024, shared_expert_intermediate_size=1024),
    "qwen3.5-397b-a17b": _qwen3_5(4096, 60, 32, 2, 64, num_experts=512, num_experts_per_tok=10,
                                  moe_intermediate_size=1024, shared_expert_intermediate_size=1024),
}

# zai-org/GLM-5 config.json (GlmMoeDsaForCausalLM; a verbatim copy is vendored in github
# ai-dynamo/aiconfigurator, model_configs/zai-org--GLM-5_config.json): MLA with a DeepSeek-style sparse
# attention indexer, 3 dense layers then 256 experts + 1 shared; one MTP layer in the checkpoint only.
GLM5 = {
    "architectures": ["GlmMoeDsaForCausalLM"], "model_type": "glm_moe_dsa", "hidden_size": 6144,
    "num_hidden_layers": 78, "num_attention_heads": 64, "num_key_value_heads": 64, "head_dim": 64,
    "q_lora_rank": 2048, "kv_lora_rank": 512, "qk_head_dim": 256, "qk_nope_head_dim": 192, "qk_rope_head_dim": 64,
    "v_head_dim": 256, "index_head_dim": 128, "index_n_heads": 32, "index_topk": 2048,
    "indexer_rope_interleave": True, "rope_interleave": True, "intermediate_size": 12288,
    "moe_intermediate_size": 2048, "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8,
    "first_k_dense_replace": 3, "moe_layer_freq": 1, "n_group": 1, "topk_group": 1, "topk_method": "noaux_tc",
    "scoring_func": "sigmoid", "norm_topk_prob": True, "routed_scaling_factor": 2.5, "ep_size": 1,
    "num_nextn_predict_layers": 1, "attention_bias": False, "hidden_act": "silu", "pretraining_tp": 1,
    "vocab_size": 154880, "max_position_embeddings": 202752, "tie_word_embeddings": False, "rms_norm_eps": 1e-5,
    "rope_parameters": {"rope_theta": 1000000, "rope_type": "default"},
}

# baidu/ERNIE-4.5-21B-A3B-PT (Ernie4_5_MoeForCausalLM): transformers' Ernie4_5_MoeConfig, whose
# defaults are this checkpoint's (its docstring names it), written out; github PaddlePaddle/ERNIE's
# pre-training model_configs/ERNIE-4p5-21B-A3B/model_config.json has the same sizes (30 layers less
# its remove_tail_layer 2). Layer 0 dense, then 64 experts (6 per token) + 2 shared on every layer.
ERNIE45_21B_A3B = {
    "architectures": ["Ernie4_5_MoeForCausalLM"], "model_type": "ernie4_5_moe", "hidden_size": 2560,
    "intermediate_size": 12288, "num_hidden_layers": 28, "num_attention_heads": 20, "num_key_value_heads": 4,
    "moe_intermediate_size": 1536, "moe_num_experts": 64, "moe_k": 6, "moe_num_shared_experts": 2,
    "moe_layer_start_index": 1, "moe_layer_end_index": 27, "moe_layer_interval": 1, "use_bias": False,
    "vocab_size": 103424, "max_position_embeddings": 131072, "tie_word_embeddings": True,
    "hidden_act": "silu", "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
}

# HuggingFaceTB/SmolLM3-3B (SmolLM3ForCausalLM): transformers' SmolLM3Config, whose defaults are this
# checkpoint's (its docstring names it), written out; the SmolLM3 release post (github huggingface/blog,
# smollm3.md) gives GQA with 4 groups, tied embeddings, NoPE on every 4th layer and the 64k training
# context at RoPE theta 5M. llama.cpp (arch smollm3) skips RoPE on those layers; no tensor changes.
SMOLLM3_3B = {
    "architectures": ["SmolLM3ForCausalLM"], "model_type": "smollm3", "hidden_size": 2048,
    "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16, "num_key_value_heads": 4,
    "vocab_size": 128256, "max_position_embeddings": 65536, "tie_word_embeddings": True,
    "rope_theta": 5000000.0, "rms_norm_eps": 1e-6, "attention_bias": False, "mlp_bias": False,
    "no_rope_layer_interval": 4, "no_rope_layers": [int((i + 1) % 4 != 0) for i in range(36)],
    "use_sliding_window": False, "sliding_window": None, "hidden_act": "silu",
}

# MiniMaxAI/MiniMax-M2.5 config.json (MiniMaxM2ForCausalLM; a copy is vendored in github
# ai-dynamo/aiconfigurator, model_configs/MiniMaxAI--MiniMax-M2.5_config.json; its FP8
# quantization_config and auto_map left out). Same sizes as transformers' MiniMaxM2Config defaults:
# 62 layers of 256 experts (8 per token, sigmoid router with a score-correction bias), q/k RMSNorms
# over the whole projection, partial RoPE (rotary_dim 64 of head_dim 128). The MTP modules
# (use_mtp) are not built by transformers nor written by convert_hf_to_gguf.py.
MINIMAX_M25 = {
    "architectures": ["MiniMaxM2ForCausalLM"], "model_type": "minimax_m2", "num_hidden_layers": 62,
    "hidden_size": 3072, "num_attention_heads": 48, "num_key_value_heads": 8, "head_dim": 128,
    "intermediate_size": 1536, "vocab_size": 200064, "num_experts_per_tok": 8, "num_local_experts": 256,
    "max_position_embeddings": 196608, "rope_theta": 5000000, "rotary_dim": 64, "hidden_act": "silu",
    "rms_norm_eps": 1e-06, "use_cache": True, "tie_word_embeddings": False, "use_qk_norm": True,
    "qk_norm_type": "per_layer", "use_routing_bias": True, "use_mtp": True, "mtp_transformer_layers": 1,
    "num_mtp_modules": 3, "shared_intermediate_size": 0, "scoring_func": "sigmoid",
}

# deepseek-ai/DeepSeek-V3.2 config.json (DeepseekV32ForCausalLM; a verbatim copy is vendored in github
# ai-dynamo/aiconfigurator, model_configs/deepseek-ai--DeepSeek-V3.2_config.json): DeepSeek-V3's shape
# (MLA, 3 dense layers, 256 experts + 1 shared, one MTP layer in the checkpoint only) plus the DSA
# lightning indexer (64 heads of 128 on every layer). quantization_config: FP8 E4M3 in 128x128 blocks
# with UE8M0 scales.
DEEPSEEK_V32 = {
    **DEEPSEEK_V3, "architectures": ["DeepseekV32ForCausalLM"], "model_type": "deepseek_v32",
    "index_head_dim": 128, "index_n_heads": 64, "index_topk": 2048, "attention_bias": False, "rms_norm_eps": 1e-6,
    "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                            "scale_fmt": "ue8m0", "weight_block_size": [128, 128]},
}


def _gemma4_text(hidden: int, layers: int, heads: int, kv: int, global_kv: int, inter: int,
                 **moe: Any) -> dict[str, Any]:
    """text_config of Gemma 4 26B-A4B / 31B (Gemma4ForConditionalGeneration): five sliding layers
    (window 1024, head_dim 256) then one full layer (global_head_dim 512, K reused as V), no
    per-layer embeddings, no KV-shared layers, tied embeddings. The estimator refuses the whole
    multimodal file (its gemma4 vision tower is not one it counts), so the preset is the language
    model alone, as transformers' Gemma4ForCausalLM builds it from that text_config."""
    return {
        "architectures": ["Gemma4ForCausalLM"], "model_type": "gemma4_text", "hidden_size": hidden,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv,
        "num_global_key_value_heads": global_kv, "head_dim": 256, "global_head_dim": 512,
        "attention_k_eq_v": True, "attention_bias": False, "intermediate_size": inter,
        "layer_types": ["full_attention" if i % 6 == 5 else "sliding_attention" for i in range(layers)],
        "sliding_window": 1024, "num_kv_shared_layers": 0, "use_double_wide_mlp": False,
        "hidden_size_per_layer_input": 0, "vocab_size": 262144, "vocab_size_per_layer_input": 262144,
        "max_position_embeddings": 262144, "tie_word_embeddings": True, "final_logit_softcapping": 30.0,
        "hidden_activation": "gelu_pytorch_tanh", "rms_norm_eps": 1e-6,
        "rope_parameters": {"full_attention": {"partial_rotary_factor": 0.25, "rope_theta": 1000000.0,
                                               "rope_type": "proportional"},
                            "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}},
        "enable_moe_block": bool(moe), "num_experts": None, "top_k_experts": None, "moe_intermediate_size": None,
        **moe,
    }


GEMMA4 = {
    # google/gemma-4-26B-A4B config.json text_config (a verbatim copy is vendored in github
    # ai-dynamo/aiconfigurator, model_configs/google--gemma-4-26B-A4B_config.json): a 128-expert MoE
    # block (8 per token) beside a dense MLP on every layer
    "gemma-4-26b-a4b": _gemma4_text(2816, 30, 16, 8, 2, 2112, num_experts=128, top_k_experts=8,
                                    moe_intermediate_size=704),
    # google/gemma-4-31B-it: the text_config of nvidia/Gemma-4-31B-IT-NVFP4's config.json (NVIDIA's
    # quantization of that checkpoint; vendored in github ai-dynamo/aiconfigurator,
    # model_configs/nvidia--Gemma-4-31B-IT-NVFP4_config.json), its quantization_config left out;
    # github THUDM/slime's scripts/models/gemma4-31B.sh (since removed) has the same sizes
    "gemma-4-31b": _gemma4_text(5376, 60, 32, 16, 4, 21504),
}


def _olmo3(hidden: int, layers: int, heads: int, kv: int, inter: int) -> dict[str, Any]:
    """allenai/Olmo-3-1025-7B and Olmo-3-1125-32B (Olmo3ForCausalLM): three sliding-window layers
    (4096) then one full layer, q/k norms over the whole projection, norms after attention and MLP,
    untied embeddings, 65536 positions (YaRN x8 from 8192). The sizes are github
    rasbt/LLMs-from-scratch ch05/13_olmo3/standalone-olmo3.ipynb (OLMO3_CONFIG_7B / _32B), which loads
    the published checkpoints' tensors with a shape check on every one; its recorded run on
    Olmo-3-7B-Instruct found an lm_head.weight (it would print "Model uses weight tying." otherwise)."""
    return {
        "architectures": ["Olmo3ForCausalLM"], "model_type": "olmo3", "hidden_size": hidden,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv,
        "intermediate_size": inter, "vocab_size": 100278, "max_position_embeddings": 65536,
        "tie_word_embeddings": False, "attention_bias": False, "sliding_window": 4096,
        "layer_types": ["full_attention" if i % 4 == 3 else "sliding_attention" for i in range(layers)],
        "rope_theta": 500000.0, "rms_norm_eps": 1e-6, "hidden_act": "silu",
        "rope_scaling": {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 8192,
                         "attention_factor": 1.2079441541679836, "beta_fast": 32.0, "beta_slow": 1.0},
    }


OLMO3 = {
    "olmo-3-7b": _olmo3(4096, 32, 32, 32, 11008),
    "olmo-3-32b": _olmo3(5120, 64, 40, 8, 27648),
}

# mistralai/Mistral-Small-3.1-24B-Instruct-2503 config.json: field for field the 3.2 file above (the 3.2
# card calls 3.2 "a minor update of" 3.1); verbatim copies of the 3.1 file are embedded in public
# config-parser tests (found by searching code for its text).
MISTRAL_SMALL_31 = {**MISTRAL_SMALL_32, "text_config": dict(MISTRAL_SMALL_32["text_config"]),
                    "vision_config": dict(MISTRAL_SMALL_32["vision_config"])}
