"""Ground truth for the newer hybrid decoders (Qwen3.5 dense and MoE, Bamba): tiny random-weight
models run through the real tools.

    python bench/hybrid_multimodal_ground_truth.py [--workdir DIR]

For each tiny config: transformers builds it (parameter count), convert_hf_to_gguf.py (vendored
with llama-cpp-python) writes an F16 GGUF (tensor names and ggml shapes read back with
gguf.GGUFReader), and llama-cpp-python loads it at n_ctx 4096 in a subprocess; its verbose log
gives "llama_kv_cache: size = … K (f16) …, V (f16) …" and "llama_memory_recurrent: size = …
R (f32) …, S (f32) …". Printed beside the estimator's numbers with ok/FAIL: parameters and tensor
names/shapes exact, KV and recurrent state within 1 %.

What the real files need and the tiny models do not have: Qwen3.5 checkpoints carry one MTP layer
(mtp.*) that transformers does not build, so the tiny models are converted with --no-mtp and the
estimator reads their config with mtp_num_hidden_layers 0. transformers 5.x saves a Qwen3.5-MoE
tokenizer through Qwen3_5Tokenizer, whose pre-tokenizer hash the converter does not know, so the
GPT-2 vocabulary of the demo model is declared as "smollm" (the tokenizer changes no tensor).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import run_in_workdir  # noqa: E402
from bench.hybrid_ground_truth import load_log, row  # noqa: E402
from bench.moe_mla_ground_truth import CONVERTER, MiB, N_CTX, save_tiny  # noqa: E402
from planner.estimator import Architecture, Workload  # noqa: E402
from planner.estimator.memory import kv_cache_bytes, recurrent_bytes  # noqa: E402

_DELTANET = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=64,
                 linear_conv_kernel_dim=4, linear_key_head_dim=32, linear_value_head_dim=32, linear_num_key_heads=2,
                 linear_num_value_heads=4)
TINY = {
    "qwen3.5": ("Qwen3_5TextConfig", "Qwen3_5ForCausalLM", dict(_DELTANET, intermediate_size=512)),
    "qwen3.5-moe": ("Qwen3_5MoeTextConfig", "Qwen3_5MoeForCausalLM", dict(
        _DELTANET, num_experts=8, num_experts_per_tok=2, moe_intermediate_size=64, shared_expert_intermediate_size=96)),
    "bamba": ("BambaConfig", "BambaForCausalLM", dict(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, intermediate_size=512,
        attn_layer_indices=[2], mamba_n_heads=8, mamba_d_head=64, mamba_d_state=32, mamba_d_conv=4, mamba_expand=2,
        mamba_n_groups=1)),
}
NO_MTP = {"qwen3.5", "qwen3.5-moe"}
CONVERT = """
import runpy, sys
sys.path.insert(0, sys.argv[1])
sys.argv = [sys.argv[1] + "/convert_hf_to_gguf.py"] + sys.argv[2:]
from conversion import base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "smollm"
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def convert(name: str, folder: Path, out: Path) -> None:
    extra = ["--no-mtp"] if name in NO_MTP else []
    done = subprocess.run([sys.executable, "-c", CONVERT, str(CONVERTER.parent), str(folder), "--outtype", "f16",
                           "--outfile", str(out), *extra], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"convert_hf_to_gguf.py failed for {name}:\n{done.stderr[-3000:]}")


def main(work: Path) -> None:
    from gguf import GGUFReader

    failures = 0
    print(f"{'model':11} {'what':28} {'estimate':>16} {'measured':>16}")
    for name, (config_class, architecture, fields) in TINY.items():
        folder = work / name
        model = save_tiny(config_class, architecture, fields, folder)
        hf_total = sum(t.numel() for t in model.state_dict().values())
        f16 = work / f"{name}-f16.gguf"
        convert(name, folder, f16)
        cfg = json.loads((folder / "config.json").read_text())
        if name in NO_MTP:
            cfg["mtp_num_hidden_layers"] = 0
        arch = Architecture.from_config(cfg)
        checks = [row(name, "params (transformers)", arch.total_params, hf_total, 0)]
        real = {(t.name, tuple(int(d) for d in t.shape)) for t in GGUFReader(f16).tensors}
        mine = {(n, s) for n, s, _ in arch.tensors()}
        same = real == mine
        print(f"{name:11} {'tensor names/shapes':28} {len(mine):>16,} {len(real):>16,} {'':4} {'ok' if same else 'FAIL'}")
        for n, s in sorted(real ^ mine):
            print(f"{'':11}   {'file' if (n, s) in real else 'estimator'} only: {n} {s}")
        checks.append(same)
        log = load_log(f16)
        wl = Workload(runtime="llama.cpp", context=N_CTX)
        checks.append(row(name, f"KV @ {N_CTX} ({arch.kv_layers} attn layers)", kv_cache_bytes(arch, wl)[0] / MiB,
                          log["kv"], 0.01, "MiB"))
        checks.append(row(name, "R + S (f32)", recurrent_bytes(arch, wl)[0] / MiB, log["r"] + log["s"], 0.01, "MiB"))
        failures += checks.count(False)
    print(f"{failures} FAIL" if failures else "all ok")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    run_in_workdir(main, __doc__)
