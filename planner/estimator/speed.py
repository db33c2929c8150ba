"""Speed: decode tokens/s (memory-bandwidth roofline capped by compute) and prefill seconds.

Decode is memory-bound at small batch: each step streams every weight byte it uses once and each
sequence's KV cache once (Pope et al. 2022, "Efficiently Scaling Transformer Inference", §2). A
step of batch B takes
    t = max(device bytes / (bandwidth × efficiency) + RAM bytes / RAM bandwidth,
            2 × matmul params × B / FLOP/s) + n_layers × fixed time per layer
and aggregate tok/s = B / t. With a layer split the devices run one after another (llama.cpp's
default -sm layer), so device reads go at ONE device's bandwidth, whatever the device count. The
bytes read per token of a GGUF scheme are counted from its tensor plan (`weights_read_per_token`):
every tensor once, a MoE's expert tensors × n_experts_per_tok / n_experts, and the token
embedding only when it doubles as the output matrix (tied) — otherwise one row of it is read.
Prefill: 2 × matmul params per prompt token (Kaplan et al. 2020, §2.1; the embedding lookup and the
one output row computed for the last token are not matmuls over the prompt) plus causal attention
2 × n_layers × P² × (n_heads × head_dim), over the achieved FLOP/s.

Where the constants come from (`speed_basis`), in order:
1. the hardware's own Calibration: a node of ours, measured by its worker with llama-bench
   (calibration.node_calibration);
2. CITED below: a published llama-bench measurement on that very card;
3. otherwise an assumption, which the reason says is one (ASSUMED_*), never presented as measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .architecture import Architecture
from .calibration import Calibration
from .gguf_quant import GGUF_FTYPES, gguf_tensor_plan
from .hardware import GB, Hardware
from .workload import Workload

# Assumptions without a published source, used only where neither a node measurement nor a citation
# exists — every reason that uses one says "assumed".
ASSUMED_BANDWIDTH_EFFICIENCY = {"gpu": 0.7, "apple": 0.65, "phone": 0.5, "cpu": 0.6}
ASSUMED_COMPUTE_EFFICIENCY = 0.4
# transformers' eager Python generate loop adds per-token overhead at small batch (assumed).
ASSUMED_RUNTIME_FACTOR = {"llama.cpp": 1.0, "vllm": 1.0, "transformers": 0.6}
ASSUMED_PER_LAYER_SECONDS = {"llama.cpp": 10e-6, "vllm": 5e-6, "transformers": 80e-6}
# Host RAM bandwidth when a GPU profile gives none: dual-channel DDR5-5000 ≈ 80 GB/s peak (assumed).
DEFAULT_RAM_BANDWIDTH = 80 * GB
# Kept under their old names for callers that read them.
BANDWIDTH_EFFICIENCY = ASSUMED_BANDWIDTH_EFFICIENCY
COMPUTE_EFFICIENCY = ASSUMED_COMPUTE_EFFICIENCY
PER_LAYER_STEP_SECONDS = ASSUMED_PER_LAYER_SECONDS


def _cited(card: str, bandwidth: float, figures: dict[str, tuple[float, float]], pp: tuple[str, float, float] | None,
           source: str) -> Calibration:
    """figures: scheme -> (tg tokens/s, bytes read per token); pp: (scheme, pp512 tokens/s, FLOP per token).
    As for a node (calibration.node_calibration), the prefill's one pass over the weights (one decode
    step, 1 / tg) is taken out of the pp512 time before dividing the FLOP by it."""
    decode = tuple((s, tg * read / bandwidth) for s, (tg, read) in figures.items())
    prefill = ((pp[0], 512 * pp[2] / (512 / pp[1] - 1 / figures[pp[0]][0])),) if pp else ()
    numbers = "; ".join(f"{s} tg {tg} t/s" for s, (tg, _) in figures.items())
    if pp:
        numbers += f"; {pp[0]} pp512 {pp[1]} t/s"
    return Calibration(source=f"cited: {source}, {card}: {numbers}", measured=False, bandwidth_bytes_per_s=bandwidth,
                       bandwidth_source=f"{card} datasheet", decode_efficiency=decode, prefill_flops=prefill,
                       fixed_seconds_per_layer=0.0,
                       fixed_source="none: the cited tg figures are end to end, fixed costs included")


# Published llama-bench figures on the card itself. Source: XiongjieDai/GPU-Benchmarks-on-LLM-Inference
# README, "LLaMA 3" NVIDIA table (llama-bench on RunPod, May 2024, Llama 3 8B Instruct):
#   RTX 4090: Q4_K_M tg512 130.58 t/s, pp512 7138.99 t/s; F16 tg512 54.84 t/s
#   RTX 3090: Q4_K_M tg512 115.42 t/s; F16 tg512 47.40 t/s
# Bytes read per token: this estimator's GGUF plan of Llama 3.1 8B (same shape as 3) without the
# untied token embedding (one row read): Q4_K_M 4,617,396,480 B, F16 15,010,382,080 B, + the f16 KV
# cache at the mean depth of tg512 (256 × 131,072 B = 33,554,432 B). FLOP per pp512 token:
# 2 × 6,979,588,096 matmul params + 2 × 32 layers × 512 × 4096 = 14,093,393,920.
# Datasheet bandwidths: RTX 4090 1,008 GB/s, RTX 3090 936 GB/s.
_LLAMA3_8B_READ = {"Q4_K_M": 4_617_396_480 + 33_554_432, "F16": 15_010_382_080 + 33_554_432}
_XIONGJIE = "llama-bench, Llama 3 8B, XiongjieDai/GPU-Benchmarks-on-LLM-Inference (May 2024)"
CITED: dict[str, Calibration] = {
    "rtx-4090": _cited("RTX 4090", 1008 * GB, {"Q4_K_M": (130.58, _LLAMA3_8B_READ["Q4_K_M"]),
                                              "F16": (54.84, _LLAMA3_8B_READ["F16"])},
                       ("Q4_K_M", 7138.99, 14_093_393_920), _XIONGJIE),
    "rtx-3090": _cited("RTX 3090", 936 * GB, {"Q4_K_M": (115.42, _LLAMA3_8B_READ["Q4_K_M"]),
                                             "F16": (47.40, _LLAMA3_8B_READ["F16"])}, None, _XIONGJIE),
}


@dataclass(frozen=True)
class SpeedBasis:
    """The constants one speed figure used, each with where it came from."""
    bandwidth: float          # bytes/s the efficiency applies to (one device)
    efficiency: float
    bandwidth_note: str
    efficiency_note: str
    flops: float              # achieved FLOP/s (one device)
    flops_note: str
    per_layer_seconds: float
    per_layer_note: str
    measured: bool

    @property
    def effective_bandwidth(self) -> float:
        return self.bandwidth * self.efficiency


def calibration_of(hw: Hardware) -> Calibration | None:
    return hw.calibration or CITED.get(hw.key)


def speed_basis(hw: Hardware, runtime: str, scheme: str) -> SpeedBasis:
    """The bandwidth, efficiency, FLOP/s and fixed cost for one scheme on one device."""
    cal = calibration_of(hw) if runtime == "llama.cpp" else None
    if cal is not None:
        eff, which = cal.efficiency(scheme)
        pre = cal.prefill(scheme)
        if pre:
            flops, flops_note = pre[0], f"{pre[0] / 1e12:,.3f} TFLOP/s achieved in prefill ({pre[1]}; {cal.source})"
        else:
            flops = hw.fp16_flops * ASSUMED_COMPUTE_EFFICIENCY
            flops_note = (f"{hw.fp16_flops / 1e12:,.1f} TFLOPS × {ASSUMED_COMPUTE_EFFICIENCY} (assumed: no published "
                          f"prefill figure on {hw.name})")
        return SpeedBasis(cal.bandwidth_bytes_per_s, eff, cal.bandwidth_source, f"{which}; {cal.source}", flops,
                          flops_note, cal.fixed_seconds_per_layer, cal.fixed_source or "none", cal.measured)
    eff = ASSUMED_BANDWIDTH_EFFICIENCY[hw.kind] * ASSUMED_RUNTIME_FACTOR[runtime]
    why = f"no published {runtime} figure on {hw.name}: assumed, not measured"
    return SpeedBasis(hw.bandwidth_bytes_per_s, eff, "datasheet", why,
                      hw.fp16_flops * ASSUMED_COMPUTE_EFFICIENCY,
                      f"{hw.fp16_flops / 1e12:,.1f} TFLOPS × {ASSUMED_COMPUTE_EFFICIENCY} ({why})",
                      ASSUMED_PER_LAYER_SECONDS[runtime], f"assumed {runtime} step overhead", False)


def expert_share(arch: Architecture, tokens: int) -> float:
    """Expected fraction of a MoE layer's experts that `tokens` tokens route to, each choosing
    n_experts_per_tok of n_experts (uniform routing): 1 − (1 − k/E)^tokens; k/E for one token."""
    if not arch.is_moe:
        return 1.0
    return 1 - (1 - arch.n_experts_per_tok / arch.n_experts) ** max(1, tokens)


@lru_cache(maxsize=1024)
def weights_read_per_token(arch: Architecture, scheme: str, weights_bytes: int, tokens: int = 1) -> tuple[int, str]:
    """Weight bytes one step of `tokens` tokens reads (see the module docstring), and how they were counted."""
    share = expert_share(arch, tokens)
    if scheme in GGUF_FTYPES:
        try:
            plan = gguf_tensor_plan(arch, scheme)
        except Exception:   # an architecture without a tensor plan (a bare parameter count)
            plan = ()
        if plan:
            names = {name for name, _, _ in plan}
            total = 0.0
            for name, _, b in plan:
                if name == "token_embd.weight" and "output.weight" in names:
                    continue   # untied: get_rows reads one row of it
                total += b * share if "_exps." in name else b
            return int(total), "tensor plan: every tensor once" + (
                f", experts × {share:.3f} (1 − (1 − top-k/E)^{tokens} tokens)" if arch.is_moe else "")
    if not weights_bytes:
        return 0, "no tensor plan and no weight bytes: not counted"
    active = arch.total_params - arch.expert_params * (1 - share) if arch.is_moe else arch.total_params
    read = int(weights_bytes * active / arch.total_params)
    return read, "weights × active/total params"


def matmul_params(arch: Architecture) -> int:
    """Parameters multiplied per prompt token: the active ones less the token embedding (a lookup) and an
    untied output matrix (computed for the last token only)."""
    embed = arch.embedding_params * (1 if arch.tie_word_embeddings else 2)
    return max(arch.active_params - embed, arch.active_params // 2)


def decode_rate(arch: Architecture, hw: Hardware, wl: Workload, scheme: str, device_bytes: float,
                ram_bytes: float = 0.0) -> tuple[float, str]:
    """Aggregate decode tok/s of `wl.batch` sequences reading `device_bytes` from device memory and
    `ram_bytes` from host RAM per step (the one function behind the table, the fit card and the API)."""
    B = wl.batch
    basis = speed_basis(hw, wl.runtime, scheme)
    bw = basis.effective_bandwidth
    if hw.kind in ("cpu", "phone"):   # the device memory is the system RAM
        device_bytes, ram_bytes = device_bytes + ram_bytes, 0.0
    raw_ram = hw.ram_bandwidth or DEFAULT_RAM_BANDWIDTH
    ram_bw = raw_ram * ASSUMED_BANDWIDTH_EFFICIENCY["cpu"]
    t_mem = device_bytes / bw + (ram_bytes / ram_bw if ram_bytes else 0.0)
    t_compute = 2 * matmul_params(arch) * B / basis.flops
    t_fixed = arch.n_layers * basis.per_layer_seconds
    t = max(t_mem, t_compute) + t_fixed
    tps = B / t if t > 0 else 0.0
    bound = "memory" if t_mem >= t_compute else "compute"
    ram = (f" + {ram_bytes:,.0f} B / {ram_bw / 1e9:,.1f} GB/s RAM ({raw_ram / 1e9:,.0f} GB/s"
           f"{' assumed DDR5' if raw_ram == DEFAULT_RAM_BANDWIDTH else ''} × {ASSUMED_BANDWIDTH_EFFICIENCY['cpu']}, "
           "assumed)") if ram_bytes else ""
    split = " (one device: layer split runs the devices in turn)" if hw.device_count > 1 else ""
    fixed = (f" + {arch.n_layers} layers × {basis.per_layer_seconds * 1e6:.0f} µs ({basis.per_layer_note})"
             if basis.per_layer_seconds else f" + no fixed time per layer ({basis.per_layer_note})")
    return tps, (f"{B} seq / max({device_bytes:,.0f} B / ({basis.bandwidth / 1e9:,.1f} GB/s × {basis.efficiency:.3f})"
                 f"{ram}, 2 × {matmul_params(arch):,} × {B} FLOP / {basis.flops / 1e12:,.3f} TFLOP/s){fixed} = "
                 f"{tps:,.2f} tok/s ({bound}-bound). Bandwidth: {basis.bandwidth / 1e9:,.1f} GB/s, "
                 f"{basis.bandwidth_note}{split}. "
                 f"Efficiency {basis.efficiency:.3f}: {basis.efficiency_note}. Compute: {basis.flops_note}")


def decode_tokens_per_s(arch: Architecture, hw: Hardware, wl: Workload, weights_bytes: int,
                        kv_bytes: int, gpu_fraction: float = 1.0, state_bytes: int = 0,
                        scheme: str = "") -> tuple[float, str]:
    """Aggregate decode tokens/s for `wl.batch` sequences at the full context (worst case); a hybrid's
    recurrent state (`state_bytes`) is read every step like the KV cache. `gpu_fraction` of the
    bytes are on the device, the rest in host RAM."""
    read, how = weights_read_per_token(arch, scheme, weights_bytes, wl.batch)
    per_step = read + kv_bytes + state_bytes   # KV and state already cover all B sequences
    on_dev = per_step * gpu_fraction
    tps, reason = decode_rate(arch, hw, wl, scheme, on_dev, per_step - on_dev)
    state = f" + {state_bytes:,} B recurrent state" if state_bytes else ""
    return tps, (f"bytes per step: {read:,} B weights ({how}) + {kv_bytes:,} B KV{state}"
                 + (f", {gpu_fraction:.0%} on the device" if gpu_fraction < 1 else "") + f". {reason}")


def prefill_seconds(arch: Architecture, hw: Hardware, wl: Workload, scheme: str = "",
                    weights_bytes: int = 0) -> tuple[float, str]:
    """Seconds to process the prompt (`wl.prompt` tokens, default the whole context) of every sequence:
    the FLOP at the achieved FLOP/s, plus one pass over the weights per ubatch (each ubatch of up to
    n_ubatch tokens streams every weight it uses once; a MoE's ubatch touches the experts its tokens
    route to, expert_share)."""
    P, B = wl.prompt, wl.batch
    basis = speed_basis(hw, wl.runtime, scheme)
    M = matmul_params(arch)
    flop = (2 * M * P + 2 * arch.n_layers * P * P * arch.q_dim) * B
    tokens = P * B
    ubatches = -(-tokens // wl.n_ubatch)
    read, how = weights_read_per_token(arch, scheme, weights_bytes, min(tokens, wl.n_ubatch))
    t_read = ubatches * read / basis.effective_bandwidth
    secs = flop / basis.flops + t_read
    return secs, (f"(2 × {M:,} matmul params × {P:,} tokens + 2 × {arch.n_layers} layers × {P:,}² × "
                  f"{arch.q_dim}) × {B} seq = {flop:,.0f} FLOP / {basis.flops / 1e12:,.3f} TFLOP/s + {ubatches} "
                  f"ubatch(es) × {read:,} B weights ({how}) / ({basis.bandwidth / 1e9:,.1f} GB/s × "
                  f"{basis.efficiency:.3f}) = {secs:,.3f} s. Compute: {basis.flops_note}")
