"""Where a GGUF's layers go on a cuda node (jobs/methods/gpu_placement.py), checked by hand.

The expected numbers are summed here from the files' own tensor sizes (gguf-py's GGUFReader, not
the planner's tensor plan) and the KV cache from the model's published shape (llama.cpp's f16
cache: n_ctx × n_kv_heads × head_dim × 2 bytes, for K and again for V, per layer). The fixed costs
on a GPU (the 500 MiB CUDA context the planner documents, and its compute buffer for this context)
are read once from the placement's own breakdown when everything fits, then held constant; every
other byte is ours. llama.cpp's -ngl counts the output layer as the first GPU unit, then the last
layers: k layers on the GPU is -ngl k + 1 (llama-model.cpp i_gpu_start).
"""

import math
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader, GGUFWriter

from engines import EngineError, open_engine
from formats.gguf_header import read_gguf_header_from_path
from jobs.methods.gpu_placement import llama_gpu_placement, placement_for

GiB, MiB = 2**30, 2**20
N_CTX = 512
RAM = 64 * GiB
CUDA_CONTEXT = 500 * MiB  # planner/estimator/memory.py overhead_bytes: one per GPU
SMOLLM2 = {"layers": 30, "kv_heads": 3, "head_dim": 64}  # HuggingFaceTB/SmolLM2-135M config.json
MOE = {"layers": 6, "hidden": 256, "heads": 4, "kv_heads": 2, "head_dim": 64, "experts": 8,
       "used": 2, "expert_ff": 256, "vocab": 1024}


def kv_per_layer(shape: dict) -> int:
    return 2 * N_CTX * shape["kv_heads"] * shape["head_dim"] * 2


def file_bytes(path: Path) -> tuple[int, list[int], list[int]]:
    """(bytes outside the blocks, bytes of each block, expert bytes of each block), from gguf-py."""
    reader = GGUFReader(str(path))
    n = 1 + max(int(t.name.split(".")[1]) for t in reader.tensors if t.name.startswith("blk."))
    outside, blocks, experts = 0, [0] * n, [0] * n
    for t in reader.tensors:
        if not t.name.startswith("blk."):
            outside += int(t.n_bytes)
            continue
        i = int(t.name.split(".")[1])
        blocks[i] += int(t.n_bytes)
        experts[i] += int(t.n_bytes) if "_exps." in t.name else 0
    return outside, blocks, experts


def place(path: Path, gpu: int, ram: int = RAM) -> dict:
    return llama_gpu_placement(read_gguf_header_from_path(path), gpu_bytes=[gpu], ram_bytes=ram,
                               n_ctx=N_CTX, node="gpu@n1", file=path.name)


def gpu_for(capacity: int) -> int:
    """Free GPU bytes whose planner capacity (× 0.95) is `capacity` or just above."""
    gpu = math.ceil(capacity / 0.95)
    assert int(gpu * 0.95) >= capacity
    return gpu


@pytest.fixture(scope="module")
def moe_gguf(tmp_path_factory) -> Path:
    """A tiny Qwen3-MoE GGUF in F16 (zeros: only its header matters here), laid out as
    convert_hf_to_gguf.py writes one: 1-D tensors and the router (ffn_gate_inp) in F32, the
    rest F16; experts stacked per layer (numpy shapes, the reverse of ggml's ne)."""
    s = MOE
    path = tmp_path_factory.mktemp("moe") / "tiny-qwen3moe-F16.gguf"
    writer = GGUFWriter(str(path), "qwen3moe")
    for key, value in {"block_count": s["layers"], "context_length": 4096,
                       "embedding_length": s["hidden"], "feed_forward_length": 512,
                       "attention.head_count": s["heads"], "attention.head_count_kv": s["kv_heads"],
                       "attention.key_length": s["head_dim"], "attention.value_length": s["head_dim"],
                       "expert_count": s["experts"], "expert_used_count": s["used"],
                       "expert_feed_forward_length": s["expert_ff"], "vocab_size": s["vocab"]}.items():
        writer.add_uint32(f"qwen3moe.{key}", value)
    writer.add_float32("qwen3moe.rope.freq_base", 1e6)
    writer.add_float32("qwen3moe.attention.layer_norm_rms_epsilon", 1e-6)
    writer.add_file_type(1)  # LLAMA_FTYPE_MOSTLY_F16
    h, q, kv, e, f = (s["hidden"], s["heads"] * s["head_dim"], s["kv_heads"] * s["head_dim"],
                      s["experts"], s["expert_ff"])
    f16, f32 = np.float16, np.float32
    tensors = [("token_embd.weight", (s["vocab"], h), f16), ("output_norm.weight", (h,), f32),
               ("output.weight", (s["vocab"], h), f16)]
    for i in range(s["layers"]):
        tensors += [(f"blk.{i}.{name}.weight", shape, dtype) for name, shape, dtype in (
            ("attn_norm", (h,), f32), ("attn_q", (q, h), f16), ("attn_k", (kv, h), f16),
            ("attn_v", (kv, h), f16), ("attn_output", (h, q), f16),
            ("attn_q_norm", (s["head_dim"],), f32), ("attn_k_norm", (s["head_dim"],), f32),
            ("ffn_norm", (h,), f32), ("ffn_gate_inp", (e, h), f32),
            ("ffn_gate_exps", (e, f, h), f16), ("ffn_up_exps", (e, f, h), f16),
            ("ffn_down_exps", (e, h, f), f16))]
    for name, shape, dtype in tensors:
        writer.add_tensor(name, np.zeros(shape, dtype=dtype))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def fixed_costs(path: Path) -> int:
    """The CUDA context and compute buffer on the GPU, from a placement where everything fits."""
    [gpu] = place(path, 8 * GiB)["info"]["planned_gpu"]
    assert gpu["overhead_bytes"] == CUDA_CONTEXT
    return gpu["overhead_bytes"] + gpu["compute_bytes"]


def test_the_demo_model_fits_whole_on_a_large_gpu(demo_gguf):
    outside, blocks, _ = file_bytes(demo_gguf)
    # By hand: a block holds 3,538,944 weights (q, o 576 x 576; k, v 192 x 576; gate, up, down
    # 1536 x 576) in Q4_1 (20 B per 32) and two 576-wide f32 norms; outside the blocks, the tied
    # embedding 49,152 x 576 in Q8_0 (34 B per 32) and the f32 output norm.
    assert blocks == [3_538_944 * 20 // 32 + 2 * 576 * 4] * 30 == [2_216_448] * 30
    assert outside == 49_152 * 576 * 34 // 32 + 576 * 4 == 30_083_328
    placement = place(demo_gguf, 8 * GiB)
    info = placement["info"]
    assert placement["options"] == {"n_gpu_layers": 99, "flash_attn": False}  # 99: every unit
    assert (info["layers_on_gpu"], info["n_layers"], info["output_on_gpu"]) == (30, 30, True)
    [gpu] = info["planned_gpu"]
    assert gpu["model_bytes"] == outside + sum(blocks) == 96_576_768  # every tensor of the file
    assert gpu["kv_bytes"] == SMOLLM2["layers"] * kv_per_layer(SMOLLM2) == 30 * 393_216
    assert info["planned_ram_bytes"] == 0 and "expert_offload" not in info
    assert info["kv_type"] == "f16" and info["context"] == N_CTX


def test_a_gpu_holding_ten_layers_gets_the_last_ten_and_the_output_layer(demo_gguf):
    outside, blocks, _ = file_bytes(demo_gguf)
    per_layer = [b + kv_per_layer(SMOLLM2) for b in blocks]
    fixed = fixed_costs(demo_gguf)

    def need(k: int) -> int:  # output layer (with the tied embeddings) + the last k layers
        return fixed + outside + sum(per_layer[30 - k:])

    placement = place(demo_gguf, gpu_for((need(10) + need(11)) // 2))
    info = placement["info"]
    assert placement["options"]["n_gpu_layers"] == 11
    assert (info["layers_on_gpu"], info["output_on_gpu"]) == (10, True)
    assert info["planned_gpu"][0]["total_bytes"] == need(10)
    assert info["planned_ram_bytes"] == sum(per_layer[:20])  # the first 20 layers, weights + KV
    assert "-ngl 11" in info["planner_command"] and "10 of 30 layers" in info["why"]


def test_a_gpu_too_small_for_one_layer_is_refused_with_the_nearest_fix(demo_gguf):
    outside, blocks, _ = file_bytes(demo_gguf)
    fixed = fixed_costs(demo_gguf)
    gpu = 400 * MiB  # less than the CUDA context alone
    with pytest.raises(EngineError) as err:
        place(demo_gguf, gpu)
    one_layer = fixed + outside + blocks[29] + kv_per_layer(SMOLLM2)
    extra = math.ceil((one_layer - int(gpu * 0.95)) / MiB) * MiB  # the solver steps by MiB
    message = str(err.value)
    assert err.value.code == "insufficient_memory" and err.value.status == 507
    assert message.startswith(f"{demo_gguf.name} (Q4_1) at a 512 context can't be placed on node "
                              f"gpu@n1's GPU ({gpu:,} B free)")
    assert f"{extra:,} B more capacity on each device" in message and "fits -ngl 2" in message
    assert message.endswith("It was not run on the CPU instead.")


def test_moe_plan_wanting_experts_in_ram_falls_back_to_whole_layers(moe_gguf):
    L = MOE["layers"]
    outside, blocks, experts = file_bytes(moe_gguf)
    assert all(e > 5 * (b - e) for b, e in zip(blocks, experts))  # experts dominate each layer
    per_layer = [b + kv_per_layer(MOE) for b in blocks]
    fixed = fixed_costs(moe_gguf)
    everything = fixed + outside + sum(per_layer)
    # Room for every layer once the experts of the first three are in RAM (with half a layer's
    # experts to spare): llama-server would run -ngl 99 --n-cpu-moe 2 and -ot for two of block 2's
    # three expert tensors (F16, a third of its experts each): one is less than the half that must
    # still leave, two are enough; of the equal pairs, the first in tensor order (down, gate).
    capacity = everything - sum(experts[:3]) + experts[3] // 2
    thirds = {t.name: int(t.n_bytes) for t in GGUFReader(str(moe_gguf)).tensors if t.name.startswith("blk.2.ffn_")
              and "_exps." in t.name}
    assert sorted(thirds) == [f"blk.2.ffn_{k}_exps.weight" for k in ("down", "gate", "up")]
    assert len(set(thirds.values())) == 1 and experts[2] == 3 * thirds["blk.2.ffn_up_exps.weight"]
    assert experts[2] // 3 < experts[2] - experts[3] // 2 <= 2 * experts[2] // 3
    placement = place(moe_gguf, gpu_for(capacity))
    info = placement["info"]
    # Whole layers instead: the most last layers that fit beside the output layer.
    k = max(n for n in range(L + 1) if fixed + outside + sum(per_layer[L - n:]) <= capacity)
    assert k == 3
    assert placement["options"] == {"n_gpu_layers": k + 1, "flash_attn": False}
    assert info["layers_on_gpu"] == k
    assert info["expert_offload"].startswith("not used: the solver's plan was -ngl 99 --n-cpu-moe 2 "
                                             "-ot 'blk\\.2\\.ffn_(down|gate)_exps=CPU' (the experts of the "
                                             "first 2 layers and blk.2.ffn_down_exps.weight, "
                                             "blk.2.ffn_gate_exps.weight in RAM)")
    assert "no tensor-override argument" in info["expert_offload"]
    assert info["expert_offload"].endswith(f"whole layers instead: -ngl {k + 1}")


def test_a_file_unlike_the_planners_plan_keeps_every_layer_on_the_gpu_and_says_why(moe_gguf, tmp_path):
    header = read_gguf_header_from_path(moe_gguf)
    header.metadata["general.file_type"] = 0  # ALL_F32: the planner has no plan for it
    placement = llama_gpu_placement(header, gpu_bytes=[8 * GiB], ram_bytes=RAM, n_ctx=N_CTX)
    assert placement["options"] == {"n_gpu_layers": -1}
    assert placement["info"]["why"] == ("every layer on the GPU (-1), not planned: the planner has "
                                        "no tensor plan for general.file_type 0")


@pytest.mark.slow
def test_on_this_cpu_machine_a_cuda_load_still_fails_as_before(demo_gguf):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    # No GPU memory to read here: nothing is planned, and the engine refuses as it always has.
    assert placement_for("gguf", [demo_gguf], n_ctx=64, device="cuda", node="gpu@n1") is None
    assert placement_for("gguf", [demo_gguf], n_ctx=64, device="cpu") is None
    planned = place(demo_gguf, 8 * GiB)
    with pytest.raises(EngineError) as err:
        open_engine("gguf", [demo_gguf], n_ctx=64, threads=1, device="cuda", node="gpu@n1",
                    placement=planned)
    assert err.value.code == "gpu_unavailable"
    assert ("node gpu@n1 declares WORKER_DEVICE=cuda but has no usable GPU" in str(err.value)
            or "built without GPU offload" in str(err.value)), str(err.value)
    engine = open_engine("gguf", [demo_gguf], n_ctx=64, threads=1, device="cpu", placement=planned)
    try:
        assert engine.info["device"] == "cpu" and "gpu_placement" not in engine.info
    finally:
        engine.unload()
