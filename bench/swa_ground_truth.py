"""Ground truth for the planner's sliding-window KV modelling (Gemma 3, gpt-oss): tiny
random-weight models converted with the vendored convert_hf_to_gguf.py and loaded by
llama-cpp-python with swa_full on and off.

    python bench/swa_ground_truth.py [--workdir DIR]

Prints llama.cpp's "llama_kv_cache: size = … (N cells, L layers, …)" lines for the non-SWA and
the SWA cache beside the estimator's bytes, plus transformers' parameter count beside the
estimator's. Same recipe as bench/moe_mla_ground_truth.py (whose helpers it reuses).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import moe_mla_ground_truth as base  # noqa: E402
from planner.estimator import Architecture, Workload  # noqa: E402
from planner.estimator.memory import kv_cache_bytes  # noqa: E402

N_CTX = base.N_CTX
TINY = {
    "gemma-3": ("Gemma3TextConfig", "Gemma3ForCausalLM", dict(
        hidden_size=256, intermediate_size=512, num_hidden_layers=6, num_attention_heads=4,
        num_key_value_heads=2, head_dim=64, sliding_window=300)),
    "gpt-oss": ("GptOssConfig", "GptOssForCausalLM", dict(
        hidden_size=256, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=64, num_local_experts=4, num_experts_per_tok=2,
        sliding_window=128)),
}

LOAD = """
import sys, llama_cpp
llama_cpp.Llama(model_path=sys.argv[1], n_ctx=int(sys.argv[2]), n_gpu_layers=0, verbose=True,
                swa_full=sys.argv[3] == "1")
"""


def kv_lines(path: Path, swa_full: bool) -> list[tuple[float, int, int]]:
    out = subprocess.run([sys.executable, "-c", LOAD, str(path), str(N_CTX), "1" if swa_full else "0"],
                         capture_output=True, text=True)
    found = re.findall(r"llama_kv_cache: size = +([\d.]+) MiB \( *(\d+) cells, +(\d+) layers", out.stderr + out.stdout)
    if not found:
        raise RuntimeError(f"no KV size in the llama.cpp log of {path}:\n{out.stderr[-3000:]}")
    return [(float(m), int(c), int(layer)) for m, c, layer in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="swa-"))
    base.TINY.update(TINY)
    for name in TINY:
        folder, hf_total = base.build(name, work)
        out = work / f"{name}.gguf"
        subprocess.run([sys.executable, str(base.CONVERTER), str(folder), "--outtype", "f16", "--outfile", str(out)],
                       check=True, capture_output=True)
        cfg = json.loads((folder / "config.json").read_text())
        arch = Architecture.from_config(cfg)
        print(f"{name}: params estimate {arch.total_params:,} transformers {hf_total:,} "
              f"{'ok' if arch.total_params == hf_total else 'DIFF'}; layer_types {cfg.get('layer_types')}")
        for swa_full in (True, False):
            lines = kv_lines(out, swa_full)
            total = sum(m for m, _, _ in lines)
            est = kv_cache_bytes(arch, Workload(context=N_CTX, swa_full=swa_full))[0] / base.MiB
            print(f"  swa_full={swa_full}: llama.cpp {lines} total {total} MiB; estimate {est:.4f} MiB "
                  f"{'ok' if abs(est - total) < 0.005 else 'DIFF'}")


if __name__ == "__main__":
    main()
