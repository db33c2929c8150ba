"""llama.cpp compute buffer model vs the sizes llama.cpp logged ("CPU compute buffer size").

Measured on the dev box with llama-cpp-python 0.3.36, SmolLM2-135M Q4_K_M, n_ubatch 512.
"""

import pytest

from planner.estimator import Workload
from planner.estimator.memory import compute_bytes
from planner.presets import preset_architecture

SMOL = preset_architecture("smollm2-135m")
MiB = 2**20

MEASURED_MIB = {  # (n_ctx, flash_attn): compute buffer MiB
    (512, False): 98.25, (1024, False): 98.25, (2048, False): 99.38, (4096, False): 99.38,
    (8192, False): 166.38, (512, True): 98.25, (1024, True): 98.25, (2048, True): 102.51,
    (4096, True): 98.25, (8192, True): 98.25,
}


@pytest.mark.parametrize("ctx,fa", sorted(MEASURED_MIB))
def test_compute_buffer_within_5_percent_of_llama_cpp(ctx, fa):
    got = compute_bytes(SMOL, Workload(context=ctx, flash_attn=fa))[0] / MiB
    assert got == pytest.approx(MEASURED_MIB[(ctx, fa)], rel=0.05)


def test_logits_dominate_small_context():
    # 49,152 vocab × 512 ubatch × 4 B + 2 × 576 × 512 × 4 B = 98.25 MiB exactly
    assert compute_bytes(SMOL, Workload(context=512))[0] == 49152 * 512 * 4 + 2 * 576 * 512 * 4


def test_attention_scores_dominate_long_context_without_flash_attention():
    no_fa = compute_bytes(SMOL, Workload(context=8192))[0]
    assert no_fa == 8192 * 512 * (9 + 1) * 4 + (3 * 576 + 2 * 576 + 2 * 192) * 512 * 4
    assert compute_bytes(SMOL, Workload(context=8192, flash_attn=True))[0] < no_fa


def test_transformers_counts_fp32_logits_for_the_prompt():
    arch = preset_architecture("llama-3.1-8b")
    got = compute_bytes(arch, Workload(runtime="transformers", context=1024))[0]
    logits = 1024 * 128256 * 4
    activations = 1024 * (4 * 4096 + 4096 + 2 * 1024 + 3 * 14336) * 2
    assert got == logits + activations
