"""The fit solver against brute force: every (-ngl, --n-cpu-moe, -ot, -ts) on small machines.

Small architectures (dense Llama, Mixtral-style MoE, DeepSeek-V3-style MoE with a dense first layer)
are built through Architecture.from_config; machines have 1–3 devices of different sizes and a few
RAM sizes. The brute force here re-derives each placement's bytes on its own: llama.cpp's device
assignment in float32 as llama-model.cpp does it, each tensor's bytes from the GGUF tensor plan,
the KV cache and compute buffer from memory.py (pinned against llama.cpp in their own tests), and
500 MiB of CUDA context per device. The partial layer (-ot) is every proper subset of block N's
expert tensors (gate, up, down, each with its own bytes) beside --n-cpu-moe N, for every N.
Whenever the brute force finds a placement that fits, fit() must return fits=True with the preferred
one (placement.py's order: most GPU units, then fewest expert bytes in RAM — at one -ngl, the least
RAM — on a split no less even than the best), and its per-device numbers must match the brute
force's for the plan its printed command says (the -ot pattern applied to the tensor names by regex
search, as llama.cpp's loader does).
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
import shlex
import struct

import pytest

from planner.estimator import Architecture, Hardware, Workload
from planner.estimator.architecture import layer_index
from planner.estimator.fit import fit
from planner.estimator.gguf_quant import gguf_tensor_plan
from planner.estimator.memory import compute_bytes, kv_cache_bytes, layer_cache_bytes

GiB = 2**30
CUDA_CONTEXT = 500 * 2**20


def _llama(layers: int) -> dict:
    return {"model_type": "llama", "hidden_size": 1024, "num_hidden_layers": layers, "num_attention_heads": 8,
            "num_key_value_heads": 2, "intermediate_size": 4096, "vocab_size": 32000,
            "max_position_embeddings": 8192, "tie_word_embeddings": False}


def _mixtral(layers: int) -> dict:
    return {**_llama(layers), "model_type": "mixtral", "num_local_experts": 8, "num_experts_per_tok": 2,
            "intermediate_size": 2048}


def _deepseek(layers: int) -> dict:
    return {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "vocab_size": 32000,
            "hidden_size": 1024, "intermediate_size": 4096, "moe_intermediate_size": 512,
            "num_hidden_layers": layers, "num_nextn_predict_layers": 0, "num_attention_heads": 8,
            "num_key_value_heads": 8, "n_shared_experts": 1, "n_routed_experts": 16, "routed_scaling_factor": 2.5,
            "kv_lora_rank": 128, "q_lora_rank": 256, "qk_rope_head_dim": 32, "v_head_dim": 64,
            "qk_nope_head_dim": 64, "topk_method": "noaux_tc", "n_group": 4, "topk_group": 2,
            "num_experts_per_tok": 4, "moe_layer_freq": 1, "first_k_dense_replace": 1, "norm_topk_prob": True,
            "scoring_func": "sigmoid", "max_position_embeddings": 8192, "tie_word_embeddings": False,
            "rope_theta": 10000}


def _glm45(layers: int) -> dict:
    """GLM-4.5-style: its GGUF keeps the MTP block after the layers, a unit of -ngl that weighs nothing."""
    return {"architectures": ["Glm4MoeForCausalLM"], "model_type": "glm4_moe", "hidden_size": 1024,
            "num_hidden_layers": layers, "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 128,
            "intermediate_size": 4096, "moe_intermediate_size": 512, "n_routed_experts": 16, "n_shared_experts": 1,
            "num_experts_per_tok": 4, "first_k_dense_replace": 1, "n_group": 1, "topk_group": 1,
            "routed_scaling_factor": 1.0, "norm_topk_prob": True, "num_nextn_predict_layers": 1,
            "attention_bias": True, "use_qk_norm": False, "partial_rotary_factor": 0.5, "vocab_size": 32000,
            "max_position_embeddings": 8192, "tie_word_embeddings": False, "rms_norm_eps": 1e-5}


CONFIGS = {"llama": _llama, "mixtral": _mixtral, "deepseek": _deepseek, "glm45": _glm45}


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def device_of_units(ts: tuple[int, ...], act: int) -> list[int]:
    """llama-model.cpp load_tensors: splits = cumulative ts / Σ ts (float); unit j of the act GPU
    units → upper_bound(splits, float(j) / act)."""
    total, cum = 0.0, []
    for t in ts:
        total = _f32(total + t)
        cum.append(total)
    splits = [_f32(c / total) for c in cum]
    return [min(bisect.bisect_right(splits, _f32(_f32(j) / act)), len(ts) - 1) for j in range(act)]


class Model:
    """The brute force's own bytes for one scheme at one context."""

    def __init__(self, arch: Architecture, wl: Workload, scheme: str, ctx: int):
        L = arch.n_layers
        self.L, self.blocks = L, arch.n_layers_all   # the GGUF's blocks: the layers, then MTP blocks
        self.weights, self.experts, self.non_layer = [0] * L, [0] * L, 0
        self.names = [name for name, _, _ in gguf_tensor_plan(arch, scheme)]
        self.tensor_bytes = {name: b for name, _, b in gguf_tensor_plan(arch, scheme)}
        for name, _, b in gguf_tensor_plan(arch, scheme):
            i = layer_index(name)
            if i is None:
                self.non_layer += b
                continue
            self.weights[i] += b
            if "_exps." in name:
                self.experts[i] += b
        # each block's expert tensors by name (weight, bias …): what one -ot subset moves together
        self.expert_names = [[n for n in self.names if layer_index(n) == i and "_exps." in n] for i in range(L)]
        self.kv = layer_cache_bytes(arch, kv_cache_bytes(arch, wl, ctx)[0], 0)[0]
        self.compute = compute_bytes(arch, wl, ctx)[0]

    def subsets(self, m: int) -> list[tuple[str, ...]]:
        """Block m's proper subsets of expert tensor kinds (ffn_gate_exps …), the empty one first."""
        if m >= self.L:
            return [()]
        kinds = sorted({n.split(".")[2] for n in self.expert_names[m]})
        return [s for size in range(len(kinds)) for s in itertools.combinations(kinds, size)]

    def place(self, n_devices: int, ngl: int, m: int, ts: tuple[int, ...],
              part: tuple[str, ...] = ()) -> tuple[list[int], int]:
        """Bytes per device and in RAM for -ngl ngl --n-cpu-moe m -ts ts, and the expert tensor
        kinds `part` of block m to RAM too (llama-model.cpp: i_gpu_start = max(n_layer_all + 1 −
        ngl, 0), act_gpu_layers = min(ngl, n_layer_all + 1))."""
        L, blocks = self.L, self.blocks
        start = max(blocks + 1 - ngl, 0)
        act = min(ngl, blocks + 1)
        dev = device_of_units(ts, act) if n_devices > 1 else [0] * act
        loads = [CUDA_CONTEXT + self.compute] * n_devices
        ram = 0
        for il in range(blocks + 1):
            on_gpu = start <= il < start + act
            if L <= il < blocks:   # an MTP block: in the file, not loaded
                continue
            if il == blocks:   # the output layer, with the embeddings (fit.py counts them with it)
                if on_gpu:
                    loads[dev[il - start]] += self.non_layer
                else:
                    ram += self.non_layer
                continue
            if not on_gpu:
                ram += self.weights[il] + self.kv[il]
                continue
            moved = self.experts[il] if il < m else 0
            if il == m:
                moved = sum(self.tensor_bytes[n] for n in self.expert_names[il] if n.split(".")[2] in part)
            loads[dev[il - start]] += self.weights[il] - moved + self.kv[il]
            ram += moved
        return loads, ram


def compositions(total: int, parts: int):
    for cuts in itertools.combinations_with_replacement(range(total + 1), parts - 1):
        bounds = (0, *cuts, total)
        yield tuple(bounds[i + 1] - bounds[i] for i in range(parts))


def brute_force(model: Model, caps: list[int], ram_limit: int) -> dict[tuple[int, int], float]:
    """(ngl, RAM bytes) → the smallest largest share of capacity over the (--n-cpu-moe, -ot part,
    -ts) that fit, for every placement (≥ 1 GPU unit) that fits devices and RAM."""
    fitting: dict[tuple[int, int], float] = {}
    n = len(caps)
    for ngl in range(1, model.blocks + 2):
        if ngl - 1 - (model.blocks - model.L) < 1:
            continue   # no repeating layer on a GPU: not a placement
        act = ngl
        for m in range(model.L + 1):
            for part in model.subsets(m):
                for ts in compositions(act, n):
                    if n > 1 and sum(ts) == 0:
                        continue
                    loads, ram = model.place(n, ngl, m, ts, part)
                    if ram <= ram_limit and all(load <= cap for load, cap in zip(loads, caps)):
                        share = max(load / cap for load, cap in zip(loads, caps))
                        fitting[ngl, ram] = min(share, fitting.get((ngl, ram), share))
    return fitting


def printed_part(model: Model, f) -> tuple[str, ...]:
    """The expert tensor kinds the Fit's printed -ot moves, found as llama.cpp finds them: the
    value split at ',' and its first '=' (common/arg.cpp parse_tensor_buffer_overrides), the
    pattern searched in every tensor name (llama-model-loader: std::regex_search). Every match
    must be an expert tensor of block --n-cpu-moe, and the Fit must list exactly those."""
    args = shlex.split(f.command)
    if "-ot" not in args:
        assert f.override_tensor == "" and f.partial_experts == []
        return ()
    value = args[args.index("-ot") + 1]
    assert value == f.override_tensor and "," not in value
    pattern, buffer = value.split("=", 1)
    assert buffer == "CPU"
    matched = [n for n in model.names if re.search(pattern, n)]
    assert matched and matched == f.partial_experts
    assert all(layer_index(n) == f.n_cpu_moe and "_exps." in n for n in matched)
    return tuple(sorted({n.split(".")[2] for n in matched}))


def machine(rng: random.Random, model: Model, n_devices: int) -> tuple[list[float], float]:
    """Device sizes (GiB) from 'nearly nothing fits' to 'everything fits' and a RAM size (GiB)."""
    everything = sum(model.weights) + sum(model.kv) + model.non_layer
    layers = everything - model.non_layer
    sizes = []
    for d in range(n_devices):   # the output unit (with the embeddings) is the first on a GPU, the last
        # device's last unit: room for it there, mostly
        room = rng.choice([0.5, 1, 1, 1]) if d == n_devices - 1 else rng.choice([0, 0.3])
        cap = (CUDA_CONTEXT + model.compute + int(model.non_layer * room)
               + int(layers * rng.choice([0.03, 0.08, 0.15, 0.3, 0.45, 0.6, 0.8, 1.2]) / n_devices))
        sizes.append(round(cap / 0.95 / GiB + rng.random() * 0.01, 4))
    ram = round(everything * rng.choice([0.0, 0.3, 0.6, 1.0, 1.5]) / 0.9 / GiB, 4)
    return sizes, ram


# 200 random machines, and six where the placement with the most GPU units overflows RAM while one
# with fewer units fits (found by running these cases against a solver that checks RAM only after
# choosing the placement: it fails exactly these)
CASES = list(range(200)) + [338, 344, 357, 500, 560, 877]


@pytest.mark.parametrize("seed", CASES)
def test_the_solver_finds_a_placement_whenever_brute_force_does(seed):
    rng = random.Random(seed)
    family = rng.choice(sorted(CONFIGS))
    layers = rng.choice([2, 3, 4])
    arch = Architecture.from_config(CONFIGS[family](layers), name=f"tiny-{family}")
    scheme = rng.choice(["Q4_K_M", "Q8_0", "F16"])
    wl = Workload(context=rng.choice([1024, 2048, 4096]))
    n_devices = rng.choice([1, 2, 3])
    model = Model(arch, wl, scheme, wl.context)
    sizes, ram_gb = machine(rng, model, n_devices)
    check_against_brute_force(arch, wl, scheme, model, sizes, ram_gb)


def check_against_brute_force(arch: Architecture, wl: Workload, scheme: str, model: Model, sizes: list[float],
                              ram_gb: float):
    """fit() on devices of `sizes` GiB and `ram_gb` of RAM against the brute force; the Fit."""
    n_devices = len(sizes)
    hw = Hardware.custom("tiny box", sizes[0], 1000, 100, device_count=n_devices, ram_gb=ram_gb,
                         device_memory_gb=sizes)
    caps = [int(int(s * GiB) * 0.95) for s in sizes]
    ram_limit = int(int(ram_gb * GiB) * 0.9)

    f = fit(arch, hw, wl, scheme)
    fitting = brute_force(model, caps, ram_limit)
    assert f.fits == bool(fitting), (arch.name, model.L, scheme, sizes, ram_gb, fitting, f.reasons)
    if not fitting:
        assert any(r.startswith(("nearest fixes", "no smaller context")) for r in f.reasons)
        return f

    # the plan, checked against the budgets from the Fit's own per-device numbers
    assert len(f.devices) == n_devices
    for d, cap in zip(f.devices, caps):
        assert d["total_bytes"] == (d["model_bytes"] + d["kv_bytes"] + d["recurrent_state_bytes"]
                                    + d["compute_bytes"] + d["overhead_bytes"]) <= cap
    assert f.system_ram_bytes <= ram_limit

    ngl = model.blocks + 1 if f.ngl == 99 else f.ngl
    ts = tuple(f.tensor_split) if n_devices > 1 else (ngl,)
    at_context = Model(arch, wl, scheme, f.context) if f.context != wl.context else model
    loads, ram = at_context.place(n_devices, ngl, f.n_cpu_moe, ts, printed_part(at_context, f))
    assert [d["total_bytes"] for d in f.devices] == loads and f.system_ram_bytes == ram
    assert f.command.split(" -ngl ")[1].split()[0] == str(f.ngl)

    # the preference: everything on the devices; else the most GPU units, then the fewest expert
    # bytes in RAM (at one -ngl: the least RAM), then the most even split
    if (model.blocks + 1, 0) in fitting:
        assert f.fully_on_device and f.context >= wl.context
        return f
    assert f.context == wl.context
    best_ngl = max(g for g, _ in fitting)
    least_ram = min(r for g, r in fitting if g == best_ngl)
    assert (ngl, ram) == (best_ngl, least_ram)
    share = max(load / cap for load, cap in zip(loads, caps))
    assert share <= fitting[best_ngl, least_ram] + 1e-9
    return f


def _with_experts(family: str, layers: int, experts: int) -> dict:
    key = "num_local_experts" if family == "mixtral" else "n_routed_experts"
    return {**CONFIGS[family](layers), key: experts}


@pytest.mark.parametrize("family", ["mixtral", "deepseek", "glm45"])
@pytest.mark.parametrize("experts", [4, 8])
def test_cuts_inside_a_layers_experts_agree_with_brute_force(family, experts):
    """A grid (layers × devices × contexts × where the cut falls × RAM) whose devices hold everything
    but the experts of the first MoE layer and a fraction of the next one's: the room where a few
    of a block's expert tensors (-ot) fit and the whole layer's are too many. With two devices the
    second holds the last layer and the output unit, the first the rest less the cut. RAM holds
    the cut and half the next layer's experts, or three layers' more. The solver must agree with
    the brute force on every one, and pick a partial layer in many."""
    partial = 0
    for extra_layers, n_devices, ctx, frac, ram_room in itertools.product(
            [3, 4], [1, 2], [1024, 4096], [0.3, 0.6, 0.9], [0.5, 3.0]):
        dense = 0 if family == "mixtral" else 1   # DeepSeek and GLM-4.5 keep layer 0 dense
        layers = dense + extra_layers
        arch = Architecture.from_config(_with_experts(family, layers, experts), name=f"tiny-{family}")
        wl = Workload(context=ctx)
        model = Model(arch, wl, "Q4_K_M", ctx)
        following = model.experts[dense + 1]
        cut = sum(model.experts[:dense + 1]) + int(following * frac)
        everything = sum(model.weights) + sum(model.kv) + model.non_layer
        fixed = CUDA_CONTEXT + model.compute
        back = model.non_layer + model.weights[-1] + model.kv[-1]
        room = [everything - cut] if n_devices == 1 else [everything - back - cut, back]
        sizes = [round((fixed + r) / 0.95 / GiB + 1e-5, 6) for r in room]
        ram_gb = round((cut + following * ram_room) / 0.9 / GiB, 6)
        partial += bool(check_against_brute_force(arch, wl, "Q4_K_M", model, sizes, ram_gb).override_tensor)
    assert partial >= 24


@pytest.mark.parametrize("seed", range(0, 90, 3))
def test_the_nearest_fixes_are_the_smallest_that_fit(seed):
    """When nothing fits: the RAM named is the least any device-fitting placement needs (brute
    force), adding the named capacity to every device makes some placement fit while 1 MiB less
    does not, and the smaller context named fits while twice it does not."""
    rng = random.Random(1000 + seed)
    family = rng.choice(sorted(CONFIGS))
    arch = Architecture.from_config(CONFIGS[family](3), name=f"tiny-{family}")
    wl = Workload(context=rng.choice([2048, 8192]))   # at 8,192 the KV cache and compute buffer weigh
    n_devices = rng.choice([1, 2, 3])
    model = Model(arch, wl, "Q8_0", wl.context)
    everything = sum(model.weights) + sum(model.kv) + model.non_layer
    sizes = [round((CUDA_CONTEXT + model.compute + model.non_layer * (d == n_devices - 1)
                    + everything * rng.choice([0.1, 0.2, 0.3]) / n_devices) / 0.95 / GiB, 4) for d in range(n_devices)]
    ram_gb = round(everything * 0.15 / 0.9 / GiB, 4)
    hw = Hardware.custom("tiny box", sizes[0], 1000, 100, device_count=n_devices, ram_gb=ram_gb,
                         device_memory_gb=sizes)
    caps = [int(int(s * GiB) * 0.95) for s in sizes]
    ram_limit = int(int(ram_gb * GiB) * 0.9)
    f = fit(arch, hw, wl, "Q8_0")
    if brute_force(model, caps, ram_limit):
        assert f.fits
        return
    assert not f.fits
    device_fitting = brute_force(model, caps, 2**62)
    if device_fitting:
        least = min(r for _, r in device_fitting)
        assert int(f.fixes["ram_bytes"] * 0.9) >= least > int((f.fixes["ram_bytes"] - 1) * 0.9)
    if "context" in f.fixes:   # the largest power of two below the context that fits
        ctx = f.fixes["context"]
        assert brute_force(Model(arch, wl, "Q8_0", ctx), caps, ram_limit)
        assert ctx * 2 >= wl.context or not brute_force(Model(arch, wl, "Q8_0", ctx * 2), caps, ram_limit)
    if "extra_device_bytes" in f.fixes:
        extra = f.fixes["extra_device_bytes"]
        assert brute_force(model, [c + extra for c in caps], ram_limit)
        assert extra == 0 or not brute_force(model, [c + extra - 2**20 for c in caps], ram_limit)
