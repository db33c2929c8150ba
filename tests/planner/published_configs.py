"""Shape fields of published config.json files, copied by hand (not a test module).

Each dict carries the fields transformers' config class and the estimator read; the rest of the
file (rope scaling, token ids, quantization_config) changes no parameter or cache size.
"""

# deepseek-ai/DeepSeek-V3 config.json
DEEPSEEK_V3 = {
    "model_type": "deepseek_v3", "vocab_size": 129280, "hidden_size": 7168, "intermediate_size": 18432,
    "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_nextn_predict_layers": 1,
    "num_attention_heads": 128, "num_key_value_heads": 128, "n_shared_experts": 1, "n_routed_experts": 256,
    "routed_scaling_factor": 2.5, "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64,
    "v_head_dim": 128, "qk_nope_head_dim": 128, "topk_method": "noaux_tc", "n_group": 8, "topk_group": 4,
    "num_experts_per_tok": 8, "moe_layer_freq": 1, "first_k_dense_replace": 3, "norm_topk_prob": True,
    "scoring_func": "sigmoid", "max_position_embeddings": 163840, "tie_word_embeddings": False,
}

# deepseek-ai/DeepSeek-V2-Lite config.json (no q_lora_rank: a plain q_proj)
DEEPSEEK_V2_LITE = {
    "model_type": "deepseek_v2", "vocab_size": 102400, "hidden_size": 2048, "intermediate_size": 10944,
    "moe_intermediate_size": 1408, "num_hidden_layers": 27, "num_attention_heads": 16, "num_key_value_heads": 16,
    "n_shared_experts": 2, "n_routed_experts": 64, "routed_scaling_factor": 1.0, "kv_lora_rank": 512,
    "q_lora_rank": None, "qk_rope_head_dim": 64, "v_head_dim": 128, "qk_nope_head_dim": 128,
    "topk_method": "greedy", "n_group": 1, "topk_group": 1, "num_experts_per_tok": 6, "moe_layer_freq": 1,
    "first_k_dense_replace": 1, "norm_topk_prob": False, "scoring_func": "softmax",
    "max_position_embeddings": 163840, "tie_word_embeddings": False,
}

# moonshotai/Kimi-K2-Instruct config.json: architectures DeepseekV3ForCausalLM, model_type kimi_k2
KIMI_K2 = {
    "model_type": "kimi_k2", "vocab_size": 163840, "hidden_size": 7168, "intermediate_size": 18432,
    "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_nextn_predict_layers": 0,
    "num_attention_heads": 64, "num_key_value_heads": 64, "n_shared_experts": 1, "n_routed_experts": 384,
    "routed_scaling_factor": 2.827, "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64,
    "v_head_dim": 128, "qk_nope_head_dim": 128, "topk_method": "noaux_tc", "n_group": 1, "topk_group": 1,
    "num_experts_per_tok": 8, "moe_layer_freq": 1, "first_k_dense_replace": 1, "norm_topk_prob": True,
    "scoring_func": "sigmoid", "max_position_embeddings": 131072, "tie_word_embeddings": False,
}

_LLAMA4_TEXT = {
    "model_type": "llama4_text", "hidden_size": 5120, "intermediate_size": 8192, "intermediate_size_mlp": 16384,
    "num_hidden_layers": 48, "num_attention_heads": 40, "num_key_value_heads": 8, "head_dim": 128,
    "num_experts_per_tok": 1, "vocab_size": 202048, "attention_bias": False, "attention_chunk_size": 8192,
    "tie_word_embeddings": False,
}
# meta-llama/Llama-4-Scout-17B-16E-Instruct config.json (text_config; every layer MoE)
LLAMA4_SCOUT = {"model_type": "llama4", "text_config": {
    **_LLAMA4_TEXT, "num_local_experts": 16, "interleave_moe_layer_step": 1, "use_qk_norm": True,
    "max_position_embeddings": 10485760}}
# meta-llama/Llama-4-Maverick-17B-128E-Instruct config.json (text_config; MoE every 2nd layer)
LLAMA4_MAVERICK = {"model_type": "llama4", "text_config": {
    **_LLAMA4_TEXT, "num_local_experts": 128, "interleave_moe_layer_step": 2, "use_qk_norm": False,
    "max_position_embeddings": 1048576}}

# openai/gpt-oss-20b config.json (quantization_config: MXFP4 experts; rope_scaling yarn; the
# shape fields below are the whole of what changes a parameter or cache size)
GPT_OSS_20B = {
    "model_type": "gpt_oss", "vocab_size": 201088, "hidden_size": 2880, "intermediate_size": 2880,
    "num_hidden_layers": 24, "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64,
    "num_local_experts": 32, "num_experts_per_tok": 4, "experts_per_token": 4, "attention_bias": True,
    "sliding_window": 128, "layer_types": ["sliding_attention", "full_attention"] * 12,
    "max_position_embeddings": 131072, "tie_word_embeddings": False,
}

# openai/gpt-oss-120b config.json: the 20b shape with 36 layers and 128 experts
GPT_OSS_120B = dict(GPT_OSS_20B, num_hidden_layers=36, num_local_experts=128,
                    layer_types=["sliding_attention", "full_attention"] * 18)

# google/gemma-3-27b-it config.json, text_config (the vision tower and projector are not counted);
# vocab_size is not in the file: Gemma3TextConfig's default 262208
GEMMA3_27B = {
    "model_type": "gemma3",
    "text_config": {
        "model_type": "gemma3_text", "vocab_size": 262208, "hidden_size": 5376, "intermediate_size": 21504,
        "num_hidden_layers": 62, "num_attention_heads": 32, "num_key_value_heads": 16, "head_dim": 128,
        "sliding_window": 1024, "sliding_window_pattern": 6, "max_position_embeddings": 131072,
        "query_pre_attn_scalar": 168,
    },
}


# DeepSeek-V2-Lite's GGUF metadata as convert_hf_to_gguf.py wrote it before llama.cpp split kv_b:
# no key_length_mla / value_length_mla, key/value length per head, head_count_kv = n_head.
LEGACY_DEEPSEEK_V2_LITE_GGUF = {
    "general.architecture": "deepseek2", "deepseek2.block_count": 27, "deepseek2.embedding_length": 2048,
    "deepseek2.feed_forward_length": 10944, "deepseek2.attention.head_count": 16,
    "deepseek2.attention.head_count_kv": 16, "deepseek2.attention.key_length": 192,
    "deepseek2.attention.value_length": 128, "deepseek2.attention.kv_lora_rank": 512,
    "deepseek2.rope.dimension_count": 64, "deepseek2.leading_dense_block_count": 1,
    "deepseek2.expert_count": 64, "deepseek2.expert_used_count": 6,
    "deepseek2.expert_feed_forward_length": 1408, "deepseek2.expert_shared_count": 2,
    "deepseek2.vocab_size": 102400,
}

# google/gemma-3-27b-it config.json vision_config (SigLIP so400m at 896 px, no pooling head)
GEMMA3_27B_VISION = {
    "model_type": "siglip_vision_model", "hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27,
    "num_attention_heads": 16, "image_size": 896, "patch_size": 14, "vision_use_head": False,
}

# Qwen/Qwen2.5-VL-7B-Instruct config.json: the text fields are top level, the ViT in vision_config
QWEN2_5_VL_7B = {
    "model_type": "qwen2_5_vl", "vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944,
    "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4, "max_position_embeddings": 128000,
    "tie_word_embeddings": False,
    "vision_config": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                      "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2,
                      "temporal_patch_size": 2, "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31]},
}

# google/gemma-4-26B-A4B config.json (Gemma4ForConditionalGeneration; a verbatim copy is vendored in
# github ai-dynamo/aiconfigurator, model_configs/google--gemma-4-26B-A4B_config.json): the text_config's
# shape fields and the vision tower's. audio_config is null in this checkpoint.
GEMMA4_26B_A4B = {
    "model_type": "gemma4", "tie_word_embeddings": True, "audio_config": None,
    "text_config": {
        "model_type": "gemma4_text", "hidden_size": 2816, "num_hidden_layers": 30, "num_attention_heads": 16,
        "num_key_value_heads": 8, "num_global_key_value_heads": 2, "head_dim": 256, "global_head_dim": 512,
        "attention_k_eq_v": True, "attention_bias": False, "intermediate_size": 2112, "enable_moe_block": True,
        "num_experts": 128, "top_k_experts": 8, "moe_intermediate_size": 704, "num_kv_shared_layers": 0,
        "use_double_wide_mlp": False, "hidden_size_per_layer_input": 0, "vocab_size": 262144,
        "vocab_size_per_layer_input": 262144, "sliding_window": 1024, "max_position_embeddings": 262144,
        "layer_types": ["full_attention" if i % 6 == 5 else "sliding_attention" for i in range(30)],
        "tie_word_embeddings": True,
    },
    "vision_config": {
        "model_type": "gemma4_vision", "hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27,
        "num_attention_heads": 16, "num_key_value_heads": 16, "head_dim": 72, "global_head_dim": 72,
        "patch_size": 16, "pooling_kernel_size": 3, "position_embedding_size": 10240, "attention_bias": False,
        "use_clipped_linears": False, "standardize": True,
    },
}
