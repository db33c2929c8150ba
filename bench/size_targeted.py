"""Size-targeted GGUF mixes against llama.cpp's own Q3_K_M and Q4_K_M on the demo model — the
table in docs/benchmarks.md, "Size-targeted quants".

The reference is the demo Q4_1 GGUF dequantized to HF F16 and converted back to an F16 GGUF by
llama.cpp's converter (as bench/imatrix_table.py does): every file below is quantized from that
F16 and every KL is measured against it, with llama-perplexity --kl-divergence (llama.cpp's own
statistics). One importance matrix, from WikiText-2 *valid*, is used by every quantization.

1. Sensitivity, on WikiText-2 valid (--sens-chunks × --context), by the GGUF job's own
   size_target.measure_sensitivity: a base file has every group at its dearest type (q8_0,
   ffn_down q6_K); then each group alone goes to each cheaper type of its ladder and the mean-KLD
   increase over the base is that (group, type)'s error.
2. For each standard type, the budget is its file's size; jobs.methods.size_target chooses the mix
   of least summed error whose bytes fit it (one type per group), then spends what is left on
   single layers of the group with the best error saved per byte; llama-quantize makes that file
   with --tensor-type overrides (every group named, so none of llama.cpp's own choices remain),
   and its header is checked against the plan.
3. Both files are evaluated on WikiText-2 *test* (--eval-chunks × --context), same reference.

The demo's width 576 is not a multiple of 256, so k-quants and IQ types with 256-wide blocks only
fit ffn_down (its rows are 1536 wide); the other groups choose among 32-wide-block types. q4_1 is
not offered (see size_target.NARROW_TYPES): the reference came from a Q4_1, so q4_1 would
reproduce it almost exactly — an artifact of this demo, not something a real F16 would show.

    .venv/bin/python bench/size_targeted.py [--sens-chunks 8] [--eval-chunks 40] [--context 256]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "wikitext-2"
STANDARD = ("Q3_K_M", "Q4_K_M")


def header_types(path: Path) -> tuple[dict[str, str], int]:
    """Each grouped tensor's type as llama-quantize wrote it, and the file's bytes outside the
    groups (header, norms, alignment)."""
    from gguf import GGMLQuantizationType

    from formats.gguf_header import read_gguf_header_from_path
    from jobs.methods.size_target import group_of

    header = read_gguf_header_from_path(path)
    grouped = [t for t in header.tensors if group_of(t.name, tuple(t.shape))]
    types = {t.name: GGMLQuantizationType(t.ggml_type).name.lower() for t in grouped}
    return types, path.stat().st_size - sum(t.nbytes for t in grouped)


def summary(types: dict[str, str]) -> str:
    """"attn_v=q5_0 ×28 + q5_1 ×2, ..." from per-tensor types."""
    from collections import Counter

    from jobs.methods.size_target import group_of

    counts: dict[str, Counter] = {}
    for name, t in types.items():
        counts.setdefault(group_of(name, (2, 2)), Counter())[t] += 1
    return ", ".join(f"{g}=" + " + ".join(f"{t} ×{n}" for t, n in c.most_common())
                     for g, c in counts.items())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sens-chunks", type=int, default=8)
    parser.add_argument("--eval-chunks", type=int, default=40)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--imatrix-chunks", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from bench.imatrix_table import f16_gguf
    from formats.gguf_header import read_gguf_header_from_path
    from jobs.methods import imatrix as imatrix_tool
    from jobs.methods.size_target import (Tools, choose_types, fill_layers, measure_sensitivity,
                                          override_args, tensor_plan)

    valid, test = DATA / "valid.txt", DATA / "test.txt"
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        f16 = f16_gguf(tmp)
        tensors = [(t.name, tuple(t.shape)) for t in read_gguf_header_from_path(f16).tensors]
        matrix = tmp / "imatrix.gguf"
        imatrix_tool.make_imatrix(model=f16, text=valid, target=matrix, chunks=args.imatrix_chunks,
                                  context=args.context, threads=args.threads,
                                  progress=lambda done, total: None, log=lambda line: None)
        # The GGUF job's own measurement, with the F16 as source and reference.
        calibration = Tools(source=f16, matrix=matrix, text=valid, chunks=args.sens_chunks,
                            context=args.context, threads=args.threads, workdir=tmp / "probe",
                            requantize=False)
        base_kld, options = measure_sensitivity(calibration, tensors, lambda done: None)
        rows = [f"| {group} | " + "; ".join(f"{o.type}: {o.bytes / 1e6:.2f}, {o.error:+.5f}"
                                            for o in sorted(opts, key=lambda o: o.bytes)) + " |"
                for group, opts in options.items()]
        sensed = time.monotonic() - started

        held_out = Tools(source=f16, matrix=matrix, text=test, chunks=args.eval_chunks,
                         context=args.context, threads=args.threads, workdir=tmp, requantize=False)
        held_out.save_reference()
        results, recipes = [], []
        for ftype in STANDARD:
            standard = held_out.quantize(tmp / f"{ftype}.gguf", [], ftype)
            std_types, other = header_types(standard)
            budget = standard.stat().st_size - other
            choice = choose_types(options, budget)
            upgrades = fill_layers(options, choice, tensors, budget)
            targeted = held_out.quantize(tmp / f"{ftype}-targeted.gguf",
                                         override_args(choice.types, upgrades), ftype)
            got_types, _ = header_types(targeted)
            if got_types != {n: t.lower() for n, t in tensor_plan(tensors, choice.types,
                                                                  upgrades).items()}:
                raise RuntimeError(f"llama-quantize did not write the chosen types for {ftype}")
            std_kld, tgt_kld = held_out.mean_kld(standard), held_out.mean_kld(targeted)
            s_size, t_size = standard.stat().st_size, targeted.stat().st_size
            better = "targeted" if tgt_kld[0] < std_kld[0] else "standard"
            change = 100 * (t_size / s_size - 1)
            results.append(f"| {ftype} | {s_size:,} | {t_size:,} ({change:+.2f} %)"
                           f" | {std_kld[0]:.4f} ± {std_kld[1]:.4f} | {tgt_kld[0]:.4f} ± "
                           f"{tgt_kld[1]:.4f} | {better} |")
            predicted = choice.error + sum(u.error for u in upgrades)
            recipes.append(f"{ftype} standard: {summary(std_types)}")
            recipes.append(f"{ftype} targeted: {summary(got_types)} (predicted mean-KLD increase "
                           f"over the base {predicted:.5f})")
    print(f"reference: the demo Q4_1 dequantized to an F16 GGUF; imatrix: WikiText-2 valid, "
          f"{args.imatrix_chunks} chunks × {args.context}")
    print(f"\nsensitivity: WikiText-2 valid, {args.sens_chunks} chunks × {args.context}; base "
          f"(every group at its dearest type) mean KLD {base_kld:.5f}")
    print("| group | type: group MB, mean-KLD increase over the base |\n|---|---|")
    print("\n".join(rows))
    print(f"\nevaluation: WikiText-2 test, {args.eval_chunks} chunks × {args.context}, same "
          "reference")
    print("| type | standard bytes | targeted bytes | standard mean KLD | targeted mean KLD | "
          "winner |\n|---|---|---|---|---|---|")
    print("\n".join(results) + "\n\n" + "\n".join(recipes))
    load = os.getloadavg()
    print(f"\nsensitivity {sensed:.0f} s, total {time.monotonic() - started:.0f} s on "
          f"{os.cpu_count()} cores, load average at the end {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}")


if __name__ == "__main__":
    main()
