"""Admission bytes of a variant: its files plus the planner's KV cache and, for a hybrid model, its
recurrent state, each counted once."""

import pytest

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


@pytest.mark.slow
def test_an_f16_checkpoint_is_admitted_at_the_size_it_loads_to_on_a_cpu(demo_hf_f16):
    """The transformers engine upcasts a float16 checkpoint to float32 on a CPU: admission counts
    its tensors twice their file size, which is what the loaded model then holds."""
    import json

    from engines import open_engine
    from runtime.memory import files_bytes, weights_bytes

    files = sorted(demo_hf_f16.iterdir())
    config = json.loads((demo_hf_f16 / "config.json").read_text())
    planned = weights_bytes(files=files, config=config, format="hf", gpu=False)
    engine = open_engine("hf", files, n_ctx=128, threads=2)
    try:
        loaded = engine.memory_bytes()  # the model's own parameter and buffer bytes
    finally:
        engine.unload()
    assert files_bytes(files) < loaded <= planned <= loaded * 1.02, (files_bytes(files), loaded, planned)
