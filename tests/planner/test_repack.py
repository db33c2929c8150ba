"""llama.cpp's CPU_REPACK buffer and CPU_Mapped span, against llama.cpp's own log.

Measured with llama-cpp-python 0.3.36 (this project's AVX2 build) loading SmolLM2-135M-Instruct
requantized from the demo GGUF by llama_model_quantize (bench/estimator_accuracy.py does the
same): "load_tensors: CPU_Mapped model buffer size = … MiB" / "CPU_REPACK model buffer size = … MiB",
printed with two decimals; Q4_K_M also logged 16 "repack: repack tensor blk.N.ffn_down.weight with
q4_K_8x8" lines (the ffn_down tensors that kept Q4_K; SmolLM2's 576-wide rows fall back to Q5_0).
"""

import pytest

from planner.estimator import HARDWARE_PROFILES, Workload, estimate
from planner.estimator.repack import is_repacked, mapped_bytes, repack_bytes, repacked_tensors
from planner.presets import preset_architecture

SMOL = preset_architecture("smollm2-135m")
MiB = 2**20

# ftype: (CPU_Mapped MiB, CPU_REPACK MiB) as llama.cpp printed them
MEASURED = {"Q4_K_M": (98.87, 7.59), "Q4_K_S": (95.61, 12.81), "Q4_0": (85.30, 56.95), "IQ4_NL": (85.62, 55.53),
            "F16": (256.63, 0.0)}


@pytest.mark.parametrize("ftype", sorted(MEASURED))
def test_buffers_match_llama_cpp_log(ftype):
    mapped, repack = MEASURED[ftype]
    assert round(mapped_bytes(SMOL, ftype) / MiB, 2) == mapped
    assert round(repack_bytes(SMOL, ftype)[0] / MiB, 2) == repack


def test_q4_k_m_repacks_the_q4_k_ffn_down_tensors():
    names = [n for n, _, _ in repacked_tensors(SMOL, "Q4_K_M")]
    assert len(names) == 16 and all(n.endswith("ffn_down.weight") for n in names)
    assert "blk.3.ffn_down.weight" in names and "blk.0.ffn_down.weight" not in names   # blk.0 is Q6_K


def test_type_and_shape_rules_of_the_avx2_build():
    assert is_repacked("blk.0.attn_q.weight", "Q4_0", (4096, 4096))
    assert not is_repacked("blk.0.attn_q.weight", "Q4_0", (4096, 4100))          # ne[1] % 8
    assert not is_repacked("blk.0.attn_q.weight", "Q8_0", (4096, 4096))          # no x86 layout
    assert is_repacked("blk.0.attn_q.weight", "Q8_0", (4096, 4096), "arm-i8mm")
    assert not is_repacked("token_embd.weight", "Q4_0", (4096, 32000))           # GET_ROWS
    assert is_repacked("blk.0.ffn_up_exps.weight", "Q4_K", (4096, 1408, 64))     # MUL_MAT_ID, 3-D
    assert not is_repacked("blk.0.attn_k_b.weight", "Q4_0", (128, 512, 128))     # 3-D MUL_MAT


def test_cpu_rows_count_the_repacked_copy_and_gpus_do_not():
    cpu = estimate(SMOL, HARDWARE_PROFILES["cpu-2core-24gb"], Workload(context=512), schemes=["Q4_K_M"]).rows[0]
    assert cpu.repack_bytes == 7_962_624 and "CPU_REPACK" in cpu.formulas["repack_bytes"]
    gpu = estimate(SMOL, HARDWARE_PROFILES["rtx-4090"], Workload(context=512), schemes=["Q4_K_M"]).rows[0]
    assert gpu.repack_bytes == 0
