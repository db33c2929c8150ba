"""Speed: decode tokens/s (memory-bandwidth roofline capped by compute) and prefill seconds.

Decode is memory-bound at small batch: each step streams every active weight byte once and
each sequence's KV cache once (Pope et al. 2022, "Efficiently Scaling Transformer Inference",
§2; the usual llama.cpp rule tok/s ≈ bandwidth / model size). A step of batch B therefore takes
    t_mem = (W_active + B × KV_seq) / (bandwidth × efficiency)
and at least t_compute = 2 × active_params × B / (FLOPS × efficiency); aggregate tok/s = B / max.
Layers offloaded to system RAM are streamed at RAM bandwidth instead. A fixed per-layer step
time (PER_LAYER_STEP_SECONDS) is added, which matters only for tiny models.
Prefill: 2 × active_params FLOPs per prompt token (Kaplan et al. 2020, §2.1) plus causal
attention 2 × n_layers × P² × (n_heads × head_dim), at the compute efficiency.
"""

from __future__ import annotations

from .architecture import Architecture
from .hardware import Hardware
from .workload import Workload

# Fraction of peak bandwidth reached in decode (llama.cpp on GPUs/Apple typically 60-80 %).
BANDWIDTH_EFFICIENCY = {"gpu": 0.7, "apple": 0.65, "phone": 0.5, "cpu": 0.6}
COMPUTE_EFFICIENCY = 0.4
# transformers' eager Python generate loop adds per-token overhead at small batch.
RUNTIME_FACTOR = {"llama.cpp": 1.0, "vllm": 1.0, "transformers": 0.6}
# Fixed time per layer per decode step (kernel launches / graph walk / Python), which caps tiny
# models: e.g. SmolLM2-135M (30 layers) on a 4090 cannot exceed ~1/(30 × 10 µs) ≈ 3,300 tok/s.
# Rough values: llama.cpp ~10 µs/layer, vLLM with CUDA graphs ~5 µs, transformers eager ~80 µs.
PER_LAYER_STEP_SECONDS = {"llama.cpp": 10e-6, "vllm": 5e-6, "transformers": 80e-6}


def decode_tokens_per_s(arch: Architecture, hw: Hardware, wl: Workload, weights_bytes: int,
                        kv_bytes: int, gpu_fraction: float = 1.0, state_bytes: int = 0) -> tuple[float, str]:
    """Aggregate decode tokens/s for `wl.batch` sequences at the full context (worst case); a hybrid's
    recurrent state (`state_bytes`) is read every step like the KV cache."""
    B = wl.batch
    active_w = weights_bytes * arch.active_params / arch.total_params
    eff = BANDWIDTH_EFFICIENCY[hw.kind] * RUNTIME_FACTOR[wl.runtime]
    bw = hw.total_bandwidth * eff
    ram_bw = (hw.ram_bandwidth or hw.bandwidth_bytes_per_s) * BANDWIDTH_EFFICIENCY["cpu"]
    per_step_bytes = active_w + kv_bytes + state_bytes  # both already cover all B sequences
    on_dev = per_step_bytes * gpu_fraction
    off_dev = per_step_bytes - on_dev
    t_mem = on_dev / bw + (off_dev / ram_bw if off_dev else 0.0)
    flops = 2 * arch.active_params * B
    t_compute = flops / (hw.total_flops * COMPUTE_EFFICIENCY)
    t_fixed = arch.n_layers * PER_LAYER_STEP_SECONDS[wl.runtime]
    t = max(t_mem, t_compute) + t_fixed
    tps = B / t if t > 0 else 0.0
    bound = "memory" if t_mem >= t_compute else "compute"
    offload = f" ({gpu_fraction:.0%} on device, rest at RAM {ram_bw / 1e9:.0f} GB/s)" if gpu_fraction < 1 else ""
    state = f" + {state_bytes:,} B recurrent state" if state_bytes else ""
    return tps, (f"{B} seq / max(({active_w:,.0f} B active weights + {kv_bytes:,} B KV{state}) / "
                 f"({hw.total_bandwidth / 1e9:,.0f} GB/s × {eff:.2f}){offload}, "
                 f"2 × {arch.active_params:,} × {B} FLOP / ({hw.total_flops / 1e12:,.0f} TFLOPS × {COMPUTE_EFFICIENCY})) "
                 f"+ {arch.n_layers} layers × {PER_LAYER_STEP_SECONDS[wl.runtime] * 1e6:.0f} µs "
                 f"= {tps:,.1f} tok/s ({bound}-bound)")


def prefill_seconds(arch: Architecture, hw: Hardware, wl: Workload) -> tuple[float, str]:
    """Seconds to process the prompt (`wl.prompt` tokens, default the whole context) for each sequence."""
    P, B = wl.prompt, wl.batch
    linear = 2 * arch.active_params * P * B
    attention = 2 * arch.n_layers * P * P * arch.q_dim * B
    secs = (linear + attention) / (hw.total_flops * COMPUTE_EFFICIENCY)
    return secs, (f"(2 × {arch.active_params:,} × {P:,} tokens + 2 × {arch.n_layers} layers × {P:,}² × "
                  f"{arch.q_dim}) × {B} seq / ({hw.total_flops / 1e12:,.1f} TFLOPS × {COMPUTE_EFFICIENCY}) = {secs:,.3f} s")
