"""Admission bytes of a variant: its files plus the planner's KV cache and, for a hybrid model, its
recurrent state, each counted once."""

from runtime.memory import COMPUTE_OVERHEAD_BYTES, estimate_bytes, kv_bytes
from tests.planner.hybrid_configs import QWEN3_NEXT_80B


def test_a_hybrid_needs_its_kv_cache_and_its_recurrent_state():
    # Qwen3-Next at 32,768 on llama.cpp: KV 805,306,368 B + state 79,036,416 B (tests/planner/test_recurrent_state.py)
    assert kv_bytes(config=QWEN3_NEXT_80B, n_ctx=32768, runtime="llama.cpp") == 805_306_368 + 79_036_416


def test_a_dense_model_needs_its_kv_cache(tmp_path):
    llama = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256}
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"\0" * 1000)
    assert kv_bytes(config=llama, n_ctx=8192, runtime="llama.cpp") == 2**30   # 2 × 32 × 8 × 128 × 8,192 × 2 B
    need = estimate_bytes(files=[weights], config=llama, n_ctx=8192, format="gguf")
    assert need == 1000 + 2**30 + COMPUTE_OVERHEAD_BYTES
