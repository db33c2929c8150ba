"""Recurrent state (conv + SSM / delta-rule state per sequence, independent of the context) and
the KV cache of the attention layers only, for hybrid models: two figures, as llama.cpp logs two
buffers, that totals add once each.

Pinned numbers, measured outside the estimator:
- llama.cpp (llama-cpp-python 0.3.36): the "llama_memory_recurrent: … R (f32): … MiB, S (f32): …
  MiB" and "llama_kv_cache: size = … MiB" lines when loading models converted by
  convert_hf_to_gguf.py with the real models' recurrent and attention widths in 1-4 layers
  (bench/hybrid_ground_truth.py --dims; llama.cpp prints MiB with two decimals);
- transformers 5.23: the cache tensors a bf16 forward of the tiny models left in DynamicCache.
"""

import pytest

from planner.estimator import HARDWARE_PROFILES, Architecture, Workload, estimate
from planner.estimator.memory import kv_cache_bytes, recurrent_bytes
from tests.planner.hybrid_configs import (FALCON_H1_7B, GRANITE_4_H_TINY, JAMBA_V01, LFM2_1_2B, NEMOTRON_H_8B,
                                          QWEN3_NEXT_80B)

MiB = 2**20

# (config, recurrent layers in the measured model, R MiB, S MiB, attention layers, KV MiB at n_ctx 4096)
LLAMA_CPP_MEASURED = {
    "qwen3-next-80b": (QWEN3_NEXT_80B, 3, 0.28, 6.00, 1, 8.00),
    "jamba-v0.1": (JAMBA_V01, 1, 0.09, 0.50, 1, 16.00),
    "falcon-h1-7b": (FALCON_H1_7B, 2, 0.08, 6.00, 2, 8.00),
    "nemotron-h-8b": (NEMOTRON_H_8B, 1, 0.12, 4.00, 1, 16.00),
    "granite-4.0-h-tiny": (GRANITE_4_H_TINY, 1, 0.04, 1.50, 1, 8.00),
    "lfm2-1.2b": (LFM2_1_2B, 1, 0.02, 0.00, 1, 8.00),
}


@pytest.mark.parametrize("key", sorted(LLAMA_CPP_MEASURED))
def test_llama_cpp_state_and_kv_per_layer_as_measured(key):
    cfg, n_rec, r_mib, s_mib, n_attn, kv_mib = LLAMA_CPP_MEASURED[key]
    a = Architecture.from_config(cfg)
    h = a.hybrid
    assert abs(n_rec * h.n_embd_r(a.hidden_size) * 4 / MiB - r_mib) < 0.005
    assert abs(n_rec * h.n_embd_s() * 4 / MiB - s_mib) < 0.005
    per_attn_layer = kv_cache_bytes(a, Workload(context=4096))[0] / a.kv_layers
    assert abs(n_attn * per_attn_layer / MiB - kv_mib) < 0.005


def test_qwen3_next_keeps_kv_for_12_of_48_layers_and_a_fixed_state():
    a = Architecture.from_config(QWEN3_NEXT_80B)
    assert a.kv_layers == 12
    kv_32k = kv_cache_bytes(a, Workload(context=32768))[0]   # the KV cache alone
    assert kv_32k == 12 * 8.00 * 8 * MiB == 805_306_368   # 8.00 MiB per attention layer at 4096 (measured) × 8
    state = recurrent_bytes(a, Workload(context=32768))[0]
    assert state == recurrent_bytes(a, Workload(context=512))[0]     # independent of the context
    # 36 DeltaNet layers × the measured per-layer figure (3 layers printed to 0.005 MiB: ×12 of that error)
    assert abs(state / MiB - 36 * (0.28 + 6.00) / 3) < 12 * 0.005
    assert state == 36 * (24_576 + 524_288) * 4 == 79_036_416   # R (3 × 8,192 conv) + S (128 × 4,096), F32
    assert recurrent_bytes(a, Workload(context=4096, batch=4))[0] == 4 * state   # one state per sequence


def test_llama_cpp_two_sequences_measured_on_the_tiny_granite():
    # tiny Granite 4 (3 Mamba-2 layers, d_inner 512, 1 group, d_state 32, d_conv 4), n_seq_max 2:
    # "R + S" 0.42 MiB and the KV 2.00 MiB (n_ctx 4096 split into 2 streams of 2048)
    cfg = {"model_type": "granitemoehybrid", "vocab_size": 49152, "hidden_size": 256, "num_hidden_layers": 4,
           "layer_types": ["mamba", "mamba", "attention", "mamba"], "num_attention_heads": 4,
           "num_key_value_heads": 2, "intermediate_size": 512, "num_local_experts": 4, "num_experts_per_tok": 2,
           "shared_intermediate_size": 256, "mamba_n_heads": 8, "mamba_d_head": 64, "mamba_d_state": 32,
           "mamba_n_groups": 1, "mamba_d_conv": 4, "mamba_expand": 2}
    a = Architecture.from_config(cfg)
    wl = Workload(context=2048, batch=2)
    assert abs(recurrent_bytes(a, wl)[0] / MiB - 0.42) < 0.01
    assert kv_cache_bytes(a, wl)[0] / MiB == 2.00


# transformers 5.23, tiny models of bench/hybrid_ground_truth.py, batch 2 after a 37-token bf16 forward:
# per recurrent layer conv_states (2, channels, d_conv) bf16 and recurrent_states float32.
TRANSFORMERS_MEASURED = {
    # name: (config fields of the tiny model, recurrent layers, conv elements, state elements) per sequence
    "qwen3-next": ({"model_type": "qwen3_next", "hidden_size": 256, "num_hidden_layers": 4,
                    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "intermediate_size": 512,
                    "linear_conv_kernel_dim": 4, "linear_key_head_dim": 32, "linear_value_head_dim": 32,
                    "linear_num_key_heads": 2, "linear_num_value_heads": 4, "num_experts": 8,
                    "num_experts_per_tok": 2, "moe_intermediate_size": 64, "shared_expert_intermediate_size": 64,
                    "vocab_size": 1000}, 3, 256 * 4, 4 * 32 * 32),
    "lfm2": ({"model_type": "lfm2", "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
              "num_key_value_heads": 2, "intermediate_size": 768, "conv_L_cache": 3, "vocab_size": 1000,
              "layer_types": ["conv", "full_attention", "conv", "full_attention"]}, 2, 256 * 3, 0),
}


@pytest.mark.parametrize("key", sorted(TRANSFORMERS_MEASURED))
def test_transformers_state_as_its_cache_holds_it(key):
    cfg, n_rec, conv, state = TRANSFORMERS_MEASURED[key]
    a = Architecture.from_config(cfg)
    assert recurrent_bytes(a, Workload(runtime="transformers", batch=2))[0] == n_rec * (conv * 2 + state * 4) * 2


def test_estimate_rows_carry_the_kv_cache_and_the_recurrent_state_apart():
    a = Architecture.from_config(GRANITE_4_H_TINY)
    row = estimate(a, HARDWARE_PROFILES["rtx-4090"], Workload(context=8192), ["Q4_K_M"]).row("Q4_K_M")
    assert row.recurrent_state_bytes == recurrent_bytes(a, Workload(context=8192))[0] > 0
    assert row.kv_cache_bytes == kv_cache_bytes(a, Workload(context=8192))[0]
    assert "recurrent" not in row.formulas["kv_cache_bytes"]
    assert row.formulas["recurrent_state_bytes"].endswith(f"= {row.recurrent_state_bytes:,} B")


@pytest.mark.parametrize("hardware", ["rtx-4090", "h200", "cpu-ddr5-64gb"])
def test_qwen3_next_at_32k_totals_add_the_kv_and_the_state_once_each(hardware):
    """llama.cpp logs two buffers for a hybrid: "llama_kv_cache: size = …" (the attention layers'
    K and V) and "llama_memory_recurrent: … R (f32) …, S (f32) …". At 32,768: KV 805,306,368 B
    (pinned above from the measured 8.00 MiB per attention layer) and state 79,036,416 B — not a
    "KV" of 884,342,784 B with the state inside it."""
    a = Architecture.from_config(QWEN3_NEXT_80B)
    row = estimate(a, HARDWARE_PROFILES[hardware], Workload(context=32768), ["Q4_K_M"]).row("Q4_K_M")
    assert (row.kv_cache_bytes, row.recurrent_state_bytes) == (805_306_368, 79_036_416)
    assert row.total_bytes == (row.weights_bytes + row.repack_bytes + 805_306_368 + 79_036_416
                                  + row.compute_resident_bytes + row.overhead_bytes + row.training_bytes)
    total_f = row.formulas["total_bytes"]
    assert "805,306,368 KV + 79,036,416 recurrent state + " in total_f and total_f.endswith(f"{row.total_bytes:,} B")
    assert "+79 MB recurrent state" in row.rule_of_thumb_note and "+805 MB KV cache" in row.rule_of_thumb_note


def test_training_rows_have_neither_kv_nor_state():
    a = Architecture.from_config(GRANITE_4_H_TINY)
    row = estimate(a, HARDWARE_PROFILES["h200"], Workload(mode="lora"), ["BF16"]).row("BF16")
    assert row.kv_cache_bytes == row.recurrent_state_bytes == 0
