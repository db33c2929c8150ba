"""Where llama.cpp puts each layer for `-ngl`, `--n-cpu-moe` and `-ts`, and the search for the
placement that fits every device and system RAM. fit.py turns a model into per-layer byte costs;
this module only places them (pure arithmetic, so it can be checked against brute force).

llama.cpp's rules (llama-model.cpp, llama_model::load_tensors, as vendored by llama-cpp-python 0.3.36):
* the units are il = 0 … n_layer_all − 1 (the GGUF's blocks: the repeating layers, then any MTP
  blocks the file keeps, which are not loaded and weigh nothing) and il = n_layer_all, the output
  layer. `-ngl n`: i_gpu_start = max(n_layer_all + 1 − n, 0), act_gpu_layers = min(n, n_layer_all + 1);
  unit il is on a GPU when i_gpu_start ≤ il < i_gpu_start + act_gpu_layers. So `-ngl n` puts the
  LAST n units on the GPU(s): the output layer first, then the MTP blocks, then the last repeating
  layers; k repeating layers on the GPU is `-ngl k + 1 + (MTP blocks)`. The token embeddings always
  stay on the CPU (dev_input).
* `-ts a,b,…`: splits[d] = (ts_0 + … + ts_d) / Σ ts in float; GPU unit il goes to device
  upper_bound(splits, (il − i_gpu_start) / act_gpu_layers). Written as whole unit counts with
  Σ ts = act_gpu_layers, device d gets exactly the next ts_d units (j/act < N_d/act ⇔ j < N_d; the
  float roundings of two fractions ≥ 1/act apart never meet), so the solver writes -ts that way.
* `--n-cpu-moe N` (common/arg.cpp): the ffn_*_exps tensors of blocks 0 … N − 1 stay in CPU memory;
  the rest of those layers stays where -ngl puts it.

The search keeps the planner's preference order: the most GPU units (-ngl), then the fewest
expert-offload layers, on a split that evens the devices' fill (the smallest largest share of
capacity). Every check is monotone where it is bisected: device bytes fall as --n-cpu-moe grows
and as -ngl shrinks; RAM grows as --n-cpu-moe grows and as -ngl shrinks for a fixed --n-cpu-moe.
RAM at the smallest device-fitting --n-cpu-moe is not monotone in -ngl, so -ngl is scanned.
A placement counts as one only with at least one repeating layer on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Costs:
    """One scheme at one context, in bytes."""
    layers: tuple[int, ...]     # per repeating layer: its weights + its KV cache and recurrent state
    experts: tuple[int, ...]    # of which its ffn_*_exps weights (0 for a dense layer)
    output: int                 # the output unit (output, output_norm; fit.py adds the embeddings)
    busy: int                   # per device once anything is offloaded: compute buffer + CUDA context
    idle: int                   # per device with nothing offloaded: CUDA context
    n_empty: int = 0            # MTP blocks between the layers and the output: units of no bytes

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def n_units(self) -> int:
        """Every unit: -ngl n_units puts all of them on the GPU(s)."""
        return len(self.layers) + self.n_empty + 1

    def gpu_layers(self, ngl: int) -> int:
        """Repeating layers on the GPU(s) with -ngl ngl."""
        return max(0, min(self.n_layers, ngl - 1 - self.n_empty))

    @property
    def least_ngl(self) -> int:
        """The smallest -ngl with one repeating layer on a GPU."""
        return self.n_empty + 2


@dataclass(frozen=True)
class Placement:
    ngl: int                    # the -ngl value: 0 … n_units
    n_cpu_moe: int
    split: tuple[int, ...]      # GPU units per device, in device order (the -ts values)
    loads: tuple[int, ...]      # bytes per device
    ram: int                    # bytes in system RAM


def gpu_units(c: Costs, ngl: int, m: int) -> list[int]:
    """Bytes of each GPU unit in llama.cpp's order: the last ngl of (layers, MTP blocks, output)."""
    L = c.n_layers
    if ngl <= 0:
        return []
    g = c.gpu_layers(ngl)
    layers = [c.layers[i] - (c.experts[i] if i < m else 0) for i in range(L - g, L)]
    return layers + [0] * min(c.n_empty, ngl - 1) + [c.output]


def ram_bytes(c: Costs, ngl: int, m: int) -> int:
    """CPU layers whole, the experts of GPU layers below m, and the output unit unless on a GPU."""
    first_gpu = c.n_layers - c.gpu_layers(ngl)
    return (sum(c.layers[:first_gpu]) + sum(c.experts[first_gpu:max(first_gpu, m)])
            + (0 if ngl > 0 else c.output))


def _greedy(units: list[int], room: list[int]) -> list[int] | None:
    """Device d takes as many of the next units as fit its room; None when units are left over.
    Taking the most each time leaves the fewest for the next device, so this finds a split
    whenever one exists (units keep their order and each device's units are contiguous)."""
    if any(r < 0 for r in room):
        return None
    counts, j, n = [], 0, len(units)
    for r in room:
        used, start = 0, j
        while j < n and used + units[j] <= r:
            used += units[j]
            j += 1
        counts.append(j - start)
    return counts if j == n else None


def device_fits(c: Costs, caps: list[int], ngl: int, m: int) -> bool:
    fixed = c.busy if ngl else c.idle
    return _greedy(gpu_units(c, ngl, m), [cap - fixed for cap in caps]) is not None


def balanced(c: Costs, caps: list[int], ngl: int, m: int, extra: int = 0) -> Placement | None:
    """The split with the smallest largest share of capacity (bisection on the share), or None."""
    units, fixed = gpu_units(c, ngl, m), (c.busy if ngl else c.idle)
    caps = [cap + extra for cap in caps]
    split = _greedy(units, [cap - fixed for cap in caps])
    if split is None:
        return None
    if len(caps) > 1 and units:
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = (lo + hi) / 2
            trial = _greedy(units, [int(cap * mid) - fixed for cap in caps])
            if trial is None:
                lo = mid
            else:
                hi, split = mid, trial
    loads, j = [], 0
    for n in split:
        loads.append(fixed + sum(units[j:j + n]))
        j += n
    return Placement(ngl, m, tuple(split), tuple(loads), ram_bytes(c, ngl, m))


def first_true(lo: int, hi: int, ok) -> int:
    """The smallest n in [lo, hi] with ok(n) for a monotone ok (hi + 1 when none)."""
    hi += 1
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def fewest_expert_layers(c: Costs, caps: list[int], ngl: int) -> int | None:
    """The smallest --n-cpu-moe that lets -ngl `ngl` fit the devices (None when none does)."""
    L = c.n_layers
    if not any(c.experts):
        return 0 if device_fits(c, caps, ngl, 0) else None
    m = first_true(0, L, lambda n: device_fits(c, caps, ngl, n))
    return m if m <= L else None


def most_units(c: Costs, caps: list[int], m: int) -> int:
    """The largest -ngl that fits the devices with --n-cpu-moe m and puts ≥ 1 repeating layer on a
    GPU (0 when none does)."""
    U, least = c.n_units, c.least_ngl
    if not device_fits(c, caps, least, m):
        return 0
    return U - first_true(0, U - least, lambda drop: device_fits(c, caps, U - drop, m))


def search(c: Costs, caps: list[int], ram_limit: int, n_cpu_moe: int | None = None) -> Placement | None:
    """The placement with the most GPU units, then the fewest expert-offload layers, that fits
    every device and RAM (n_cpu_moe: fixed by hand); None when no placement with ≥ 1 unit fits."""
    L = c.n_layers
    top = most_units(c, caps, L if n_cpu_moe is None else n_cpu_moe)
    for ngl in range(top, c.least_ngl - 1, -1):
        if ram_bytes(c, ngl, 0) > ram_limit:
            return None     # fewer units only put more in RAM
        m = fewest_expert_layers(c, caps, ngl) if n_cpu_moe is None else n_cpu_moe
        if m is None or not device_fits(c, caps, ngl, m):
            continue
        if ram_bytes(c, ngl, m) <= ram_limit:
            return balanced(c, caps, ngl, m)
    return None


def ram_needed(c: Costs, caps: list[int], n_cpu_moe: int | None = None) -> Placement | None:
    """The device-fitting placement (≥ 1 unit) that needs the least RAM, or None."""
    best: Placement | None = None
    for ngl in range(most_units(c, caps, c.n_layers if n_cpu_moe is None else n_cpu_moe), c.least_ngl - 1, -1):
        m = fewest_expert_layers(c, caps, ngl) if n_cpu_moe is None else n_cpu_moe
        if m is None or not device_fits(c, caps, ngl, m):
            continue
        if best is None or ram_bytes(c, ngl, m) < best.ram:
            best = balanced(c, caps, ngl, m)
    return best


def vram_needed(c: Costs, caps: list[int], ram_limit: int, n_cpu_moe: int | None = None,
                step: int = 2**20) -> tuple[int, Placement] | None:
    """The least extra memory per device (to `step` bytes) with which some placement fits
    devices and RAM, and that placement; None when RAM is too small even for one GPU unit."""
    L = c.n_layers
    best: tuple[int, Placement] | None = None
    for ngl in range(c.n_units, c.least_ngl - 1, -1):
        if ram_bytes(c, ngl, 0) > ram_limit:
            break
        if n_cpu_moe is None:   # the most experts RAM takes: device bytes fall with every one
            m = first_true(0, L, lambda n: n == L or ram_bytes(c, ngl, n + 1) > ram_limit)
        else:
            m = n_cpu_moe
            if ram_bytes(c, ngl, m) > ram_limit:
                continue
        units, fixed = gpu_units(c, ngl, m), c.busy
        lower = max(max(units, default=0) + fixed - max(caps),
                    -(-(sum(units) + fixed * len(caps) - sum(caps)) // len(caps)), 0)
        if best is not None and lower >= best[0]:
            continue
        hi = max(units, default=0) + fixed + sum(units)
        extra = first_true(0, -(-hi // step), lambda k: device_fits(c, [cap + k * step for cap in caps], ngl, m)) * step
        if best is None or extra < best[0]:
            if n_cpu_moe is None:   # with that much more, the fewest expert layers that still fit
                m = fewest_expert_layers(c, [cap + extra for cap in caps], ngl)
            best = (extra, balanced(c, caps, ngl, m, extra))
    return best
