"""The feed-forward tensors most families share, in llama.cpp's names and ggml order (ne0 first):
a gated MLP (gate, up, down) and a MoE block's router and stacked routed experts."""

from __future__ import annotations

from typing import Callable


def add_gated_ffn(add: Callable[..., None], p: str, H: int, F: int, suffix: str = "") -> None:
    """A SwiGLU-style MLP of width F: ffn_gate/ffn_up (H → F) and ffn_down (F → H); suffix "_shexp"
    names a MoE block's shared expert."""
    add(p + f"ffn_gate{suffix}.weight", H, F)
    add(p + f"ffn_up{suffix}.weight", H, F)
    add(p + f"ffn_down{suffix}.weight", F, H)


def add_routed_experts(add: Callable[..., None], p: str, H: int, F: int, E: int, router_bias: bool = True) -> None:
    """The router (H → E), its per-expert score-correction bias where the model has one
    (e_score_correction_bias, written as exp_probs_b.bias), and E experts of width F stacked."""
    add(p + "ffn_gate_inp.weight", H, E)
    if router_bias:
        add(p + "exp_probs_b.bias", E)
    add(p + "ffn_gate_exps.weight", H, F, E)
    add(p + "ffn_up_exps.weight", H, F, E)
    add(p + "ffn_down_exps.weight", F, H, E)
