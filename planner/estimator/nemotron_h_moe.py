"""Nemotron-H with MoE layers (NVIDIA Nemotron 3 Nano / Super): the "E" / "moe" blocks of a
Nemotron-H layer pattern, beside its Mamba-2 ("M"), attention ("*") and relu² MLP ("-") blocks,
which hybrid.py lays out.

transformers 5.23 (modeling_nemotron_h.py NemotronHMoE): a router (NemotronHTopkRouter: weight
E × hidden and the persistent buffer e_score_correction_bias, E), E routed experts without a gate
(NemotronHExperts: up_proj E × F × d, down_proj E × d × F, relu²), one shared relu² MLP of
moe_shared_expert_intermediate_size (n_shared_experts is not read), and, with moe_latent_size, the
experts work at d = moe_latent_size between fc1_latent_proj (hidden → d) and fc2_latent_proj (d →
hidden); else d = hidden_size. Nothing of it has a bias unless mlp_bias.

llama.cpp: convert_hf_to_gguf.py (conversion/nemotron.py NemotronHModel) writes the architecture
nemotron_h_moe when config.json holds num_experts_per_tok, and feed_forward_length is
moe_intermediate_size on the "moe" layers and 0 on every other, "mlp" layers included; llama.cpp
then takes an "mlp" layer (no KV heads, n_ff 0) for a Mamba-2 layer, so a pattern that mixes "mlp"
with "moe" layers does not load (measured, see GGUF_MLP_WITH_MOE).
"""

from __future__ import annotations

from typing import Any, Callable

from .errors import EstimatorError
from .fields import _int

# measured with bench/llama_cpp_ground_truth.py --only nemotron_h-moe-mlp (llama-cpp-python 0.3.36)
GGUF_MLP_WITH_MOE = ("llama.cpp cannot load a Nemotron-H whose pattern mixes MLP ('-' / 'mlp') and MoE ('E' / "
                     "'moe') layers: the converter writes it as nemotron_h_moe with feed_forward_length 0 on the "
                     "MLP layers, which llama-cpp-python 0.3.36 then reads as Mamba-2 layers (\"check_tensor_dims: "
                     "tensor 'blk.3.ssm_in.weight' not found\" on a converted tiny model), so its GGUF rows are not "
                     "planned")


def nemotron_h_moe_fields(cfg: dict) -> dict[str, Any]:
    """The MoE fields of a Nemotron-H config with "moe" layers, read as NemotronHConfig reads them
    (class defaults: 8 experts, 2 per token, widths 7688, no latent projection; num_local_experts
    is its attribute_map name for n_routed_experts)."""
    key = "n_routed_experts" if cfg.get("n_routed_experts") is not None else "num_local_experts"
    n_experts = _int(cfg, key, 8)
    if n_experts < 2:
        raise EstimatorError(key, "must be at least 2 for Nemotron-H MoE layers")
    per_tok = _int(cfg, "num_experts_per_tok", 2)
    if per_tok > n_experts:
        raise EstimatorError("num_experts_per_tok", f"{per_tok} > number of experts {n_experts}")
    latent = cfg.get("moe_latent_size")
    return {
        "arch": "nemotron_h_moe",
        "n_experts": n_experts,
        "n_experts_per_tok": per_tok,
        "moe_intermediate_size": _int(cfg, "moe_intermediate_size", 7688),
        "shared_expert_intermediate_size": _int(cfg, "moe_shared_expert_intermediate_size", 7688),
        # the router's e_score_correction_bias: a persistent buffer, in the checkpoint and the GGUF
        "expert_bias": True,
        "moe_latent": 0 if latent is None else _int(cfg, "moe_latent_size"),
    }


def nemotron_h_moe_ffn(arch: Any, add: Callable[..., None], p: str) -> None:
    """One "moe" block's tensors in llama.cpp's names and ggml order (ne0 first): router, its
    score-correction bias, the ungated experts (at the latent width where there is one), the
    latent projections, the shared expert."""
    H, E, F, S = arch.hidden_size, arch.n_experts, arch.moe_intermediate_size, arch.shared_expert_intermediate_size
    d = arch.hybrid.moe_latent or H
    add(p + "ffn_gate_inp.weight", H, E)
    add(p + "exp_probs_b.bias", E)
    add(p + "ffn_up_exps.weight", d, F, E)
    add(p + "ffn_down_exps.weight", F, d, E)
    if arch.hybrid.moe_latent:
        add(p + "ffn_latent_down.weight", H, d)
        add(p + "ffn_latent_up.weight", d, H)
    add(p + "ffn_up_shexp.weight", H, S)
    add(p + "ffn_down_shexp.weight", S, H)
