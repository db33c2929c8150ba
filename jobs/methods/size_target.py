"""Choosing each tensor group's quantization type to fit a byte budget with the least error.

A "group" is one kind of tensor across the layers (attn_v, ffn_down, token_embd, ...). For each
group the caller gives the types it may take, each with the bytes the group would occupy in that
type and the error it was measured to add (e.g. the mean-KLD increase when that group alone is
quantized to that type). Errors are assumed additive across groups, the usual first-order model
behind per-tensor mixed precision; the caller measures the chosen file afterwards to check it.

The choice is exact for that model: a multiple-choice knapsack solved by keeping, group after
group, only the Pareto-optimal (bytes, error) partial mixes. A greedy "best gain per byte" pass
can strand bytes when a cheap step blocks a better large one; with tens of groups and a handful
of types each the frontier stays small, so there is no reason to accept that.

The choosing part is pure; Tools and measure_sensitivity run llama.cpp's tools (jobs.llama_tools).
Nothing here imports Django: the GGUF job's child process and bench/size_targeted.py both use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from jobs import llama_tools


class BudgetError(ValueError):
    """The budget can't be met: the message gives the reachable range in bytes."""


@dataclass(frozen=True)
class Option:
    """One type a group may take: the bytes the whole group occupies in it and its added error."""

    type: str
    bytes: int
    error: float


@dataclass(frozen=True)
class Choice:
    types: dict[str, str]
    bytes: int
    error: float


def reachable_bytes(groups: dict[str, list[Option]]) -> tuple[int, int]:
    """The smallest and largest total bytes any mix of the given options can have."""
    _check(groups)
    return (sum(min(o.bytes for o in options) for options in groups.values()),
            sum(max(o.bytes for o in options) for options in groups.values()))


def choose_types(groups: dict[str, list[Option]], budget_bytes: int) -> Choice:
    """The mix (one option per group) with the least total error whose bytes are <= budget_bytes;
    among equal errors, the smaller mix. Raises BudgetError when even the smallest mix is over."""
    low, _ = reachable_bytes(groups)
    if budget_bytes < low:
        raise BudgetError(f"{budget_bytes} bytes is below the smallest mix these types allow "
                          f"({low} bytes)")
    # Each partial mix: (bytes, error, {group: type}); kept sorted by bytes, error strictly falling.
    frontier: list[tuple[int, float, dict[str, str]]] = [(0, 0.0, {})]
    for name, options in groups.items():
        grown = [(b + o.bytes, e + o.error, {**mix, name: o.type})
                 for b, e, mix in frontier for o in options if b + o.bytes <= budget_bytes]
        frontier = _pareto(grown)
    best_bytes, best_error, best_mix = min(frontier, key=lambda x: (x[1], x[0]))
    return Choice(types=best_mix, bytes=best_bytes, error=best_error)


Mix = tuple[int, float, dict[str, str]]


def _pareto(mixes: list[Mix]) -> list[Mix]:
    """Drops every mix that another matches or beats on both bytes and error."""
    kept: list[Mix] = []
    for mix in sorted(mixes, key=lambda x: (x[0], x[1])):
        if not kept or mix[1] < kept[-1][1]:
            kept.append(mix)
    return kept


def _check(groups: dict[str, list[Option]]) -> None:
    if not groups:
        raise BudgetError("no tensor groups to choose types for")
    for name, options in groups.items():
        if not options:
            raise BudgetError(f"group {name} has no type to choose from")
        for o in options:
            if o.bytes < 0:
                raise BudgetError(f"group {name}, type {o.type}: negative byte count {o.bytes}")


# --- Tensor groups of a GGUF file and the types each may take ---------------------------------

# Cheapest first; the last is the sensitivity base. Rows whose width is a multiple of 256 take
# the k-quants; narrower ones (the demo's 576) only llama.cpp's 32-wide blocks, which is where
# llama-quantize's own fallbacks land too (src/llama-quant.cpp, llama_tensor_get_type). q4_0 is
# left out: iq4_nl has its size with a non-linear grid. q4_1 is left out because the demo's
# weights come from a Q4_1, which q4_1 would reproduce almost exactly: a win no real model shows.
NARROW_TYPES = ("iq4_nl", "q5_0", "q8_0")
WIDE_TYPES = ("q3_K", "q4_K", "q5_K", "q6_K")
# (elements per block, bytes per block): ggml/src/ggml.c type_traits.
BLOCKS = {"iq4_nl": (32, 18), "q5_0": (32, 22), "q8_0": (32, 34), "q3_K": (256, 110),
          "q4_K": (256, 144), "q5_K": (256, 176), "q6_K": (256, 210)}


def group_of(tensor_name: str, shape: tuple[int, ...]) -> str | None:
    """The group a weight matrix belongs to: token_embd, output, or its kind across the layers
    (blk.N.attn_v.weight -> attn_v); None for 1-D tensors (norms stay F32) and anything else."""
    if len(shape) < 2:
        return None
    if tensor_name in ("token_embd.weight", "output.weight"):
        return tensor_name.split(".")[0]
    parts = tensor_name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[1].isdigit() and parts[3] == "weight":
        return parts[2]
    return None


def group_types(tensors: list[tuple[str, tuple[int, ...]]]) -> dict[str, tuple[str, ...]]:
    """Each group's ladder: the wide types only when every tensor's rows fit 256-wide blocks."""
    ladders: dict[str, tuple[str, ...]] = {}
    for name, shape in tensors:
        if group := group_of(name, shape):
            fits = shape[0] % 256 == 0 and ladders.get(group, WIDE_TYPES) == WIDE_TYPES
            ladders[group] = WIDE_TYPES if fits else NARROW_TYPES
    return ladders


def group_bytes(tensors: list[tuple[str, tuple[int, ...]]], ggml_type: str) -> dict[str, int]:
    """Each group's bytes if all its tensors were ggml_type (ggml_nbytes: elements / block ×
    bytes per block)."""
    block, size = BLOCKS[ggml_type]
    sizes: dict[str, int] = {}
    for name, shape in tensors:
        if group := group_of(name, shape):
            n = 1
            for d in shape:
                n *= d
            sizes[group] = sizes.get(group, 0) + n // block * size
    return sizes


def group_costs(tensors: list[tuple[str, tuple[int, ...]]]) -> dict[str, dict[str, int]]:
    """{group: {type: bytes}} over each group's ladder."""
    ladders = group_types(tensors)
    by_type = {t: group_bytes(tensors, t) for t in BLOCKS}
    return {g: {t: by_type[t][g] for t in ladder} for g, ladder in ladders.items()}


def layer_of(tensor_name: str) -> int | None:
    parts = tensor_name.split(".")
    return int(parts[1]) if len(parts) > 2 and parts[0] == "blk" and parts[1].isdigit() else None


@dataclass(frozen=True)
class LayerUpgrade:
    """Some layers of a group moved to a dearer type than the group's, with the bytes they add and
    the error change assumed for them (the group's measured change, pro rata to bytes)."""

    group: str
    type: str
    layers: tuple[int, ...]
    bytes: int
    error: float


def fill_layers(groups: dict[str, list[Option]], choice: Choice,
                tensors: list[tuple[str, tuple[int, ...]]],
                budget_bytes: int) -> list[LayerUpgrade]:
    """Spends what the whole-group choice leaves of the budget on single layers: the group and
    dearer type with the best measured error saved per byte first, as many of its layers as fit,
    then the next group. Sensitivity is measured per group, so a layer's share of it is assumed
    proportional to its bytes; the layers go first and last inwards, where llama.cpp's own mixes
    spend extra bits too (src/llama-quant.cpp, use_more_bits)."""
    left = budget_bytes - choice.bytes
    chosen = {g: next(o for o in groups[g] if o.type == t) for g, t in choice.types.items()}
    steps = sorted((((c.error - o.error) / (o.bytes - c.bytes), g, o)
                    for g, c in chosen.items() for o in groups[g]
                    if o.bytes > c.bytes and o.error < c.error), key=lambda s: -s[0])
    upgrades = []
    for _, group, option in steps:
        if any(u.group == group for u in upgrades):
            continue
        extra = {layer_of(n): layer_extra(shape, chosen[group].type, option.type)
                 for n, shape in tensors if group_of(n, shape) == group and layer_of(n) is not None}
        ends = sorted(extra)
        order = [ends[i // 2] if i % 2 == 0 else ends[-1 - i // 2] for i in range(len(ends))]
        taken, spent = [], 0
        for layer in order:
            if spent + extra[layer] > left:
                break
            taken.append(layer)
            spent += extra[layer]
        if taken:
            share = spent / (option.bytes - chosen[group].bytes)
            upgrades.append(LayerUpgrade(group, option.type, tuple(sorted(taken)), spent,
                                         (option.error - chosen[group].error) * share))
            left -= spent
    return upgrades


def layer_extra(shape: tuple[int, ...], cheap: str, dear: str) -> int:
    n = 1
    for d in shape:
        n *= d
    return n // BLOCKS[dear][0] * BLOCKS[dear][1] - n // BLOCKS[cheap][0] * BLOCKS[cheap][1]


def override_args(types: dict[str, str], upgrades: list[LayerUpgrade] = ()) -> list[str]:
    """llama-quantize arguments that give each group its type. Patterns are searched in tensor
    names (std::regex_search) and the first that matches wins, so the per-layer ones go first."""
    args = []
    for u in upgrades:
        layers = "|".join(str(i) for i in u.layers)
        args += ["--tensor-type", rf"^blk\.({layers})\.{u.group}\.weight$={u.type}"]
    for group, ggml_type in types.items():
        if group == "token_embd":
            args += ["--token-embedding-type", ggml_type]
        elif group == "output":
            args += ["--output-tensor-type", ggml_type]
        else:
            args += ["--tensor-type", rf"\.{group}\.weight={ggml_type}"]
    return args


def tensor_plan(tensors: list[tuple[str, tuple[int, ...]]], types: dict[str, str],
                upgrades: list[LayerUpgrade] = ()) -> dict[str, str]:
    """The type each grouped tensor should have in the file override_args makes."""
    plan = {}
    for name, shape in tensors:
        if group := group_of(name, shape):
            plan[name] = next((u.type for u in upgrades
                               if u.group == group and layer_of(name) in u.layers), types[group])
    return plan


# --- The GGUF job's `target_size`: budget, sensitivity, recipe ------------------------------

# llama-quantize adds a few metadata keys (file type, the imatrix's file, dataset and counts) to
# the input's header; this covers them so a GiB target is not overshot by the header alone.
HEADER_MARGIN = 64 * 1024
ALIGNMENT = 32  # GGUF's default general.alignment: each tensor's data is padded to it


def parse_target(value) -> tuple[float, str]:
    """"5.5 bpw" or "0.09 GiB" -> (5.5, "bpw") / (0.09, "GiB"); BudgetError when it is neither."""
    number, _, unit = str(value).strip().partition(" ")
    units = {"bpw": "bpw", "gib": "GiB"}
    try:
        amount = float(number)
    except ValueError:
        amount = float("nan")
    if unit.strip().lower() not in units or not amount > 0 or amount == float("inf"):
        raise BudgetError(f"{str(value)[:40]!r} is not a size: write it as '<number> GiB' or "
                          "'<number> bpw' (e.g. 0.09 GiB, 5.5 bpw)")
    return amount, units[unit.strip().lower()]


@dataclass(frozen=True)
class Layout:
    """What a target is measured against: the model's weight count, the bytes outside the groups
    (1-D tensors, kept as they are) and the file's header."""

    n_weights: int
    fixed_bytes: int
    header_bytes: int
    n_tensors: int

    def budget(self, amount: float, unit: str) -> int:
        """Bytes the groups may use for a target, padding and header taken off."""
        if unit == "bpw":
            data = amount * self.n_weights / 8
        else:
            data = amount * 1024**3 - self.header_bytes - HEADER_MARGIN
        return int(data) - self.fixed_bytes - ALIGNMENT * self.n_tensors

    def in_unit(self, group_bytes: int, unit: str) -> float:
        """The inverse of budget(): the target a group total corresponds to."""
        data = group_bytes + self.fixed_bytes + ALIGNMENT * self.n_tensors
        if unit == "bpw":
            return data * 8 / self.n_weights
        return (data + self.header_bytes + HEADER_MARGIN) / 1024**3


def layout_of(tensors: list[tuple[str, tuple[int, ...], int]], header_bytes: int) -> Layout:
    """From (name, shape, bytes in the input) of every tensor; BudgetError when a matrix belongs
    to no group (its type would be llama.cpp's choice, not ours)."""
    n_weights = fixed = 0
    for name, shape, nbytes in tensors:
        n = 1
        for d in shape:
            n *= d
        n_weights += n
        if group_of(name, shape) is None:
            if len(shape) > 1:
                raise BudgetError(f"tensor {name} is in no tensor group; a size target can't "
                                  "place it")
            fixed += nbytes
    return Layout(n_weights, fixed, header_bytes, len(tensors))


# --- Measuring sensitivity with llama.cpp's tools ---------------------------------------------

MEAN_KLD = re.compile(r"Mean\s+KLD:\s+(-?[0-9.]+)\s+±\s+([0-9.]+)")


@dataclass
class Tools:
    """How the measurement runs llama-quantize / llama-perplexity: the source GGUF (also the KL
    reference), its importance matrix, the calibration text and its chunks."""

    source: Path
    matrix: Path
    text: Path
    chunks: int
    context: int
    threads: int
    workdir: Path
    requantize: bool
    log: Callable[[str], None] = lambda line: None

    def quantize(self, target: Path, overrides: list[str], file_type: str = "Q8_0") -> Path:
        """file_type only labels the file when every matrix is named by an override."""
        args = (["--allow-requantize"] if self.requantize else []) + [
            "--imatrix", str(self.matrix), *overrides, str(self.source), str(target), file_type,
            str(self.threads)]
        llama_tools.run("llama-quantize", args, log=self.log)
        return target

    def save_reference(self) -> None:
        llama_tools.run("llama-perplexity", [
            "-m", str(self.source), "-f", str(self.text), "--kl-divergence-base",
            str(self.workdir / "reference.kld"), "-c", str(self.context), "--chunks",
            str(self.chunks), "-t", str(self.threads)], log=self.log)

    def mean_kld(self, model: Path) -> tuple[float, float]:
        """llama-perplexity's mean KLD against the saved reference, and its ±."""
        out = llama_tools.run("llama-perplexity", [
            "-m", str(model), "-f", str(self.text), "--kl-divergence-base",
            str(self.workdir / "reference.kld"), "--kl-divergence", "-c", str(self.context),
            "--chunks", str(self.chunks), "-t", str(self.threads)], log=self.log)
        if not (found := MEAN_KLD.search(out)):
            raise llama_tools.ToolError(f"llama-perplexity printed no mean KLD for {model.name}")
        return float(found.group(1)), float(found.group(2))


def measure_sensitivity(tools: Tools, tensors: list[tuple[str, tuple[int, ...]]],
                        progress: Callable[[float], None]) -> tuple[float, dict[str, list[Option]]]:
    """The base file's mean KLD (every group at its dearest type) and, per group, each type's
    bytes and mean-KLD increase over that base when the group alone takes it."""
    costs = group_costs(tensors)
    top = {g: list(by_type)[-1] for g, by_type in costs.items()}
    n_runs = 1 + sum(len(by_type) - 1 for by_type in costs.values())
    tools.workdir.mkdir(parents=True, exist_ok=True)
    tools.save_reference()
    base = tools.quantize(tools.workdir / "base.gguf", override_args(top))
    base_kld = tools.mean_kld(base)[0]
    base.unlink()
    done = 1
    progress(done / n_runs)
    options: dict[str, list[Option]] = {}
    for group, by_type in costs.items():
        options[group] = [Option(top[group], by_type[top[group]], 0.0)]
        for ggml_type in list(by_type)[:-1]:
            path = tools.quantize(tools.workdir / "probe.gguf",
                                  override_args({**top, group: ggml_type}))
            options[group].append(Option(ggml_type, by_type[ggml_type],
                                         round(tools.mean_kld(path)[0] - base_kld, 6)))
            path.unlink()
            done += 1
            progress(done / n_runs)
    (tools.workdir / "reference.kld").unlink()
    return base_kld, options


def sensitivity_table(options: dict[str, list[Option]]) -> dict[str, dict[str, dict]]:
    """{group: {type: {"bytes", "mean_kld_increase"}}}, as the job records it."""
    return {g: {o.type: {"bytes": o.bytes, "mean_kld_increase": o.error} for o in opts}
            for g, opts in options.items()}
