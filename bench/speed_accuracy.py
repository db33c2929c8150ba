"""The planner's decode and prefill estimates against llama-cpp-python on this machine.

    python bench/speed_accuracy.py [--workdir DIR] [--threads 2] [--busy-ok] [--no-record]
    python bench/speed_accuracy.py --depth-table [--workdir DIR]

1. Measures this node as a worker does (jobs/node_bench.py: bandwidth + llama-bench pp/tg per scheme
   on a small random-weight Llama, its tg at depths 0 and 512, and a small random-weight MoE in
   llama.cpp's llama architecture with Mixtral's expert tensors): that measurement is the ONLY
   calibration; the models checked below are never measured for it.
2. Runs, through llama-cpp-python with the same threads, the demo model (SmolLM2-135M Q4_1), a
   ~1.5 B random-weight Llama (Q4_K_M) and a ~0.7 B random-weight Qwen3-MoE (Q4_K_M, 32 experts,
   top 4): prefill of PROMPT random tokens from an empty cache, then GEN single-token decode steps
   (no sampling: llama_decode alone, as llama-bench's tg), REPEATS times, the best run (as the
   calibration uses llama-bench's best repetition). Flash attention off, as the runtime serves; the
   estimate's decode is at the workload's full context, PROMPT + GEN, so it includes the measured
   attention term at that depth (planner/estimator/speed_depth.py).
3. Prints estimate vs measured with the ratio (target: within 20 %) and records the rows in
   planner/speed_accuracy.json, which the planner shows beside its speeds.

--depth-table prints what a decode step costs after 0 and 512 tokens of context for those models,
the node measurement's file and two 8-layer F16 Llamas that differ only in KV heads (16 and 2), with
flash attention off and on, in CPU seconds of this process at one thread (best of interleaved
rounds: on a shared machine wall time varies ×2 while one thread's CPU time hardly does), per layer
× context token and per layer × query head × head_dim × token: the table behind the unit of the
planner's attention term (docs/benchmarks.md, "Decode at context depth").

The random-weight models are written directly as F16 GGUF with llama.cpp's gguf-py (shapes are all
that matter for speed), then quantized with llama-quantize; the estimate's Architecture is read from
the same file's metadata. The machine must be quiet: a 1-minute load average above 0.5 per core
before the run refuses it (--busy-ok runs it anyway and records it as NOT quiet); other processes
taking over 0.25 cores during the run (/proc/stat less this process's own CPU) flag it NOT quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantdash.settings")

import django  # noqa: E402

django.setup()

from catalog.services import demo_model_path  # noqa: E402
from formats.gguf_header import read_gguf_header_from_path  # noqa: E402
from jobs import llama_tools, node_bench  # noqa: E402
from planner.estimator import Architecture, Hardware, Workload, estimate  # noqa: E402
from planner.estimator.calibration import node_calibration  # noqa: E402
from planner.speed_accuracy import SPEED_ACCURACY_PATH  # noqa: E402

PROMPT, GEN, REPEATS = 256, 32, 3
TARGET = 0.20
LLAMA_1B5 = {"hidden": 2048, "layers": 22, "heads": 32, "kv_heads": 8, "ffn": 8192}
MOE = {"hidden": 1024, "layers": 12, "heads": 16, "kv_heads": 4, "head_dim": 64, "experts": 32, "top_k": 4,
       "expert_ffn": 512}


def moe_file(path: Path, tok: Path) -> None:
    m = MOE
    H, E, F, hd = m["hidden"], m["experts"], m["expert_ffn"], m["head_dim"]
    q, kv = m["heads"] * hd, m["kv_heads"] * hd
    vocab = node_bench.vocab_size(tok)
    tensors = [("token_embd.weight", (vocab, H)), ("output_norm.weight", (H,)), ("output.weight", (vocab, H))]
    for i in range(m["layers"]):
        p = f"blk.{i}."
        tensors += [(p + "attn_norm.weight", (H,)), (p + "attn_q.weight", (q, H)), (p + "attn_k.weight", (kv, H)),
                    (p + "attn_v.weight", (kv, H)), (p + "attn_output.weight", (H, q)),
                    (p + "attn_q_norm.weight", (hd,)), (p + "attn_k_norm.weight", (hd,)),
                    (p + "ffn_norm.weight", (H,)), (p + "ffn_gate_inp.weight", (E, H)),
                    (p + "ffn_gate_exps.weight", (E, F, H)), (p + "ffn_up_exps.weight", (E, F, H)),
                    (p + "ffn_down_exps.weight", (E, H, F))]
    meta = {"block_count": m["layers"], "context_length": 4096, "embedding_length": H, "feed_forward_length": F,
            "attention.head_count": m["heads"], "attention.head_count_kv": m["kv_heads"], "attention.key_length": hd,
            "attention.value_length": hd, "attention.layer_norm_rms_epsilon": 1e-6, "rope.freq_base": 1e6,
            "expert_count": E, "expert_used_count": m["top_k"], "expert_feed_forward_length": F}
    node_bench.write_random_gguf(path, arch="qwen3moe", metadata=meta, tensors=tensors, tokenizer_gguf=tok)


def llama_file(path: Path, tok: Path) -> None:
    s = LLAMA_1B5
    node_bench.write_random_gguf(path, arch="llama", metadata=node_bench.llama_metadata(**s, context=4096),
                                 tensors=node_bench.llama_tensors(**s, vocab=node_bench.vocab_size(tok), tied=False),
                                 tokenizer_gguf=tok)


def planner_architecture(path: Path, name: str) -> Architecture:
    """The planner's Architecture from the file's own header (vocabulary size and tensor names included)."""
    header = read_gguf_header_from_path(path)
    meta = {**header.metadata, "tokenizer.ggml.tokens_count": header.array_lengths["tokenizer.ggml.tokens"],
            "tensor_names": [t.name for t in header.tensors]}
    return Architecture.from_gguf_metadata(meta, name=name)


def build(work: Path, name: str, writer, scheme: str, threads: int) -> Path:
    f16, out = work / f"{name}-F16.gguf", work / f"{name}-{scheme}.gguf"
    if not out.exists():
        if not f16.exists():
            writer(f16, demo_model_path())
        llama_tools.run("llama-quantize", [str(f16), str(out), scheme, str(threads)])
        f16.unlink()
    return out


def measure(path: Path, threads: int) -> dict:
    """Median prefill seconds (PROMPT tokens) and decode tok/s (GEN steps) with llama-cpp-python."""
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=PROMPT + GEN + 16, n_batch=512, n_ubatch=512, n_threads=threads,
                n_threads_batch=threads, n_gpu_layers=0, flash_attn=False, verbose=False)
    rng = np.random.default_rng(1)
    n_vocab = llm.n_vocab()
    llm.eval([int(t) for t in rng.integers(100, n_vocab, 8)])   # warm-up: the first call repacks weights
    prefill, decode = [], []
    for _ in range(REPEATS):
        prompt = [int(t) for t in rng.integers(100, n_vocab, PROMPT)]
        llm.reset()
        start = time.perf_counter()
        llm.eval(prompt)
        prefill.append(time.perf_counter() - start)
        start = time.perf_counter()
        for t in rng.integers(100, n_vocab, GEN):
            llm.eval([int(t)])
        decode.append(GEN / (time.perf_counter() - start))
    # the best run, as the node measurement's calibration uses llama-bench's best repetition: the least
    # disturbed by other work on the machine
    return {"prefill_seconds": min(prefill), "decode_tokens_per_s": max(decode),
            "prefill_runs": [round(x, 3) for x in prefill], "decode_runs": [round(x, 2) for x in decode]}


def gqa_file(kv_heads: int):
    def write(path: Path, tok: Path) -> None:
        shape = {"hidden": 1024, "layers": 8, "heads": 16, "kv_heads": kv_heads, "ffn": 1024}
        node_bench.write_random_gguf(path, arch="llama", metadata=node_bench.llama_metadata(**shape, context=4096),
                                     tensors=node_bench.llama_tensors(**shape, vocab=node_bench.vocab_size(tok)),
                                     tokenizer_gguf=tok)
    return write


def depth_steps(path: Path, flash_attn: bool, depths=(0, 512), rounds: int = 3, gen: int = 24) -> dict[int, float]:
    """Best CPU seconds per decode step after each depth of random prompt, one thread, rounds interleaved."""
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=max(depths) + gen + 16, n_batch=512, n_ubatch=512, n_threads=1,
                n_threads_batch=1, n_gpu_layers=0, flash_attn=flash_attn, verbose=False)
    rng = np.random.default_rng(1)
    n_vocab = llm.n_vocab()
    llm.eval([int(t) for t in rng.integers(100, n_vocab, 8)])
    best = {d: float("inf") for d in depths}
    for _ in range(rounds):
        for d in depths:
            llm.reset()
            if d:
                llm.eval([int(t) for t in rng.integers(100, n_vocab, d)])
            tokens = [int(t) for t in rng.integers(100, n_vocab, gen)]
            start = time.process_time()
            for t in tokens:
                llm.eval([t])
            best[d] = min(best[d], (time.process_time() - start) / gen)
    return best


def depth_table(work: Path) -> None:
    node_file = node_bench.bench_files(("Q4_K_M",), tokenizer_gguf=demo_model_path(), threads=1)["Q4_K_M"]
    models = [("Llama 8 × 16 (16 KV), F16", work / "gqa-kv16-F16.gguf", gqa_file(16)),
              ("Llama 8 × 16 (2 KV), F16", work / "gqa-kv2-F16.gguf", gqa_file(2)),
              ("node file, Q4_K_M", node_file, None),
              ("Qwen3-MoE 0.7B, Q4_K_M", build(work, "qwen3moe", moe_file, "Q4_K_M", 1), None),
              ("Llama 1.5B, Q4_K_M", build(work, "llama-1b5", llama_file, "Q4_K_M", 1), None),
              ("SmolLM2-135M (demo), Q4_1", demo_model_path(), None)]
    print(f"{date.today()}, load average {os.getloadavg()[0]:.2f}, 1 thread, CPU ms per decode step")
    for fa in (False, True):
        steps = {}
        for name, path, writer in models:
            if writer and not path.exists():
                writer(path, demo_model_path())
            steps[name] = (node_bench.attention_shape(path), depth_steps(path, fa))
        a, b = (steps[n] for n in ("Llama 8 × 16 (16 KV), F16", "Llama 8 × 16 (2 KV), F16"))
        kv = {n: 2 * sh["n_layers"] * sh["n_kv_heads"] * sh["head_dim"] * 2 * 512 for n, (sh, _) in steps.items()}
        rate = (kv["Llama 8 × 16 (16 KV), F16"] - kv["Llama 8 × 16 (2 KV), F16"]) / (
            (a[1][512] - a[1][0]) - (b[1][512] - b[1][0]))
        print(f"flash attention {'on' if fa else 'off'}: KV read rate from the 16/2 KV-head pair {rate / 1e9:.1f} GB/s")
        print(f"{'model':28} {'d0 ms':>7} {'d512 ms':>8} {'ns/layer·tok':>13} {'ps/unit':>8} {'after KV':>9}")
        for name, (sh, st) in steps.items():
            dt, units = st[512] - st[0], sh["n_layers"] * sh["n_heads"] * sh["head_dim"] * 512
            print(f"{name:28} {st[0] * 1e3:7.2f} {st[512] * 1e3:8.2f} {dt / (sh['n_layers'] * 512) * 1e9:13.0f} "
                  f"{dt / units * 1e12:8.0f} {(dt - kv[name] / rate) / units * 1e12:9.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep the built models here (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--busy-ok", action="store_true", help="run on a busy machine (recorded as NOT quiet)")
    parser.add_argument("--no-record", action="store_true", help="don't write planner/speed_accuracy.json")
    parser.add_argument("--depth-table", action="store_true", help="print the decode-at-depth table and stop")
    args = parser.parse_args()
    if args.depth_table:
        work = args.workdir or Path(tempfile.mkdtemp(prefix="speed-accuracy-"))
        work.mkdir(parents=True, exist_ok=True)
        depth_table(work)
        return
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    busy = load_before > node_bench.BUSY_LOAD_PER_CORE * cores
    print(f"load average before: {load_before:.2f} on {cores} cores — {'BUSY' if busy else 'quiet'}")
    if busy and not args.busy_ok:
        sys.exit(f"refused: load average {load_before:.2f} > {node_bench.BUSY_LOAD_PER_CORE} × {cores} cores; "
                 "run it on a quiet machine (or --busy-ok to record a flagged run)")
    started, cpu_start = time.time(), node_bench.cpu_seconds()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="speed-accuracy-"))
    work.mkdir(parents=True, exist_ok=True)

    node = node_bench.measure_node(tokenizer_gguf=demo_model_path(), threads=args.threads)
    cal = node_calibration("this machine", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), node)
    print(f"calibration (node measurement, tiny random Llama): bandwidth {cal.bandwidth_bytes_per_s / 1e9:.1f} GB/s; "
          + ", ".join(f"{s} eff {e:.3f}" for s, e in cal.decode_efficiency) + "; "
          + ", ".join(f"{s} {f / 1e9:.1f} GFLOP/s" for s, f in cal.prefill_flops)
          + f"; fixed {cal.fixed_seconds_per_layer * 1e6:.1f} µs per layer and step ({cal.fixed_source})")
    print(f"attention at depth: {cal.attention_source or 'not measured'}")
    print(f"MoE: {cal.moe_seconds_per_layer * 1e6:.1f} µs per MoE layer and step, experts' prefill rate "
          f"{cal.expert_prefill_ratio:.3f} × dense ({cal.moe_source or 'not measured'})")
    print(f"node measurement: {node['conditions']['seconds']} s, of which the depth runs "
          f"{node['decode_depth']['seconds']} s")
    import psutil

    hw = Hardware(key="node:bench", name="this machine", kind="cpu", memory_bytes=psutil.virtual_memory().total,
                  bandwidth_bytes_per_s=cal.bandwidth_bytes_per_s,
                  fp16_flops=max(f for _, f in cal.prefill_flops), calibration=cal)
    models = [("SmolLM2-135M (demo)", demo_model_path(), "Q4_1"),
              ("random Llama 1.5B", build(work, "llama-1b5", llama_file, "Q4_K_M", args.threads), "Q4_K_M"),
              ("random Qwen3-MoE 0.7B", build(work, "qwen3moe", moe_file, "Q4_K_M", args.threads), "Q4_K_M")]
    rows = []
    print(f"decode after {PROMPT} prompt tokens (estimate at context {PROMPT + GEN}), {args.threads} threads, "
          "flash attention off")
    print(f"{'model':24} {'scheme':7} {'metric':8} {'estimate':>10} {'measured':>10} {'ratio':>6}")
    for name, path, scheme in models:
        arch = planner_architecture(path, name)
        row = estimate(arch, hw, Workload(context=PROMPT + GEN, prompt_tokens=PROMPT, flash_attn=False),
                       [scheme]).rows[0]
        got = measure(path, args.threads)
        for metric, est, meas, unit in (("decode", row.decode_tokens_per_s, got["decode_tokens_per_s"], "tok/s"),
                                        ("prefill", row.prefill_seconds, got["prefill_seconds"], "s")):
            ratio = est / meas
            ok = abs(ratio - 1) <= TARGET
            print(f"{name:24} {scheme:7} {metric:8} {est:>10.3f} {meas:>10.3f} {ratio:>6.2f} {unit} "
                  f"{'ok' if ok else 'OFF TARGET'}")
            rows.append({"model": name, "total_params": arch.total_params, "scheme": scheme, "metric": metric,
                         "unit": unit, "estimate": round(est, 4), "measured": round(meas, 4), "ratio": round(ratio, 3),
                         "error_pct": round((est - meas) / meas * 100, 1), "runs": got[f"{metric}_runs"]})
    load_after = os.getloadavg()[0]
    # this run's own threads add about `threads` to the load: more than that plus the quiet margin means
    # something else ran meanwhile
    others = node_bench.other_cores(cpu_start, time.time() - started)
    busy_after = others > node_bench.OTHER_CORES_MAX
    print(f"load average after: {load_after:.2f}; other processes used {others:.2f} cores during the run"
          f"{' — BUSY: flagged' if busy_after else ''}")
    busy = busy or busy_after
    record = {"date": date.today().isoformat(), "command": "python bench/speed_accuracy.py",
              "threads": args.threads, "prompt_tokens": PROMPT, "gen_tokens": GEN, "repeats": REPEATS,
              "load_before": round(load_before, 2), "load_after": round(load_after, 2),
              "other_cores": round(others, 2),
              "quiet": not busy and node["conditions"]["quiet"],
              "calibration": {"source": cal.source, "bandwidth_bytes_per_s": cal.bandwidth_bytes_per_s,
                              "fixed_seconds_per_layer": cal.fixed_seconds_per_layer,
                              "decode_efficiency": dict(cal.decode_efficiency),
                              "attention_seconds": {("flash_attn" if fa else "no_flash_attn"): v
                                                    for fa, v in cal.attention_seconds},
                              "attention_source": cal.attention_source,
                              "prefill_flops": dict(cal.prefill_flops),
                              "moe_seconds_per_layer": cal.moe_seconds_per_layer,
                              "expert_prefill_ratio": cal.expert_prefill_ratio, "moe_source": cal.moe_source},
              "error_pct": "(estimate - measured) / measured * 100", "rows": rows}
    if not args.no_record:
        SPEED_ACCURACY_PATH.write_text(json.dumps(record, indent=1) + "\n")
        print(f"recorded in {SPEED_ACCURACY_PATH}")


if __name__ == "__main__":
    main()
