"""Shape fields of published hybrid / recurrent config.json files (not a test module).

Each dict carries the fields transformers' config class and the estimator read, with the Hugging
Face repo it comes from; the rest of each file (rope, token ids, multipliers) changes no
parameter or cache size. Fields written from the files as their model cards and transformers'
docs describe them; where a value was not checked against the file itself it says so.
"""

# Qwen/Qwen3-Next-80B-A3B-Instruct config.json (every layer MoE; full attention every 4th layer,
# gated DeltaNet otherwise; the checkpoint's mtp.* layer is not declared in config.json)
QWEN3_NEXT_80B = {
    "model_type": "qwen3_next", "vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 5120,
    "num_hidden_layers": 48, "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 256,
    "full_attention_interval": 4, "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128,
    "linear_value_head_dim": 128, "linear_num_key_heads": 16, "linear_num_value_heads": 32,
    "num_experts": 512, "num_experts_per_tok": 10, "moe_intermediate_size": 512,
    "shared_expert_intermediate_size": 512, "decoder_sparse_step": 1, "mlp_only_layers": [],
    "max_position_embeddings": 262144, "tie_word_embeddings": False,
}

# ai21labs/Jamba-v0.1 config.json (attention every 8th layer from 4, MoE every 2nd from 1)
JAMBA_V01 = {
    "model_type": "jamba", "vocab_size": 65536, "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "num_experts": 16,
    "num_experts_per_tok": 2, "expert_layer_period": 2, "expert_layer_offset": 1, "attn_layer_period": 8,
    "attn_layer_offset": 4, "mamba_d_state": 16, "mamba_d_conv": 4, "mamba_expand": 2, "mamba_dt_rank": 256,
    "mamba_conv_bias": True, "mamba_proj_bias": False, "max_position_embeddings": 262144,
    "tie_word_embeddings": False,
}

# tiiuae/Falcon-H1-7B-Instruct: depth 44, width 3072, 12 attention heads / 2 KV, 24 Mamba-2 heads
# of 128, d_state 256 (transformers' FalconH1 docs table); intermediate_size, vocab_size and
# mamba_d_ssm as a second public copy of the fields has them (vocab_size 130048 or 130049: unsure).
FALCON_H1_7B = {
    "model_type": "falcon_h1", "vocab_size": 130048, "hidden_size": 3072, "intermediate_size": 12288,
    "num_hidden_layers": 44, "num_attention_heads": 12, "num_key_value_heads": 2, "head_dim": 128,
    "mamba_d_ssm": 3072, "mamba_n_heads": 24, "mamba_d_head": 128, "mamba_n_groups": 1, "mamba_d_state": 256,
    "mamba_d_conv": 4, "mamba_expand": 2, "mamba_conv_bias": True, "mamba_proj_bias": False,
    "mamba_rms_norm": False, "projectors_bias": False, "max_position_embeddings": 262144,
    "tie_word_embeddings": False,
}

# nvidia/Nemotron-H-8B-Base-8K config.json: 52 layers, 24 Mamba-2 (M), 4 attention (*), 24 MLP (-)
# (arXiv:2504.03624 Table 1). The exact order of the pattern string is from memory, not checked.
NEMOTRON_H_8B = {
    "model_type": "nemotron_h", "vocab_size": 131072, "hidden_size": 4096, "intermediate_size": 21504,
    "num_hidden_layers": 52, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
    "hybrid_override_pattern": "M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M-M-M-M-M-",
    "mamba_num_heads": 128, "mamba_head_dim": 64, "ssm_state_size": 128, "n_groups": 8, "conv_kernel": 4,
    "expand": 2, "use_conv_bias": True, "mamba_proj_bias": False, "mlp_bias": False, "attention_bias": False,
    "max_position_embeddings": 8192, "tie_word_embeddings": False,
}

# ibm-granite/granite-4.0-h-tiny config.json (MoE: 64 experts of 512, top 6, shared MLP 1024; 4 of
# 40 layers attention, at 5, 15, 25, 35). Checked against a second copy of the fields in a public
# repository, not against the Hugging Face file itself.
GRANITE_4_H_TINY = {
    "model_type": "granitemoehybrid", "vocab_size": 100352, "hidden_size": 1536, "intermediate_size": 512,
    "num_hidden_layers": 40, "num_attention_heads": 12, "num_key_value_heads": 4,
    "layer_types": ["attention" if i in (5, 15, 25, 35) else "mamba" for i in range(40)],
    "num_local_experts": 64, "num_experts_per_tok": 6, "shared_intermediate_size": 1024,
    "mamba_n_heads": 48, "mamba_d_head": 64, "mamba_d_state": 128, "mamba_n_groups": 1, "mamba_d_conv": 4,
    "mamba_expand": 2, "mamba_conv_bias": True, "mamba_proj_bias": False, "position_embedding_type": "nope",
    "max_position_embeddings": 131072, "tie_word_embeddings": True,
}

# ibm-granite/granite-4.0-h-small config.json (MoE: 72 experts of 768, top 10, shared MLP 1536 on every
# layer; 4 of 40 layers attention, at 5, 15, 25, 35; NoPE). The expert and shared widths are those of
# the planner's preset (planner/preset_configs.py), which give the card's 32B total and 9B active; a
# copy of the fields with 512 / 8192 gives 26.4B total and 10.8B active, against the card.
GRANITE_4_H_SMALL = {
    "model_type": "granitemoehybrid", "vocab_size": 100352, "hidden_size": 4096, "intermediate_size": 768,
    "num_hidden_layers": 40, "num_attention_heads": 32, "num_key_value_heads": 8,
    "layer_types": ["mamba"] * 5 + ["attention"] + ["mamba"] * 9 + ["attention"] + ["mamba"] * 9 + ["attention"]
    + ["mamba"] * 9 + ["attention"] + ["mamba"] * 4,
    "num_local_experts": 72, "num_experts_per_tok": 10, "shared_intermediate_size": 1536,
    "mamba_n_heads": 128, "mamba_d_head": 64, "mamba_d_state": 128, "mamba_n_groups": 1, "mamba_d_conv": 4,
    "mamba_expand": 2, "mamba_chunk_size": 256, "mamba_conv_bias": True, "mamba_proj_bias": False,
    "attention_bias": False, "position_embedding_type": "nope", "max_position_embeddings": 131072,
    "tie_word_embeddings": True, "hidden_act": "silu", "rms_norm_eps": 1e-5, "embedding_multiplier": 12,
    "logits_scaling": 8, "residual_multiplier": 0.22, "attention_multiplier": 0.0078125,
}

# LiquidAI/LFM2-1.2B config.json (10 short-conv + 6 attention layers; the MLP width is adjusted
# from intermediate_size: int(2 · 12288 / 3) = 8192)
LFM2_1_2B = {
    "model_type": "lfm2", "vocab_size": 65536, "hidden_size": 2048, "intermediate_size": 12288,
    "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8, "conv_L_cache": 3,
    "conv_bias": False, "block_auto_adjust_ff_dim": True, "block_ffn_dim_multiplier": 1.0, "block_multiple_of": 256,
    "full_attn_idxs": [2, 5, 8, 10, 12, 14], "max_position_embeddings": 128000, "tie_word_embeddings": True,
}

HYBRID_CONFIGS = {
    "qwen3-next-80b-a3b": QWEN3_NEXT_80B, "jamba-v0.1": JAMBA_V01, "falcon-h1-7b": FALCON_H1_7B,
    "nemotron-h-8b": NEMOTRON_H_8B, "granite-4.0-h-small": GRANITE_4_H_SMALL, "granite-4.0-h-tiny": GRANITE_4_H_TINY,
    "lfm2-1.2b": LFM2_1_2B,
}
