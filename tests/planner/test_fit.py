"""The llama.cpp fit solver: context, -ngl, --n-cpu-moe, -ot, -ts and the llama-server command.

Numbers are derived by hand in each docstring (GiB = 2^30; capacity = memory × 0.95 per device;
500 MiB = 524,288,000 B CUDA context per device; f16 KV = 2 B per element).
"""

import bisect
import re
import shlex
import struct
import subprocess

import pytest

from planner.estimator import HARDWARE_PROFILES, Architecture, EstimatorError, Hardware, Workload
from planner.estimator import estimate
from planner.estimator.fit import context_steps, fit, fit_estimate
from planner.estimator.gguf_quant import gguf_tensor_plan
from planner.estimator.workload import MAX_CONTEXT
from planner.presets import preset_architecture
from tests.planner.hybrid_configs import QWEN3_NEXT_80B

LLAMA8 = preset_architecture("llama-3.1-8b")
LLAMA70 = preset_architecture("llama-3.1-70b")
MIXTRAL = preset_architecture("mixtral-8x7b")
RTX4090 = HARDWARE_PROFILES["rtx-4090"]   # 24 GiB
T4 = HARDWARE_PROFILES["t4"]              # 16 GiB

Q4_K = 144 / 256   # bytes per weight of a Q4_K block (256 weights in 144 B)
Q6_K = 210 / 256


def test_context_steps_are_powers_of_two_from_the_workload_context_and_the_model_maximum():
    assert context_steps(4096, 131072) == [4096, 8192, 16384, 32768, 65536, 131072]
    assert context_steps(3000, 10000) == [4096, 8192, 10000]
    assert context_steps(20000, 8192) == []


def test_context_steps_stop_at_the_longest_context_a_workload_allows():
    """Llama 4 Scout declares 10,485,760 positions; a Workload takes at most 10,000,000 tokens."""
    steps = context_steps(32768, 10_485_760)
    assert steps[-2:] == [8_388_608, MAX_CONTEXT] and MAX_CONTEXT == 10_000_000
    assert all(Workload(context=c).context == c for c in steps)


def test_llama_4_scout_fit_searches_up_to_the_workload_limit_and_says_so():
    """On a machine where every candidate fits, the fit stops at 10,000,000, not 10,485,760."""
    scout = preset_architecture("llama-4-scout")
    assert scout.max_position_embeddings == 10_485_760
    big = Hardware.custom(name="big", memory_gb=65536, bandwidth_gbs=8000, tflops=1000)
    f = fit(scout, big, Workload(context=32768), "Q4_K_M")
    assert f.context == MAX_CONTEXT and f.fully_on_device and " -c 10000000 " in f.command
    assert any("10,485,760 positions are beyond the longest context a workload may ask for (10,000,000" in r
               for r in f.reasons)
    on_h100s = fit(scout, HARDWARE_PROFILES["h100-80gb"].with_devices(8), Workload(context=32768), "Q4_K_M")
    assert 32768 <= on_h100s.context <= MAX_CONTEXT


def test_dense_8b_q4_k_m_fits_a_4090_fully_with_a_64k_context():
    """Llama 3.1 8B Q4_K_M weights 4,912,898,304 B (pinned in test_bits_per_weight), no flash attention.

    At 65,536: KV = 2 × 32 layers × 8 kv_heads × 128 × 65,536 × 2 B = 8,589,934,592;
    compute (attention phase) = 65,536 n_kv × 512 ubatch × (32 heads + 1 mask) × 4 B
      + (3·4096 + 2·4096 + 2·1024) × 512 × 4 = 4,429,185,024 + 46,137,344 = 4,475,322,368;
    total = 4,912,898,304 + 8,589,934,592 + 4,475,322,368 + 524,288,000 = 18,502,443,264
      ≤ 24 GiB × 0.95 = 24,481,313,587.
    At 131,072: KV 17,179,869,184, compute 8,858,370,048 + 46,137,344 = 8,904,507,392,
    total 31,521,562,880 > capacity. So 65,536, every layer on the GPU.
    """
    f = fit(LLAMA8, RTX4090, Workload(context=4096), "Q4_K_M")
    assert (f.context, f.gpu_layers, f.ngl, f.n_cpu_moe, f.tensor_split) == (65536, 32, 99, 0, [])
    assert f.fits and f.fully_on_device and f.system_ram_bytes == 0
    assert f.devices == [{"model_bytes": 4_912_898_304, "kv_bytes": 8_589_934_592, "recurrent_state_bytes": 0,
                          "compute_bytes": 4_475_322_368, "overhead_bytes": 524_288_000, "total_bytes": 18_502_443_264}]
    assert f.command == "llama-server -m <path/to/Llama-3.1-8B-Q4_K_M.gguf> -c 65536 -ngl 99 -fa off"
    assert any("65,536" in r for r in f.reasons)


def test_flash_attention_and_q8_kv_reach_the_full_128k_and_appear_in_the_command():
    """q8_0 KV at 131,072: 2 × 32 × 8 × 128 × 131,072 × 34/32 = 9,126,805,504 B; with flash attention
    the compute buffer is max(logits 128,256 × 512 × 4 + 2 × 4096 × 512 × 4 = 279,445,504, …) ≈ 0.3 GB;
    4.91 + 9.13 + 0.28 + 0.52 GB ≈ 14.9 GB < 24.48 GB."""
    f = fit(LLAMA8, RTX4090, Workload(context=4096, kv_dtype="q8_0", flash_attn=True), "Q4_K_M")
    assert f.context == 131072 and f.devices[0]["kv_bytes"] == 9_126_805_504
    assert f.command == ("llama-server -m <path/to/Llama-3.1-8B-Q4_K_M.gguf> -c 131072 -ngl 99 -fa on "
                         "-ctk q8_0 -ctv q8_0")


def test_70b_q4_k_m_on_one_4090_offloads_layers_with_ngl():
    """Llama 3.1 70B Q4_K_M needs ~45 GB at 4,096; the last 41 layers fit (the same 41 that
    test_offload derives from the per-layer budget), so -ngl 42 = 41 repeating layers + output
    (llama-model.cpp: i_gpu_start = 80 + 1 − 42 = 39, the 42 units 39..80, unit 80 the output).
    KV per layer = 2 × 8 × 128 × 4,096 × 2 B = 16,777,216; on the GPU 41 × that = 687,865,856.
    RAM: layers 0..38 (weights + KV), nothing else (the output layer is on the GPU)."""
    f = fit(LLAMA70, RTX4090, Workload(context=4096), "Q4_K_M")
    assert (f.context, f.gpu_layers, f.ngl, f.n_cpu_moe) == (4096, 41, 42, 0)
    assert f.devices[0]["kv_bytes"] == 41 * 16_777_216
    assert f.devices[0]["total_bytes"] <= 24_481_313_587 and f.fits and not f.fully_on_device and f.output_on_device
    layers_in_ram = sum(b for name, _, b in gguf_tensor_plan(LLAMA70, "Q4_K_M")
                        if name.startswith("blk.") and int(name.split(".")[1]) < 39)
    assert f.system_ram_bytes == layers_in_ram + 39 * 16_777_216
    assert f.command == "llama-server -m <path/to/Llama-3.1-70B-Q4_K_M.gguf> -c 4096 -ngl 42 -fa off"
    # the layers in RAM are read at a speed nobody measured for this machine: no decode speed shown
    assert f.decode_tokens_per_s is None and "read from system RAM" in f.decode_withheld


def _llama_cpp_device_of_units(ts: list[int], act: int) -> list[int]:
    """llama-model.cpp load_tensors, in float32 as there: splits[i] = cumulative ts / Σ ts, unit
    j → upper_bound(splits, float(j) / act)."""
    f32 = lambda x: struct.unpack("f", struct.pack("f", x))[0]   # noqa: E731
    total, cum = 0.0, []
    for t in ts:
        total = f32(total + t)
        cum.append(total)
    splits = [f32(c / total) for c in cum]
    return [bisect.bisect_right(splits, f32(f32(j) / act)) for j in range(act)]


def test_70b_q4_k_m_on_two_4090s_splits_evenly_and_runs_fully_on_gpu():
    """2 × 24 GiB, -ngl 99: 81 GPU units (80 layers + output). -ts 41,40 in llama.cpp's float32
    arithmetic gives device 0 units 0..40 (layers 0..40) and device 1 the other 39 layers + output.
    KV at 4,096: 41 × 16,777,216 = 687,865,856 and 39 × 16,777,216 = 654,311,424. Every device has
    its own 500 MiB context."""
    f = fit(LLAMA70, RTX4090.with_devices(2), Workload(context=4096), "Q4_K_M")
    assert (f.gpu_layers, f.ngl, f.tensor_split, f.context) == (80, 99, [41, 40], 4096)
    assert _llama_cpp_device_of_units([41, 40], 81) == [0] * 41 + [1] * 40
    assert [d["kv_bytes"] for d in f.devices] == [687_865_856, 654_311_424]
    assert [d["overhead_bytes"] for d in f.devices] == [524_288_000, 524_288_000]
    assert all(d["total_bytes"] <= 24_481_313_587 for d in f.devices) and f.fully_on_device
    assert f.command == "llama-server -m <path/to/Llama-3.1-70B-Q4_K_M.gguf> -c 4096 -ngl 99 -fa off -ts 41,40"


def test_mixtral_q4_k_m_on_a_16gb_t4_moves_the_experts_of_16_layers_to_ram():
    """Mixtral 8x7B: per layer 3 expert tensors of 4096 × 14336 × 8 = 469,762,048 weights.
    Q4_K_M: gate/up Q4_K (264,241,152 B each); ffn_down Q6_K (385,351,680 B) on llama.cpp's
    use_more_bits layers (i < 4, i ≥ 28, (i − 4) % 3 == 2), else Q4_K. So a layer's experts are
    913,833,984 B (Q6_K down) or 792,723,456 B. Layers 0..15: Q6_K at 0,1,2,3,6,9,12,15 (8), Q4_K
    at 8 → 8 × 913,833,984 + 8 × 792,723,456 = 13,652,459,520; layers 0..14: 12,738,625,536.
    The whole model at 4,096 needs 29,831,847,936 B (estimate's total_bytes); capacity 16 GiB ×
    0.95 = 16,320,875,724, so 13,510,972,212 B must leave: 15 layers are not enough, 16 are.
    """
    assert round(469_762_048 * Q4_K) == 264_241_152 and round(469_762_048 * Q6_K) == 385_351_680
    f = fit(MIXTRAL, T4, Workload(context=4096), "Q4_K_M")
    assert (f.n_cpu_moe, f.gpu_layers, f.ngl, f.context) == (16, 32, 99, 4096)
    assert f.system_ram_bytes == 13_652_459_520
    assert f.devices[0]["model_bytes"] == 29_831_847_936 - 13_652_459_520 - 536_870_912 - 322_961_408 - 524_288_000
    assert f.fits and not f.fully_on_device
    assert f.command == "llama-server -m <path/to/Mixtral-8x7B-Q4_K_M.gguf> -c 4096 -ngl 99 --n-cpu-moe 16 -fa off"
    assert any("first 16 of 32 layers" in r for r in f.reasons)


def test_mixtral_decode_reads_the_active_experts_from_ram():
    """2 of 8 experts per token: RAM reads 13,652,459,520 / 4 = 3,413,114,880 B; the GPU part is
    5,092,794,368 B on the device less the untied token embedding, of which decoding reads one row
    (32,000 × 4096 Q4_K = 73,728,000 B): 5,019,066,368 B. No speed is shown: the T4 has no published
    llama.cpp figure (and the RAM's speed was not measured either)."""
    f = fit(MIXTRAL, T4, Workload(context=4096), "Q4_K_M")
    assert f.decode_tokens_per_s is None
    assert ("decode: 5,019,066,368 B from the device(s), 3,413,114,880 B from RAM per step; speed not shown: "
            "no published llama.cpp figure for NVIDIA T4 16 GB; measure it on a node of ours") in f.reasons


MIXTRAL_ON_4090 = ("llama-server -m <path/to/Mixtral-8x7B-Q4_K_M.gguf> -c 4096 -ngl 99 --n-cpu-moe 6 "
                   "-ot 'blk\\.6\\.ffn_gate_exps=CPU' -fa off")


def test_mixtral_q4_k_m_on_a_4090_keeps_only_one_expert_tensor_of_block_6_in_ram():
    """Mixtral 8x7B Q4_K_M at 4,096 on a 24 GiB 4090: capacity 24 GiB × 0.95 = 24,481,313,587 B;
    everything takes 29,831,847,936 B (as on the T4 above), so 5,350,534,349 B must leave the GPU.
    Each expert tensor is 4096 × 14336 × 8 = 469,762,048 weights: gate and up Q4_K (144 B per 256
    weights) 264,241,152 B each; down Q6_K (210 B per 256) 385,351,680 B on blocks 0–3, 6, 9, …
    (llama.cpp use_more_bits), else Q4_K. Experts of blocks 0–5: 4 × 913,833,984 + 2 × 792,723,456
    = 5,240,782,848 B, 109,751,501 B short. The whole of block 6 (--n-cpu-moe 7) would move
    913,833,984 B more; its smallest tensor is enough (264,241,152 ≥ 109,751,501; gate and up tie,
    gate comes first in the tensor order down, gate, up). So:
      device 29,831,847,936 − 5,240,782,848 − 264,241,152 = 24,326,823,936 B,
      RAM 5,240,782,848 + 264,241,152 = 5,505,024,000 B,
    and 913,833,984 − 264,241,152 = 649,592,832 B more stay on the GPU than with --n-cpu-moe 7
    (device 23,677,231,104 B, RAM 6,154,616,832 B). Decode reads 2 of 8 experts: 5,505,024,000 / 4
    = 1,376,256,000 B from RAM per token."""
    assert round(469_762_048 * Q4_K) == 264_241_152 and 2 * 264_241_152 + 385_351_680 == 913_833_984
    f = fit(MIXTRAL, RTX4090, Workload(context=4096), "Q4_K_M")
    assert f.command == MIXTRAL_ON_4090
    assert (f.ngl, f.n_cpu_moe, f.override_tensor) == (99, 6, r"blk\.6\.ffn_gate_exps=CPU")
    assert f.partial_experts == ["blk.6.ffn_gate_exps.weight"]
    assert f.devices[0]["total_bytes"] == 24_326_823_936 <= 24_481_313_587
    assert f.system_ram_bytes == 5_505_024_000 and f.fits and not f.fully_on_device
    assert any("of block 6's experts, ffn_gate_exps (264,241,152 B) goes to system RAM too "
               r"(-ot 'blk\.6\.ffn_gate_exps=CPU', llama.cpp's --override-tensor) and ffn_down_exps and "
               "ffn_up_exps stay on the GPU: 649,592,832 B more on the GPU than --n-cpu-moe 7" in r for r in f.reasons)
    assert any(", 1,376,256,000 B from RAM per step" in r for r in f.reasons)
    # the whole-layer plan it beats, and a hand-set --n-cpu-moe means whole layers only
    whole = fit(MIXTRAL, RTX4090, Workload(context=4096), "Q4_K_M", n_cpu_moe=7)
    assert (whole.devices[0]["total_bytes"], whole.system_ram_bytes) == (23_677_231_104, 6_154_616_832)
    assert whole.override_tensor == "" and " -ot " not in whole.command
    by_hand = fit(MIXTRAL, RTX4090, Workload(context=4096), "Q4_K_M", n_cpu_moe=6)
    assert by_hand.override_tensor == "" and by_hand.gpu_layers < 32   # block 6's experts must leave


def test_the_printed_command_moves_exactly_those_tensors_as_llama_cpp_parses_it(tmp_path):
    r"""The command as a shell passes it (real bash; llama-server a function printing its arguments),
    then read as llama.cpp reads it: --n-cpu-moe N adds the pattern blk\.i\.ffn_(up|down|gate)_exps
    for each i < N (common/arg.cpp), -ot splits its value at ',' and each override at its first '='
    into a pattern and a buffer type name (parse_tensor_buffer_overrides), and the loader puts a
    tensor in that buffer when regex_search finds the pattern in its name. Found that way: the 18
    expert tensors of blocks 0–5 and blk.6.ffn_gate_exps.weight, and their bytes are the RAM the Fit
    reports (5,505,024,000 B: previous test)."""
    f = fit(MIXTRAL, RTX4090, Workload(context=4096), "Q4_K_M")
    placeholder = shlex.split(f.command)[2]
    run = subprocess.run(["bash", "-c", 'llama-server() { printf "%s\\n" "$@"; }; '
                          + f.command.replace(placeholder, shlex.quote("/models/mixtral q4.gguf"))],
                         cwd=tmp_path, capture_output=True, text=True, timeout=10)
    assert run.returncode == 0, run.stderr
    args = run.stdout.splitlines()
    assert args[args.index("-ot") + 1] == r"blk\.6\.ffn_gate_exps=CPU"
    patterns = [rf"blk\.{i}\.ffn_(up|down|gate)_exps" for i in range(int(args[args.index("--n-cpu-moe") + 1]))]
    for flag, value in zip(args, args[1:]):
        if flag == "-ot":
            for override in value.split(","):
                pattern, buffer_type = override.split("=", 1)
                assert buffer_type == "CPU"
                patterns.append(pattern)
    plan = {name: b for name, _, b in gguf_tensor_plan(MIXTRAL, "Q4_K_M")}
    in_ram = {name for name in plan if any(re.search(p, name) for p in patterns)}
    assert in_ram == ({f"blk.{i}.ffn_{k}_exps.weight" for i in range(6) for k in ("gate", "up", "down")}
                      | {"blk.6.ffn_gate_exps.weight"})
    assert sum(plan[name] for name in in_ram) == f.system_ram_bytes == 5_505_024_000


@pytest.mark.django_db
def test_the_api_and_the_fit_card_show_the_partial_layer(client, teams):
    client.force_login(teams["alice"])
    query = "preset=mixtral-8x7b&hardware=rtx-4090&context=4096&fit_scheme=Q4_K_M"
    fit_json = client.get(f"/api/planner/estimate?{query}").json()["fit"]
    assert fit_json["command"] == MIXTRAL_ON_4090
    assert fit_json["override_tensor"] == r"blk\.6\.ffn_gate_exps=CPU"
    assert fit_json["partial_experts"] == ["blk.6.ffn_gate_exps.weight"] and fit_json["n_cpu_moe"] == 6
    html = client.get(f"/planner/?{query}").content.decode()
    assert (r"--n-cpu-moe 6 -ot &#x27;blk\.6\.ffn_gate_exps=CPU&#x27; -fa off</code>") in html
    assert '<span id="fit-partial">blk.6.ffn_gate_exps.weight in RAM too (-ot)</span>' in html


def test_n_cpu_moe_override_is_kept_and_validated():
    f = fit(MIXTRAL, T4, Workload(context=4096), "Q4_K_M", n_cpu_moe=32)
    assert f.n_cpu_moe == 32 and "--n-cpu-moe 32" in f.command and f.gpu_layers == 32
    with pytest.raises(EstimatorError) as err:
        fit(MIXTRAL, T4, Workload(), "Q4_K_M", n_cpu_moe=33)
    assert err.value.field == "n_cpu_moe"


def test_too_small_a_host_does_not_fit():
    tiny = Hardware.custom(name="tiny", memory_gb=8, bandwidth_gbs=300, tflops=30, ram_gb=16)
    f = fit(LLAMA70, tiny, Workload(context=4096), "Q4_K_M")
    assert not f.fits and 0 < f.gpu_layers < 80
    assert any("doesn't fit" in r for r in f.reasons)


def test_other_runtimes_are_refused():
    with pytest.raises(EstimatorError):
        fit(LLAMA8, RTX4090, Workload(runtime="vllm"), "Q4_K_M")


def test_n_cpu_moe_takes_the_experts_of_the_first_layers():
    """--n-cpu-moe 5 on a 26 GiB GPU: layers 0–3 (Q6_K down, 913,833,984 B of experts each) and
    layer 4 (Q4_K, 792,723,456 B) → 4,448,059,392 B in RAM; the last five layers would be 5 × 913,833,984.
    Device: 29,831,847,936 − 4,448,059,392 = 25,383,788,544 ≤ 26 GiB × 0.95 = 26,521,423,052."""
    gpu26 = Hardware.custom(name="26 GiB", memory_gb=26, bandwidth_gbs=300, tflops=30)
    f = fit(MIXTRAL, gpu26, Workload(context=4096), "Q4_K_M", n_cpu_moe=5)
    assert f.system_ram_bytes == 4_448_059_392 and f.gpu_layers == 32
    assert f.devices[0]["total_bytes"] == 25_383_788_544


def test_cpu_only_runs_every_layer_on_the_cpu():
    """SmolLM2 135M on the 2-core CPU profile: -ngl 0; the whole model is in system RAM."""
    f = fit(preset_architecture("smollm2-135m"), HARDWARE_PROFILES["cpu-2core-24gb"], Workload(), "Q4_K_M")
    assert f.ngl == 0 and f.gpu_layers == 0 and f.fits and f.system_ram_bytes > 0
    assert " -ngl 0 " in f.command


def test_a_context_beyond_the_trained_positions_is_said_and_the_file_name_is_shell_safe():
    """Qwen3-30B-A3B is trained for 40,960 positions; at 64k (q8_0 KV, flash attention) its Q4_K_M
    still fits a 24 GB card, so the fit keeps the context and says it is beyond the trained length.
    The preset's name has '(MoE)' in it; the command must paste into a shell as it is."""
    from planner.estimator.fit import command

    arch = preset_architecture("qwen3-30b-a3b")
    wl = Workload(context=65536, kv_dtype="q8_0", flash_attn=True)
    f = fit(arch, HARDWARE_PROFILES["rtx-4090"], wl, "Q4_K_M")
    assert f.context == 65536 and any("beyond the model's 40,960 trained positions" in r for r in f.reasons)
    assert command(arch, wl, f).split()[2] == "<path/to/Qwen3-30B-A3B-MoE-Q4_K_M.gguf>"


def test_a_hybrid_keeps_kv_on_its_attention_layers_and_state_on_its_recurrent_layers():
    """Qwen3-Next Q4_K_M at 32,768, --n-cpu-moe 0 on a 4090: the last 21 of 48 layers stay on the GPU.
    Its GGUF keeps one MTP block (blk.48, not loaded), so -ngl = 21 + 1 MTP block + output = 23.
    KV 805,306,368 B over the 12 attention layers (3, 7, …, 47) = 67,108,864 each; state 79,036,416 B
    over the 36 DeltaNet layers = 2,195,456 each (test_recurrent_state pins both totals). Layers
    27..47 hold 6 attention and 15 DeltaNet layers; layers 0..26 the other 6 and 21."""
    arch = Architecture.from_config(QWEN3_NEXT_80B)
    assert arch.n_layers_all == 49
    f = fit(arch, RTX4090, Workload(context=32768), "Q4_K_M", n_cpu_moe=0)
    assert (f.gpu_layers, f.ngl) == (21, 23) and " -ngl 23 " in f.command
    d = f.devices[0]
    assert (d["kv_bytes"], d["recurrent_state_bytes"]) == (6 * 67_108_864, 15 * 2_195_456)
    assert d["total_bytes"] == (d["model_bytes"] + d["kv_bytes"] + d["recurrent_state_bytes"] + d["compute_bytes"]
                                + d["overhead_bytes"]) <= 24_481_313_587
    host_weights = f.system_ram_bytes - 6 * 67_108_864 - 21 * 2_195_456
    assert host_weights + d["model_bytes"] == sum(b for _, _, b in gguf_tensor_plan(arch, "Q4_K_M"))
    assert any("67,108,864 B KV on each of 12 attention layers, 2,195,456 B recurrent state on each of 36" in r
               for r in f.reasons)


DEEPSEEK_V3 = preset_architecture("deepseek-v3")
H100 = HARDWARE_PROFILES["h100-80gb"]


def _experts_below(arch, scheme: str, first: int, m: int) -> int:
    """Bytes of the ffn_*_exps tensors of layers first..m−1, from the GGUF tensor plan."""
    return sum(b for name, _, b in gguf_tensor_plan(arch, scheme)
               if "_exps." in name and first <= int(name.split(".")[1]) < m)


def test_deepseek_v3_fits_two_h100s_with_128_gib_of_ram_at_8k():
    """2 × H100 80 GB (capacity 80 GiB × 0.95 = 81,604,378,624 B each) and 128 GiB of RAM (budget
    × 0.9 = 123,695,058,124 B) at 8,192: nothing at ≥ 3.1 bpw fits both, IQ3_XXS does with every
    layer on the GPUs and the experts of the first layers in RAM. Checked here from the Fit's own
    per-device parts, the GGUF tensor plan and llama.cpp's split arithmetic (float32, as
    llama-model.cpp): MLA KV per layer = (512 + 64) × 8,192 cells × 2 B = 9,437,184 B."""
    hw = H100.with_devices(2).with_ram(128)
    f = fit_estimate(estimate(DEEPSEEK_V3, hw, Workload(context=8192)))
    assert f.fits and f.context == 8192 and f.scheme == "IQ3_XXS"
    ot = f" -ot {shlex.quote(f.override_tensor)}" if f.override_tensor else ""
    assert f.command == (f"llama-server -m <path/to/DeepSeek-V3-671B-IQ3_XXS.gguf> -c 8192 -ngl 99 "
                         f"--n-cpu-moe {f.n_cpu_moe}{ot} -fa off -ts {f.tensor_split[0]},{f.tensor_split[1]}")
    for d in f.devices:
        parts = d["model_bytes"] + d["kv_bytes"] + d["recurrent_state_bytes"] + d["compute_bytes"] + d["overhead_bytes"]
        assert parts == d["total_bytes"] <= int(80 * 2**30 * 0.95) == 81_604_378_624
    partial = sum(b for name, _, b in gguf_tensor_plan(DEEPSEEK_V3, "IQ3_XXS") if name in f.partial_experts)
    assert f.system_ram_bytes == _experts_below(DEEPSEEK_V3, "IQ3_XXS", 0, f.n_cpu_moe) + partial
    assert f.system_ram_bytes <= int(128 * 2**30 * 0.9)
    if f.override_tensor:   # chosen only where it keeps more on the GPUs than the next whole layer
        whole = fit(DEEPSEEK_V3, hw, Workload(context=8192), "IQ3_XXS", n_cpu_moe=f.n_cpu_moe + 1)
        assert whole.fits and whole.override_tensor == "" and whole.system_ram_bytes > f.system_ram_bytes
    assert sum(d["model_bytes"] for d in f.devices) + f.system_ram_bytes == sum(
        b for _, _, b in gguf_tensor_plan(DEEPSEEK_V3, "IQ3_XXS"))
    assert sum(f.tensor_split) == 62 and _llama_cpp_device_of_units(f.tensor_split, 62) == (
        [0] * f.tensor_split[0] + [1] * f.tensor_split[1])
    assert [d["kv_bytes"] for d in f.devices] == [f.tensor_split[0] * 9_437_184, (f.tensor_split[1] - 1) * 9_437_184]


def test_deepseek_v3_iq2_xs_on_two_h100s_with_64_gib_finds_the_split_that_fits():
    """The plan a user found by hand (IQ2_XS, --n-cpu-moe 20 fits both GPUs and 64 GiB of RAM):
    the solver must find one as good, with the fewest expert layers in RAM. With experts of fewer
    layers in RAM than it chose, no split fits the GPUs (checked through fit's own n_cpu_moe)."""
    hw = H100.with_devices(2).with_ram(64)
    wl = Workload(context=8192)
    f = fit(DEEPSEEK_V3, hw, wl, "IQ2_XS")
    assert f.fits and f.ngl == 99 and 0 < f.n_cpu_moe <= 20
    partial = sum(b for name, _, b in gguf_tensor_plan(DEEPSEEK_V3, "IQ2_XS") if name in f.partial_experts)
    assert f.system_ram_bytes == _experts_below(DEEPSEEK_V3, "IQ2_XS", 0, f.n_cpu_moe) + partial
    assert f.system_ram_bytes <= int(64 * 2**30 * 0.9)
    assert all(d["total_bytes"] <= 81_604_378_624 for d in f.devices)
    by_hand = fit(DEEPSEEK_V3, hw, wl, "IQ2_XS", n_cpu_moe=20)
    assert by_hand.fits and by_hand.gpu_layers == 61
    fewer = fit(DEEPSEEK_V3, hw, wl, "IQ2_XS", n_cpu_moe=f.n_cpu_moe - 1)
    assert fewer.gpu_layers < 61   # with one layer's experts fewer, whole layers would have to leave


def test_nothing_fits_says_the_nearest_fixes():
    """DeepSeek-V3 Q4_K_M (≈ 404 GB) on 2 × H100 with 128 GiB: the reasons name how much RAM, how
    much more device memory, and the smaller scheme that would fit; with the RAM named it fits."""
    hw = H100.with_devices(2).with_ram(128)
    est = estimate(DEEPSEEK_V3, hw, Workload(context=8192))
    f = fit_estimate(est, "Q4_K_M")
    assert not f.fits
    assert {"ram_bytes", "extra_device_bytes", "scheme"} <= set(f.fixes) and f.fixes["scheme"] == "IQ3_XXS"
    assert any(r.startswith("nearest fixes:") and "more system RAM" in r and "more capacity on each device" in r
               for r in f.reasons)
    richer = fit(DEEPSEEK_V3, H100.with_devices(2).with_ram(f.fixes["ram_bytes"] / 2**30), Workload(context=8192),
                 "Q4_K_M")
    assert richer.fits and richer.system_ram_bytes <= int(f.fixes["ram_bytes"] * 0.9)
