"""Ground truth for the planner's SmolLM3 and MiniMax-M2 modelling: tiny random-weight models run
through the real tools.

    python bench/smollm3_minimax_ground_truth.py [--workdir DIR] [--only NAME ...] [--show]

For each tiny config: transformers builds it (parameters and persistent buffers, what the
checkpoint stores: MiniMax-M2's router e_score_correction_bias is a buffer), convert_hf_to_gguf.py
(vendored with llama-cpp-python; conversion/llama.py SmolLM3Model -> "smollm3",
conversion/minimax.py MiniMaxM2Model -> "minimax-m2") writes an F16 GGUF (tensor names and ggml
shapes), and llama-cpp-python loads it at n_ctx 4096 in a subprocess (the "llama_kv_cache: size =
… K (f16): …, V (f16): …" log line). Printed beside the estimator's numbers with ok/FAIL:
parameters and tensor names/shapes exact, KV within 1 %.

SmolLM3 skips RoPE on every fourth layer (no_rope_layers), which changes no tensor; its sliding
window (use_sliding_window, on the NoPE layers) is not read by llama.cpp's smollm3, so the cache
is full on every layer, which the second SmolLM3 model checks. The tokenizer is the demo model's
(SmolLM2, vocabulary 49,152), so SmolLM3's pad_token_id (128004) is cleared. Takes about a
minute on two cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.moe_decoders_ground_truth import kv_log, row  # noqa: E402
from bench.moe_mla_ground_truth import CONVERTER, MiB, N_CTX, save_tiny  # noqa: E402
from planner.estimator import Architecture, Workload  # noqa: E402
from planner.estimator.memory import kv_cache_bytes  # noqa: E402

_SMOL = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
             num_key_value_heads=2, tie_word_embeddings=True, pad_token_id=None)
TINY = {
    "smollm3": ("SmolLM3Config", "SmolLM3ForCausalLM", dict(_SMOL)),
    "smollm3-swa": ("SmolLM3Config", "SmolLM3ForCausalLM", dict(
        _SMOL, tie_word_embeddings=False, use_sliding_window=True, sliding_window=512)),
    "minimax-m2": ("MiniMaxM2Config", "MiniMaxM2ForCausalLM", dict(
        hidden_size=256, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
        head_dim=64, num_local_experts=8, num_experts_per_tok=2, rotary_dim=32)),
}


def build(name: str, work: Path) -> tuple[Path, int]:
    folder = work / name
    model = save_tiny(*TINY[name], folder)
    total = sum(t.numel() for t in model.state_dict().values())
    if model.config.tie_word_embeddings:
        total -= model.lm_head.weight.numel()
    return folder, total


def convert(name: str, folder: Path, out: Path) -> None:
    done = subprocess.run([sys.executable, str(CONVERTER), str(folder), "--outtype", "f16", "--outfile", str(out)],
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"convert_hf_to_gguf.py failed for {name}:\n{done.stderr[-3000:]}")


def main() -> None:
    from gguf import GGUFReader

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--only", nargs="*", choices=sorted(TINY), default=None)
    parser.add_argument("--show", action="store_true", help="print the converted tensors and the KV log line")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="smollm3-minimax-"))
    failures = 0
    print(f"{'model':12} {'what':24} {'estimate':>16} {'measured':>16}")
    for name in args.only or TINY:
        folder, hf_total = build(name, work)
        f16 = work / f"{name}-f16.gguf"
        convert(name, folder, f16)
        arch = Architecture.from_config(json.loads((folder / "config.json").read_text()))
        real = {(t.name, tuple(int(d) for d in t.shape)) for t in GGUFReader(f16).tensors}
        kv_mib, kv_txt = kv_log(f16)
        if args.show:
            for t in sorted(real):
                print("   ", t)
        mine = {(n, s) for n, s, _ in arch.tensors()}
        checks = [row(name, "params (transformers)", arch.total_params, hf_total, 0)]
        same = mine == real
        print(f"{name:12} {'tensor names/shapes':24} {len(mine):>16,} {len(real):>16,} {'ok' if same else 'FAIL'}")
        if not same:
            print("    only estimator:", sorted(mine - real)[:8])
            print("    only GGUF:     ", sorted(real - mine)[:8])
        checks.append(same)
        est_kv = kv_cache_bytes(arch, Workload(runtime="llama.cpp", context=N_CTX))[0] / MiB
        if kv_mib >= 0:
            checks.append(row(name, f"KV MiB @ {N_CTX}", est_kv, kv_mib, 0.01))
        else:
            checks.append(False)
        print(f"{'':12} llama.cpp: {kv_txt}")
        failures += checks.count(False)
    print(f"{failures} FAIL" if failures else "all ok")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
