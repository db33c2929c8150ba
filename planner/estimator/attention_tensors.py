"""The full-attention block's GGUF tensors, shared by plain decoder layers (architecture.py) and a
hybrid's attention layers (hybrid.py), so both name and size q/k/v and the QK-norms the same way.

Names and shapes as convert_hf_to_gguf.py writes them (ggml order, ne0 first): attn_q/k/v are
(hidden, out), the QK-norms (Qwen3, OLMo-2 ...) one vector of head_dim each.
"""

from __future__ import annotations

from typing import Callable

AddTensor = Callable[..., None]


def add_qkv_projections(add: AddTensor, p: str, hidden: int, q_out: int, kv_dim: int) -> None:
    """attn_q, attn_k, attn_v of block prefix `p`; q_out is q_dim, or more where q_proj also emits a gate."""
    add(p + "attn_q.weight", hidden, q_out)
    add(p + "attn_k.weight", hidden, kv_dim)
    add(p + "attn_v.weight", hidden, kv_dim)


def add_qk_norms(add: AddTensor, p: str, head_dim: int) -> None:
    """The per-head RMSNorm weights on q and k (`qk_norm` models)."""
    add(p + "attn_q_norm.weight", head_dim)
    add(p + "attn_k_norm.weight", head_dim)
