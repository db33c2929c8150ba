"""Gemma 4 text (gemma4_text): the estimator against transformers, convert_hf_to_gguf.py and llama.cpp.

Two tiny random-weight Gemma4ForCausalLM models, built with transformers 5.23 and the demo tokenizer:
"ple" (per-layer embeddings, 4 KV-shared layers, double-wide MLP on them, full layers with their own
head size) and "moe" (26B-A4B-like: MoE block beside the dense MLP, attention_k_eq_v with one global KV
head). Each is converted to F16 GGUF (Gemma4Model.set_vocab replaced by the GPT-2 BPE vocab, as the
demo tokenizer is not a Llama one) and loaded by llama-cpp-python at n_ctx 4096; printed: parameter
totals (safetensors = estimator), the GGUF tensor list (names and ggml shapes) and the KV cache MiB
from llama.cpp's log. Run: .venv/bin/python bench/gemma4_ground_truth.py [--workdir DIR]
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import run_in_workdir  # noqa: E402
from bench.moe_mla_ground_truth import CONVERTER, MiB, N_CTX, save_tiny  # noqa: E402

S, F = "sliding_attention", "full_attention"
VOCAB = 49152   # the demo tokenizer; llama.cpp wants vocab_size_per_layer_input == n_vocab
TINY = {
    "ple": dict(hidden_size=64, num_hidden_layers=8, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                global_head_dim=32, intermediate_size=96, layer_types=[S, S, S, F, S, S, S, F], num_kv_shared_layers=4,
                hidden_size_per_layer_input=16, vocab_size_per_layer_input=VOCAB, use_double_wide_mlp=True,
                sliding_window=64, tie_word_embeddings=True),
    "moe": dict(hidden_size=64, num_hidden_layers=6, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                global_head_dim=32, num_global_key_value_heads=1, attention_k_eq_v=True, intermediate_size=96,
                enable_moe_block=True, num_experts=4, top_k_experts=2, moe_intermediate_size=32,
                hidden_size_per_layer_input=0, sliding_window=64, tie_word_embeddings=True),
}
CONVERT = """
import runpy, sys
sys.path.insert(0, sys.argv[1])
sys.argv = [sys.argv[1] + "/convert_hf_to_gguf.py"] + sys.argv[2:]
from conversion import gemma
gemma.Gemma4Model.set_vocab = lambda self: self._set_vocab_gpt2()
runpy.run_path(sys.argv[0], run_name="__main__")
"""
LOAD = """
import sys, llama_cpp
llama_cpp.llama_backend_init()
mp = llama_cpp.llama_model_default_params(); mp.n_gpu_layers = 0; mp.use_extra_bufts = False
model = llama_cpp.llama_model_load_from_file(sys.argv[1].encode(), mp)
cp = llama_cpp.llama_context_default_params()
cp.n_ctx, cp.n_batch, cp.n_ubatch = int(sys.argv[2]), 512, 512
assert llama_cpp.llama_init_from_model(model, cp)
"""


def main(work: Path) -> None:
    import json

    from gguf import GGUFReader

    from planner.estimator import Architecture
    from planner.estimator.memory import kv_cache_bytes
    from planner.estimator.workload import Workload

    ok = True
    for name, fields in TINY.items():
        folder = work / name
        model = save_tiny("Gemma4TextConfig", "Gemma4ForCausalLM", fields, folder)
        hf_total = sum(t.numel() for n, t in model.state_dict().items() if n != "lm_head.weight")
        arch = Architecture.from_config(json.loads((folder / "config.json").read_text()))
        out = work / f"{name}.gguf"
        done = subprocess.run([sys.executable, "-c", CONVERT, str(CONVERTER.parent), str(folder), "--outtype", "f16",
                               "--outfile", str(out)], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(done.stderr[-3000:])
        real = {t.name: tuple(int(x) for x in t.shape) for t in GGUFReader(out).tensors}
        est = {n: s for n, s, _ in arch.tensors()}
        same = real == est
        ok &= same and arch.total_params == hf_total
        print(f"{name}: params estimator {arch.total_params:,} transformers {hf_total:,}; "
              f"GGUF tensors {len(est)} vs {len(real)} {'ok' if same else 'FAIL'}")
        if not same:
            print("  only estimator:", sorted(set(est.items()) - set(real.items())))
            print("  only file:", sorted(set(real.items()) - set(est.items())))
        log = subprocess.run([sys.executable, "-c", LOAD, str(out), str(N_CTX)], capture_output=True, text=True)
        sizes = re.findall(r"llama_kv_cache: size = +([\d.]+) MiB", log.stderr + log.stdout)
        meas = sum(float(s) for s in sizes)
        kv, _ = kv_cache_bytes(arch, Workload(runtime="llama.cpp", context=N_CTX))
        good = abs(kv / MiB - meas) <= 0.01 * meas
        ok &= good
        print(f"{name}: KV at n_ctx {N_CTX}: estimator {kv / MiB:.2f} MiB, llama.cpp {meas:.2f} MiB "
              f"({' + '.join(sizes)}) {'ok' if good else 'FAIL'}")
    print("all ok" if ok else "FAIL")


if __name__ == "__main__":
    run_in_workdir(main, __doc__)
