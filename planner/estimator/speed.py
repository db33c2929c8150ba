"""Speed: decode tokens/s (memory-bandwidth roofline capped by compute) and prefill seconds.

Decode is memory-bound at small batch: each step streams every weight byte it uses once and each
sequence's KV cache once (Pope et al. 2022, "Efficiently Scaling Transformer Inference", §2). A
step of batch B takes
    t = max(device bytes / (bandwidth × efficiency), 2 × matmul params × B / FLOP/s)
        + n_layers × fixed time per layer
and aggregate tok/s = B / t. With a layer split the devices run one after another (llama.cpp's
default -sm layer), so device reads go at ONE device's bandwidth, whatever the device count. The
bytes read per token of a GGUF scheme are counted from its tensor plan (`weights_read_per_token`):
every tensor once, a MoE's expert tensors × n_experts_per_tok / n_experts, and the token
embedding only when it doubles as the output matrix (tied) — otherwise one row of it is read.
Where the node measured decode at two depths, a step also spends the measured attention term over
the workload's context (speed_depth.py: seconds per layer × query head × head_dim × token, beyond
reading the KV bytes); cited hardware has no depth figure, so there only the KV bytes count.
Prefill: 2 × matmul params per prompt token (Kaplan et al. 2020, §2.1; the embedding lookup and the
one output row computed for the last token are not matmuls over the prompt) plus causal attention
2 × n_layers × P² × (n_heads × head_dim), over the achieved FLOP/s.

Where the constants come from (`speed_basis`), in order:
1. the hardware's own Calibration: a node of ours, measured by its worker with llama-bench
   (calibration.node_calibration);
2. CITED below: a published llama-bench measurement on that very card.
Otherwise no speed is shown: decode and prefill are None beside the reason (`speed_withheld`), as
they are where a figure would rest on a constant nobody measured (prefill without a prefill
figure, a batch above one without the card's achieved FLOP/s, layers read from system RAM).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .architecture import Architecture
from .calibration import Calibration
from .gguf_quant import GGUF_FTYPES, gguf_tensor_plan
from .hardware import GB, Hardware
from .hrm_text import applications, applied_params
from .speed_depth import attention_units
from .workload import Workload


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


# Published llama-bench figures on the card itself, all from github XiongjieDai/GPU-Benchmarks-on-LLM-Inference
# (llama-bench on Llama 3 8B Instruct, May 2024; tg512 and pp512 tokens/s as printed):
#   README.md, "LLaMA 3" NVIDIA table (RunPod, CUDA 12.1.1):
#     RTX 4090: Q4_K_M tg 130.58, pp 7138.99; F16 tg 54.84
#     RTX 3090: Q4_K_M tg 115.42, pp 4030.40; F16 tg 47.40
#   README.md, "LLaMA 3" Apple Silicon table (Metal):
#     M1 7-core GPU 8GB: Q4_K_M tg 10.20, pp 94.48 (F16 does not fit)
#     M2 Ultra 76-core GPU 192GB: Q4_K_M tg 78.81, pp 994.04; F16 tg 36.90
#     M3 Max 40-core GPU 64GB: Q4_K_M tg 48.97, pp 693.32; F16 tg 22.04
#   "LLaMA 3/Professional GPUs/A100_SXM_v3.ipynb" (NVIDIA A100-SXM4-80GB, build d11afd66):
#     Q4_K_M tg 135.04, pp 5947.64; F16 tg 53.49
#   "LLaMA 3/Professional GPUs/A6000_v3.ipynb" (NVIDIA RTX A6000, build 4426e298):
#     Q4_K_M tg 105.39, pp 3780.55; F16 tg 40.71
# Bytes read per token: this estimator's GGUF plan of Llama 3.1 8B (same shape as 3) without the
# untied token embedding (one row read): Q4_K_M 4,617,396,480 B, F16 15,010,382,080 B, + the f16 KV
# cache at the mean depth of tg512 (256 × 131,072 B = 33,554,432 B). FLOP per pp512 token:
# 2 × 6,979,588,096 matmul params + 2 × 32 layers × 512 × 4096 = 14,093,393,920.
# Datasheet bandwidths: RTX 4090 1,008 GB/s, RTX 3090 936 GB/s, A100 80GB SXM 2,039 GB/s, RTX A6000
# 768 GB/s, M1 68.25 GB/s, M2 Ultra 800 GB/s, M3 Max (40-core GPU) 400 GB/s.
# The M3 Max 48/128 GB profiles are the same chip (40-core GPU, 400 GB/s) as the measured 64 GB
# machine (the 36 and 96 GB ones are the 30-core, 300 GB/s chip: not cited); an 8B model's speed
# does not depend on how much memory is beside it.
_LLAMA3_8B_READ = {"Q4_K_M": 4_617_396_480 + 33_554_432, "F16": 15_010_382_080 + 33_554_432}
_LLAMA3_8B_PP_FLOP = 14_093_393_920
_XIONGJIE = "llama-bench, Llama 3 8B, XiongjieDai/GPU-Benchmarks-on-LLM-Inference (May 2024)"


def _llama3(card: str, gbs: float, q4: tuple[float, float], f16: float | None, where: str = "README") -> Calibration:
    """q4: (Q4_K_M tg512, pp512); f16: F16 tg512 (None: not published)."""
    figures = {"Q4_K_M": (q4[0], _LLAMA3_8B_READ["Q4_K_M"])}
    if f16 is not None:
        figures["F16"] = (f16, _LLAMA3_8B_READ["F16"])
    return _cited(card, gbs * GB, figures, ("Q4_K_M", q4[1], _LLAMA3_8B_PP_FLOP), f"{_XIONGJIE} {where}")


_M3_MAX = _llama3("M3 Max 40-core GPU (measured on the 64 GB machine)", 400, (48.97, 693.32), 22.04)
CITED: dict[str, Calibration] = {
    "rtx-4090": _llama3("RTX 4090", 1008, (130.58, 7138.99), 54.84),
    "rtx-3090": _llama3("RTX 3090", 936, (115.42, 4030.40), 47.40),
    "a100-80gb": _llama3("A100 80GB SXM4", 2039, (135.04, 5947.64), 53.49,
                         "LLaMA 3/Professional GPUs/A100_SXM_v3.ipynb"),
    "a6000": _llama3("RTX A6000", 768, (105.39, 3780.55), 40.71, "LLaMA 3/Professional GPUs/A6000_v3.ipynb"),
    "m1-8gb": _llama3("M1 7-core GPU 8GB", 68.25, (10.20, 94.48), None),
    "m2-ultra-192gb": _llama3("M2 Ultra 76-core GPU 192GB", 800, (78.81, 994.04), 36.90),
    "m3-max-48gb": _M3_MAX, "m3-max-64gb": _M3_MAX, "m3-max-128gb": _M3_MAX,
}


@dataclass(frozen=True)
class SpeedBasis:
    """The constants one speed figure used, each with where it came from."""
    bandwidth: float          # bytes/s the efficiency applies to (one device)
    efficiency: float
    bandwidth_note: str
    efficiency_note: str
    flops: float | None       # achieved FLOP/s (one device); None: no prefill figure (flops_note says why)
    flops_note: str
    per_layer_seconds: float
    per_layer_note: str
    measured: bool
    moe_layer_seconds: float = 0.0    # per MoE layer and decode step, beyond reading its experts
    expert_prefill_ratio: float = 0.0  # the experts' prefill matmul rate ÷ flops (0: not measured)
    moe_note: str = ""

    @property
    def effective_bandwidth(self) -> float:
        return self.bandwidth * self.efficiency


def calibration_of(hw: Hardware) -> Calibration | None:
    return hw.calibration or CITED.get(hw.key)


def speed_withheld(hw: Hardware, runtime: str) -> str:
    """Why no speed is shown for this hardware and runtime; "" when a measured or cited figure stands
    behind them (only llama.cpp's: the node measurement and the citations are llama-bench's)."""
    if runtime == "llama.cpp":
        return "" if calibration_of(hw) is not None else \
            f"no published llama.cpp figure for {hw.name}; measure it on a node of ours"
    return (f"no published {runtime} figure for {hw.name}; measure it on a node of ours (our nodes measure "
            "llama.cpp with llama-bench)")


def speed_basis(hw: Hardware, runtime: str, scheme: str) -> SpeedBasis | None:
    """The bandwidth, efficiency, FLOP/s and fixed cost for one scheme on one device; None when no
    measured or cited figure stands behind them (speed_withheld says why)."""
    if speed_withheld(hw, runtime):
        return None
    cal = calibration_of(hw)
    eff, which = cal.efficiency(scheme)
    pre = cal.prefill(scheme)
    if pre:
        flops, flops_note = pre[0], f"{pre[0] / 1e12:,.3f} TFLOP/s achieved in prefill ({pre[1]}; {cal.source})"
    else:
        flops, flops_note = None, (f"no {'measured' if cal.measured else 'published'} llama.cpp prefill figure for "
                                   f"{hw.name}; measure it on a node of ours")
    return SpeedBasis(cal.bandwidth_bytes_per_s, eff, cal.bandwidth_source, f"{which}; {cal.source}", flops,
                      flops_note, cal.fixed_seconds_per_layer, cal.fixed_source or "none", cal.measured,
                      cal.moe_seconds_per_layer, cal.expert_prefill_ratio,
                      cal.moe_source or f"no MoE measured on {hw.name}")


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
                total += (b * share if "_exps." in name else b) * applications(arch, name)
            return int(total), "tensor plan: every tensor once" + (
                f", experts × {share:.3f} (1 − (1 − top-k/E)^{tokens} tokens)" if arch.is_moe else "") + (
                f", HRM-Text's L-stack blocks × {applications(arch, 'blk.0.')} and H-stack blocks × "
                f"{arch.hrm.h_cycles} (once per application)" if arch.hrm else "")
    if not weights_bytes:
        return 0, "no tensor plan and no weight bytes: not counted"
    active = arch.total_params - arch.expert_params * (1 - share) if arch.is_moe else applied_params(arch)
    read = int(weights_bytes * active / arch.total_params)
    return read, "weights × active/total params"


def matmul_params(arch: Architecture) -> int:
    """Parameters multiplied per prompt token: the active ones less the token embedding (a lookup) and an
    untied output matrix (computed for the last token only)."""
    embed = arch.embedding_params * (1 if arch.tie_word_embeddings else 2)
    active = applied_params(arch)   # HRM-Text: its blocks once per application
    return max(active - embed, active // 2)


def attention_term(arch: Architecture, hw: Hardware, wl: Workload) -> tuple[float | None, str]:
    """Seconds a decode step spends attending over the workload's context beyond reading its KV bytes,
    from the node's tg measured at two depths (speed_depth.py); None, with the reason, where no such
    measurement covers it (then only the KV bytes count, read at the bandwidth like the weights)."""
    cal = calibration_of(hw)
    if cal is None or not cal.attention_seconds:
        return None, "no tg measured at depth on this hardware: only the KV bytes read count"
    per_unit = dict(cal.attention_seconds).get(wl.flash_attn)
    if per_unit is None:
        return None, (f"tg at depth was not measured with flash attention {'on' if wl.flash_attn else 'off'}: "
                      "only the KV bytes read count")
    units, where = attention_units(arch, wl, cal.attention_kv_dim)
    if units is None:
        return None, f"the measured depth term does not apply ({where}): only the KV bytes read count"
    seconds = units * per_unit
    return seconds, (f"attention over the context {where} × {per_unit * 1e12:.3f} ps = {seconds * 1e3:,.3f} ms "
                     f"({cal.attention_source})")


def decode_rate(arch: Architecture, hw: Hardware, wl: Workload, scheme: str, device_bytes: float,
                ram_bytes: float = 0.0) -> tuple[float | None, str]:
    """Aggregate decode tok/s of `wl.batch` sequences reading `device_bytes` from device memory and
    `ram_bytes` from host RAM per step (the one function behind the table, the fit card and the API);
    None, with the reason, where no measured or cited figure covers it. Where the node measured decode
    at depth, the attention over the context (attention_term) is added to the step."""
    B = wl.batch
    basis = speed_basis(hw, wl.runtime, scheme)
    if basis is None:
        return None, speed_withheld(hw, wl.runtime)
    if hw.kind in ("cpu", "phone"):   # the device memory is the system RAM
        device_bytes, ram_bytes = device_bytes + ram_bytes, 0.0
    if ram_bytes:
        return None, (f"{ram_bytes:,.0f} B a step are read from system RAM, and no published or measured figure gives "
                      f"its speed under llama.cpp on this machine; measure it on a node of ours")
    t_attn, attn_note = attention_term(arch, hw, wl)
    attn_note = f" + {attn_note}" if t_attn is not None else f". Attention: {attn_note}"
    t_attn = t_attn or 0.0
    if basis.flops is None and B > 1:
        return None, f"a batch of {B} needs the achieved FLOP/s, and there is {basis.flops_note}"
    t_mem = device_bytes / basis.effective_bandwidth
    # one sequence: the cited or measured tg rate already includes its compute (no cap needed)
    t_compute = 2 * matmul_params(arch) * B / basis.flops if basis.flops else 0.0
    moe_layers = sum(arch.is_moe_layer(i) for i in range(arch.n_layers)) if arch.is_moe else 0
    t_fixed = arch.n_layers * basis.per_layer_seconds + moe_layers * basis.moe_layer_seconds
    t = max(t_mem, t_compute) + t_fixed + t_attn
    tps = B / t if t > 0 else 0.0
    bound = "memory" if t_mem >= t_compute else "compute"
    split = " (one device: layer split runs the devices in turn)" if hw.device_count > 1 else ""
    fixed = (f" + {arch.n_layers} layers × {basis.per_layer_seconds * 1e6:.0f} µs ({basis.per_layer_note})"
             if basis.per_layer_seconds else f" + no fixed time per layer ({basis.per_layer_note})")
    if moe_layers:
        fixed += (f" + {moe_layers} MoE layers × {basis.moe_layer_seconds * 1e6:.0f} µs ({basis.moe_note})"
                  if basis.moe_layer_seconds else f" + no time per MoE layer beyond its bytes ({basis.moe_note})")
    compute = (f"2 × {matmul_params(arch):,} × {B} FLOP / {basis.flops / 1e12:,.3f} TFLOP/s" if basis.flops
               else "no compute cap: one sequence, whose measured rate includes its compute")
    return tps, (f"{B} seq / (max({device_bytes:,.0f} B / ({basis.bandwidth / 1e9:,.1f} GB/s × "
                 f"{basis.efficiency:.3f}), {compute}){fixed}{attn_note if t_attn else ''}) = {tps:,.2f} tok/s "
                 f"({bound}-bound){'' if t_attn else attn_note}. Bandwidth: {basis.bandwidth / 1e9:,.1f} "
                 f"GB/s, {basis.bandwidth_note}{split}. Efficiency {basis.efficiency:.3f}: {basis.efficiency_note}. "
                 f"Compute: {basis.flops_note}")


def decode_tokens_per_s(arch: Architecture, hw: Hardware, wl: Workload, weights_bytes: int,
                        kv_bytes: int, gpu_fraction: float = 1.0, state_bytes: int = 0,
                        scheme: str = "") -> tuple[float | None, str]:
    """Aggregate decode tokens/s for `wl.batch` sequences at the full context (worst case); a hybrid's
    recurrent state (`state_bytes`) is read every step like the KV cache. `gpu_fraction` of the
    bytes are on the device, the rest in host RAM. None, with the reason, where it is withheld."""
    read, how = weights_read_per_token(arch, scheme, weights_bytes, wl.batch)
    per_step = read + kv_bytes + state_bytes   # KV and state already cover all B sequences
    on_dev = per_step * gpu_fraction
    tps, reason = decode_rate(arch, hw, wl, scheme, on_dev, per_step - on_dev)
    if tps is None:
        return None, reason
    state = f" + {state_bytes:,} B recurrent state" if state_bytes else ""
    return tps, (f"bytes per step: {read:,} B weights ({how}) + {kv_bytes:,} B KV{state}"
                 + (f", {gpu_fraction:.0%} on the device" if gpu_fraction < 1 else "") + f". {reason}")


def prefill_seconds(arch: Architecture, hw: Hardware, wl: Workload, scheme: str = "",
                    weights_bytes: int = 0) -> tuple[float | None, str]:
    """Seconds to process the prompt (`wl.prompt` tokens, default the whole context) of every sequence:
    the FLOP at the achieved FLOP/s, plus one pass over the weights per ubatch (each ubatch of up to
    n_ubatch tokens streams every weight it uses once; a MoE's ubatch touches the experts its tokens
    route to, expert_share). None, with the reason, where no prefill figure covers it."""
    P, B = wl.prompt, wl.batch
    basis = speed_basis(hw, wl.runtime, scheme)
    if basis is None:
        return None, speed_withheld(hw, wl.runtime)
    if basis.flops is None:
        return None, basis.flops_note
    M = matmul_params(arch)
    flop = (2 * M * P + 2 * arch.n_layers * P * P * arch.q_dim) * B
    tokens = P * B
    ubatches = -(-tokens // wl.n_ubatch)
    read, how = weights_read_per_token(arch, scheme, weights_bytes, min(tokens, wl.n_ubatch))
    t_read = ubatches * read / basis.effective_bandwidth
    # a MoE's routed experts: their matmuls at the rate the node measured for experts, where it did
    expert_flop = 2 * (arch.expert_params * arch.n_experts_per_tok // arch.n_experts) * P * B if arch.is_moe else 0
    ratio = basis.expert_prefill_ratio or 1.0
    secs = (flop - expert_flop) / basis.flops + expert_flop / (basis.flops * ratio) + t_read
    experts = ""
    if expert_flop:
        experts = (f", of which {expert_flop:,.0f} in routed experts at {ratio:.3f} × that rate ({basis.moe_note})"
                   if basis.expert_prefill_ratio else
                   f", routed experts' {expert_flop:,.0f} at the same rate ({basis.moe_note})")
    return secs, (f"(2 × {M:,} matmul params × {P:,} tokens + 2 × {arch.n_layers} layers × {P:,}² × "
                  f"{arch.q_dim}) × {B} seq = {flop:,.0f} FLOP / {basis.flops / 1e12:,.3f} TFLOP/s{experts} + "
                  f"{ubatches} ubatch(es) × {read:,} B weights ({how}) / ({basis.bandwidth / 1e9:,.1f} GB/s × "
                  f"{basis.efficiency:.3f}) = {secs:,.3f} s. Compute: {basis.flops_note}")
