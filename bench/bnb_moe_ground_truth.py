"""Ground truth for bitsandbytes on a MoE model: which tensors transformers quantizes, and the bytes.

    python bench/bnb_moe_ground_truth.py [--workdir DIR]

A tiny random-weight Qwen3-MoE (2 layers, 8 experts) is saved in BF16 and loaded back with
BitsAndBytesConfig (NF4, NF4 + double quant, LLM.int8) on the CPU. transformers 5 fuses each
layer's experts into 3-D Parameters and replaces only `nn.Linear` modules, so the experts and
the router stay BF16; the script prints each layer-0 tensor's storage and the summed bytes of
parameters, quant-state absmax (+ nested absmax) and SCB, beside the estimator's weights.
The difference is the rotary `inv_freq` buffers (2 × 32 fp32 = 256 B), which are not weights.
tests/planner/test_schemes.py pins the measured totals. Takes about 20 s on two cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import run_in_workdir  # noqa: E402
from planner.estimator import Architecture  # noqa: E402
from planner.estimator.schemes import parse_scheme, weights_bytes_and_formula  # noqa: E402

CONFIG = dict(model_type="qwen3_moe", hidden_size=256, intermediate_size=512, moe_intermediate_size=128,
              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=64, num_experts=8,
              num_experts_per_tok=2, vocab_size=1024, max_position_embeddings=512, tie_word_embeddings=False)


def stored_bytes(model) -> int:
    total = 0
    for p in model.parameters():
        total += p.numel() * p.element_size()
        state = getattr(p, "quant_state", None)
        if state is not None:
            total += state.absmax.numel() * state.absmax.element_size()
            if state.state2 is not None:
                total += state.state2.absmax.numel() * state.state2.absmax.element_size()
        scb = getattr(p, "SCB", None)
        if scb is not None:
            total += scb.numel() * scb.element_size()
    return total + sum(b.numel() * b.element_size() for b in model.buffers())


def main(work: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig

    fields = dict(CONFIG)
    config = AutoConfig.for_model(fields.pop("model_type"), **fields)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).to(torch.bfloat16).save_pretrained(work / "tiny")
    arch = Architecture.from_config(CONFIG)
    quant = {"NF4": dict(load_in_4bit=True, bnb_4bit_quant_type="nf4"),
             "NF4-DQ": dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True),
             "INT8": dict(load_in_8bit=True)}
    for name, kwargs in quant.items():
        model = AutoModelForCausalLM.from_pretrained(
            work / "tiny", device_map="cpu", dtype=torch.bfloat16,
            quantization_config=BitsAndBytesConfig(bnb_4bit_compute_dtype=torch.bfloat16, **kwargs))
        if name == "NF4":
            for n, p in model.named_parameters():
                if ".layers.0." in n:
                    print(f"  {n:48} {str(tuple(p.shape)):18} {p.dtype} {type(p).__name__}")
        measured = stored_bytes(model)
        ours = weights_bytes_and_formula(arch, parse_scheme(name))[0]
        print(f"{name:7} measured {measured:>10,} B   estimator {ours:>10,} B   difference {measured - ours:,} B")


if __name__ == "__main__":
    run_in_workdir(main, __doc__)
