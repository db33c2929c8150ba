"""Where llama.cpp puts each layer for `-ngl`, `--n-cpu-moe`, `-ot` and `-ts`, and the search for the
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
  the rest of those layers stays where -ngl puts it. It is a list of tensor overrides, one regex
  per block i (common.h llm_ffn_exps_block_regex: blk.i.ffn_(up|down|gate…)_exps, its dots
  escaped), each to the CPU buffer type.
* `-ot <regex>=CPU` (--override-tensor, common/arg.cpp parse_tensor_buffer_overrides; the loader
  takes the first pattern that std::regex_search finds in a tensor's name): the same override for
  a chosen few tensors. With it block N's expert tensors go to RAM one tensor at a time (down,
  gate, up: `Costs.parts`), so a plan a few GB short need not give a whole layer's experts to RAM.
  The search uses it only there: `--n-cpu-moe N` plus a proper subset of block N's expert tensors
  (`Placement.part`); the solver never prints other patterns.

The search keeps the planner's preference order: the most GPU units (-ngl); then the fewest expert
bytes in RAM (the most on the GPUs: at one -ngl the RAM is fixed bytes plus the experts moved, so
this is also the least RAM), where `--n-cpu-moe N` with part of block N counts by its bytes, so it
wins over `--n-cpu-moe N + 1` only when it keeps more on the GPUs; on equal bytes the plan with no
`-ot`, then the fewer tensors, then the earlier in the block's order; then the split that evens the
devices' fill (the smallest largest share of capacity). Every check is monotone where it is
bisected: device bytes fall as --n-cpu-moe grows and as -ngl shrinks; RAM grows as --n-cpu-moe
grows and as -ngl shrinks for a fixed --n-cpu-moe. If m is the fewest whole layers that fit at one
-ngl, only block m − 1's partial plans can move fewer bytes and still fit: any plan with a lower
N moves no more from any unit than `--n-cpu-moe m − 1`, which does not fit. RAM at the smallest
device-fitting --n-cpu-moe is not monotone in -ngl, so -ngl is scanned. A placement counts as one
only with at least one repeating layer on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations


@dataclass(frozen=True)
class Costs:
    """One scheme at one context, in bytes."""
    layers: tuple[int, ...]     # per repeating layer: its weights + its KV cache and recurrent state
    experts: tuple[int, ...]    # of which its ffn_*_exps weights (0 for a dense layer)
    output: int                 # the output unit (output, output_norm; fit.py adds the embeddings)
    busy: int                   # per device once anything is offloaded: compute buffer + CUDA context
    idle: int                   # per device with nothing offloaded: CUDA context
    n_empty: int = 0            # MTP blocks between the layers and the output: units of no bytes
    # per repeating layer, the bytes of each of its expert tensors (down, gate, up: the GGUF tensor
    # plan's order; they sum to `experts`): what `-ot` can move one at a time. Empty: whole layers only.
    parts: tuple[tuple[int, ...], ...] = ()

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
    part: tuple[int, ...] = ()  # which of block n_cpu_moe's expert tensors (indices into Costs.parts)
                                # -ot keeps in RAM as well: a proper subset, or () for none


def part_bytes(c: Costs, m: int, part: tuple[int, ...]) -> int:
    """Bytes of the expert tensors `part` of block m."""
    return sum(c.parts[m][j] for j in part) if part else 0


def gpu_units(c: Costs, ngl: int, m: int, part: tuple[int, ...] = ()) -> list[int]:
    """Bytes of each GPU unit in llama.cpp's order: the last ngl of (layers, MTP blocks, output)."""
    L = c.n_layers
    if ngl <= 0:
        return []
    g = c.gpu_layers(ngl)
    layers = [c.layers[i] - (c.experts[i] if i < m else 0) for i in range(L - g, L)]
    if part and L - g <= m < L:
        layers[m - (L - g)] -= part_bytes(c, m, part)
    return layers + [0] * min(c.n_empty, ngl - 1) + [c.output]


def ram_bytes(c: Costs, ngl: int, m: int, part: tuple[int, ...] = ()) -> int:
    """CPU layers whole, the experts of GPU layers below m (and `part` of block m when it is a GPU
    layer), and the output unit unless on a GPU."""
    first_gpu = c.n_layers - c.gpu_layers(ngl)
    return (sum(c.layers[:first_gpu]) + sum(c.experts[first_gpu:max(first_gpu, m)])
            + (part_bytes(c, m, part) if first_gpu <= m < c.n_layers else 0) + (0 if ngl > 0 else c.output))


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


def device_fits(c: Costs, caps: list[int], ngl: int, m: int, part: tuple[int, ...] = ()) -> bool:
    fixed = c.busy if ngl else c.idle
    return _greedy(gpu_units(c, ngl, m, part), [cap - fixed for cap in caps]) is not None


def balanced(c: Costs, caps: list[int], ngl: int, m: int, part: tuple[int, ...] = (),
             extra: int = 0) -> Placement | None:
    """The split with the smallest largest share of capacity (bisection on the share), or None."""
    units, fixed = gpu_units(c, ngl, m, part), (c.busy if ngl else c.idle)
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
    return Placement(ngl, m, tuple(split), tuple(loads), ram_bytes(c, ngl, m, part), part)


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


def partial_plans(c: Costs, m: int) -> list[tuple[int, ...]]:
    """Block m's proper subsets of expert tensors, in preference order: fewest bytes (most left on
    the GPU), then fewest tensors, then the block's tensor order."""
    if not c.parts or not 0 <= m < c.n_layers:
        return []
    n = len(c.parts[m])
    subsets = [s for size in range(1, n) for s in combinations(range(n), size)]
    return sorted(subsets, key=lambda s: (part_bytes(c, m, s), len(s), s))


def tightest(c: Costs, caps: list[int], ngl: int, ram_limit: int | None = None) -> tuple[int, tuple[int, ...]] | None:
    """The device-fitting (--n-cpu-moe, -ot part) at -ngl `ngl` with the fewest expert bytes in RAM
    (None when none fits): the fewest whole layers m, or m − 1 of them and part of block m − 1
    where that fits (no plan with fewer whole layers can: see the module docstring). With
    `ram_limit`, None as soon as RAM can't hold even --n-cpu-moe m − 1, the least of them all."""
    m = fewest_expert_layers(c, caps, ngl)
    if m is None or (ram_limit is not None and ram_bytes(c, ngl, max(m - 1, 0)) > ram_limit):
        return None
    for part in partial_plans(c, m - 1):   # fewest bytes first: the first that fits is the tightest
        if device_fits(c, caps, ngl, m - 1, part):
            return m - 1, part
    return m, ()


def most_units(c: Costs, caps: list[int], m: int) -> int:
    """The largest -ngl that fits the devices with --n-cpu-moe m and puts ≥ 1 repeating layer on a
    GPU (0 when none does)."""
    U, least = c.n_units, c.least_ngl
    if not device_fits(c, caps, least, m):
        return 0
    return U - first_true(0, U - least, lambda drop: device_fits(c, caps, U - drop, m))


def _choice(c: Costs, caps: list[int], ngl: int, n_cpu_moe: int | None,
            ram_limit: int | None = None) -> tuple[int, tuple[int, ...]] | None:
    """The tightest device-fitting expert offload at -ngl `ngl`; a hand-set n_cpu_moe means whole
    layers only (no -ot), as llama.cpp's own flag does."""
    if n_cpu_moe is None:
        return tightest(c, caps, ngl, ram_limit)
    return (n_cpu_moe, ()) if device_fits(c, caps, ngl, n_cpu_moe) else None


def search(c: Costs, caps: list[int], ram_limit: int, n_cpu_moe: int | None = None) -> Placement | None:
    """The placement with the most GPU units, then the fewest expert bytes in RAM, that fits every
    device and RAM (n_cpu_moe: fixed by hand); None when no placement with ≥ 1 unit fits."""
    L = c.n_layers
    top = most_units(c, caps, L if n_cpu_moe is None else n_cpu_moe)
    for ngl in range(top, c.least_ngl - 1, -1):
        if ram_bytes(c, ngl, 0) > ram_limit:
            return None     # fewer units only put more in RAM
        choice = _choice(c, caps, ngl, n_cpu_moe, ram_limit)
        # the tightest choice is also the least RAM at this -ngl: if it overflows, every other does
        if choice is not None and ram_bytes(c, ngl, *choice) <= ram_limit:
            return balanced(c, caps, ngl, *choice)
    return None


def ram_needed(c: Costs, caps: list[int], n_cpu_moe: int | None = None) -> Placement | None:
    """The device-fitting placement (≥ 1 unit) that needs the least RAM, or None."""
    best: Placement | None = None
    for ngl in range(most_units(c, caps, c.n_layers if n_cpu_moe is None else n_cpu_moe), c.least_ngl - 1, -1):
        choice = _choice(c, caps, ngl, n_cpu_moe)
        if choice is not None and (best is None or ram_bytes(c, ngl, *choice) < best.ram):
            best = balanced(c, caps, ngl, *choice)
    return best


def _most_moved(c: Costs, ngl: int, ram_limit: int) -> tuple[int, tuple[int, ...]]:
    """The (--n-cpu-moe, -ot part) that moves the most expert bytes RAM still holds at -ngl `ngl`
    (the smallest GPU units): the most whole layers, then the largest part of the next block."""
    L = c.n_layers
    m = first_true(0, L, lambda n: n == L or ram_bytes(c, ngl, n + 1) > ram_limit)
    held = [p for p in partial_plans(c, m) if ram_bytes(c, ngl, m, p) <= ram_limit]
    return (m, max(held, key=lambda p: part_bytes(c, m, p))) if held else (m, ())


def vram_needed(c: Costs, caps: list[int], ram_limit: int, n_cpu_moe: int | None = None,
                step: int = 2**20) -> tuple[int, Placement] | None:
    """The least extra memory per device (to `step` bytes) with which some placement fits
    devices and RAM, and that placement; None when RAM is too small even for one GPU unit."""
    best: tuple[int, Placement] | None = None
    for ngl in range(c.n_units, c.least_ngl - 1, -1):
        if ram_bytes(c, ngl, 0) > ram_limit:
            break
        if n_cpu_moe is None:   # the most experts RAM takes: device bytes fall with every one
            m, part = _most_moved(c, ngl, ram_limit)
        else:
            m, part = n_cpu_moe, ()
            if ram_bytes(c, ngl, m) > ram_limit:
                continue
        units, fixed = gpu_units(c, ngl, m, part), c.busy
        lower = max(max(units, default=0) + fixed - max(caps),
                    -(-(sum(units) + fixed * len(caps) - sum(caps)) // len(caps)), 0)
        if best is not None and lower >= best[0]:
            continue
        hi = max(units, default=0) + fixed + sum(units)
        extra = first_true(0, -(-hi // step),
                           lambda k: device_fits(c, [cap + k * step for cap in caps], ngl, m, part)) * step
        if best is None or extra < best[0]:
            if n_cpu_moe is None:   # with that much more, the fewest expert bytes that still fit
                m, part = tightest(c, [cap + extra for cap in caps], ngl)
            best = (extra, balanced(c, caps, ngl, m, part, extra))
    return best
