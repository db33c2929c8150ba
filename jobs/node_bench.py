"""What this node can do, measured by its worker: memory bandwidth and llama.cpp's own prompt (pp) and
generation (tg) throughput per GGUF scheme, with the conditions of the run.

The worker measures once at start, in a background thread (jobs/heartbeat.py), and again when the
Workers page asks (the `jobs.measure_node` task on the node's own queue). The result is stored on
the Worker row (`measurements`, `measured_at`); the planner turns it into the node's speed
constants (planner/estimator/calibration.py).

* Bandwidth: numpy copies a buffer much larger than the last-level cache; the copy reads and writes
  each byte once, so bytes/s = 2 × size / best time of a few repeats (STREAM's "Copy" count).
* llama.cpp: `llama-bench -o json` with the worker's llama.cpp threads on a small random-weight
  Llama written here (the demo model's tokenizer, shapes whose rows are multiples of 256 so the
  k-quants keep their own kernels, large enough to stream from RAM rather than cache), quantized
  to each scheme with llama-quantize, built once per machine and cached. The bytes read per
  token and the FLOP per prompt token of each file are counted from its own tensor headers.
* The fixed time per layer of a decode step, from the same scheme at two depths (per_layer_cost).
* Decode at a context depth: the 16-layer Q4_K_M file's tg after DECODE_DEPTHS tokens already in
  its cache (`llama-bench -d`), with flash attention off (llama-cpp-python's default, so the
  runtime's) and on. On a CPU attending over the context costs far more than reading its KV bytes,
  and differently per model, so the planner derives its attention term from these rows
  (planner/estimator/speed_depth.py) instead of assuming one.
* Conditions: threads, cores, 1-minute load average before and after, the CPU other processes took
  meanwhile (/proc/stat less this process's own), and whether a job ran on the worker. `quiet` is
  false when the load before exceeded BUSY_LOAD_PER_CORE × cores, others took over OTHER_CORES_MAX
  cores, or a job was running: such figures are kept and shown, flagged.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from django.db import close_old_connections
from django.utils import timezone

from catalog.services import demo_model_path
from formats.gguf_header import read_gguf_header_from_path
from jobs import llama_tools
from jobs.models import Job, Worker

logger = logging.getLogger(__name__)

CACHE_DIR = Path.home() / ".cache" / "quantdash" / "node-bench"
BENCH_SCHEMES = ("Q4_0", "Q4_1", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16")
PROMPT_TOKENS, GEN_TOKENS, REPETITIONS = 64, 16, 3
BANDWIDTH_BUFFER_BYTES = 256 * 2**20    # 8× a 32 MiB L3
BUSY_LOAD_PER_CORE = 0.5
OTHER_CORES_MAX = 0.25    # CPU other processes may take during a measurement that is called quiet
# The random-weight Llama: 16 layers × (attention 2.6 M + MLP 8.7 M) + 50 M tied embedding ≈ 231 M
# parameters: Q4_0 ≈ 130 MB, F16 ≈ 460 MB, all beyond the cache.
BENCH_SHAPE = {"hidden": 1024, "layers": 16, "heads": 16, "kv_heads": 4, "ffn": 2816, "context": 2048}
# The fixed time per layer and decode step (graph walk, thread barriers) comes from a much smaller
# Llama (hidden 256, 1 KV head, ffn 704) at 16 and 4 layers, in one scheme: both files (~17 and ~12 MB
# read per token) stay in the CPU's last-level cache, so their difference is the per-layer overhead and
# not the cache. With the 1024-wide file at 4 layers (~68 MB, part of it cached in a 32 MiB L3) the
# shallow step ran up to 9 % faster from one measurement to the next, and the fitted fixed time
# swung 143-205 µs (measured 2026-12-07; the small pair gives ~39 µs).
FIXED_SHAPE = {"hidden": 256, "layers": 16, "heads": 4, "kv_heads": 1, "ffn": 704, "context": 2048}
SHALLOW_LAYERS = 4
FIXED_GEN_TOKENS, FIXED_REPETITIONS = 128, 5
# Decode after 0 and 512 tokens of context, flash attention off and on: each depth-512 run first
# fills the cache with a 512-token prompt (llama-bench does so before every repetition and its
# warm-up), about 12 s in all with 2 threads on a quiet 2-core node.
# The shallow test runs before and after the deep one (llama-bench keeps repeated values), so work
# that other processes start or stop meanwhile does not pass for the cost of depth; the rows of one
# depth are merged (best of all their repetitions).
DECODE_DEPTHS = (0, 512)
DEPTH_ORDER = (0, 512, 0)
DEPTH_FLASH_ATTN = (False, True)
# A small MoE beside the dense file, in llama.cpp's llama architecture with Mixtral's expert tensors
# (16 experts of 512, 4 per token; 8 layers × (attention 2.6 M + experts 25.2 M) + 50 M embedding ≈
# 273 M parameters, Q4_K_M ≈ 177 MB). A MoE layer does more than read its chosen experts: it routes,
# sorts and gathers, and in prefill llama.cpp multiplies each expert's rows apart from the others
# (ggml's mul_mat_id). Its decode step and prompt rate, beside the dense file's, give what a MoE layer
# adds per step and the rate of the experts' matmuls (calibration.node_calibration).
BENCH_MOE_SHAPE = {"hidden": 1024, "layers": 8, "heads": 16, "kv_heads": 4, "experts": 16, "top_k": 4,
                   "expert_ffn": 512, "context": 2048}
MOE_SCHEME = "Q4_K_M"


class NodeBenchError(RuntimeError):
    pass


def bench_threads() -> int:
    """The worker's llama.cpp threads: WORKER_LLAMA_THREADS, else RUNTIME_THREADS (default 2)."""
    return int(os.environ.get("WORKER_LLAMA_THREADS") or os.environ.get("RUNTIME_THREADS") or 2)


def bench_schemes() -> tuple[str, ...]:
    wanted = [s.strip() for s in os.environ.get("WORKER_NODE_BENCH_SCHEMES", "").split(",") if s.strip()]
    return tuple(wanted) or BENCH_SCHEMES


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds the whole machine has been busy, CPU seconds of this process and its waited-for
    children): their difference over a run is the CPU other work took meanwhile (/proc/stat fields
    user nice system idle iowait irq softirq steal, in USER_HZ ticks)."""
    import resource

    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    own = sum(getattr(resource.getrusage(who), k) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for k in ("ru_utime", "ru_stime"))
    return busy, own


def other_cores(start: tuple[float, float], wall: float) -> float:
    """Cores' worth of CPU other processes used since `start` (cpu_seconds())."""
    busy, own = cpu_seconds()
    return max(0.0, (busy - start[0]) - (own - start[1])) / max(wall, 1e-9)


def measure_bandwidth(nbytes: int = BANDWIDTH_BUFFER_BYTES, repeats: int = 5, device: str = "cpu") -> dict[str, Any]:
    if device == "cuda":
        return _cuda_bandwidth(4 * nbytes, repeats)
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)   # touch every page first
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - start)
    best = min(times)
    return {"bytes_per_s": round(2 * src.nbytes / best), "method": f"numpy copy of {src.nbytes // 2**20} MiB, "
            f"read + write, best of {repeats} ({best * 1e3:.1f} ms), one thread",
            "seconds": [round(t, 5) for t in times]}


def _cuda_bandwidth(nbytes: int, repeats: int) -> dict[str, Any]:
    """GPU 0's memory bandwidth: a device-to-device copy, read + write (llama-bench runs there too)."""
    import torch

    src = torch.ones(nbytes // 4, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    best = min(times)
    return {"bytes_per_s": round(2 * nbytes / best), "method": f"torch copy of {nbytes // 2**20} MiB on "
            f"{torch.cuda.get_device_name(0)}, read + write, best of {repeats} ({best * 1e3:.2f} ms)",
            "seconds": [round(t, 6) for t in times]}


def write_random_gguf(path: Path, *, arch: str, metadata: dict[str, Any], tensors: list[tuple[str, tuple[int, ...]]],
                      tokenizer_gguf: Path, file_type: int = 1) -> None:
    """An F16 GGUF of `arch` with N(0, 0.02) matrices and unit norms (1-D tensors), the `metadata`
    ("{arch}." keys without the prefix) and the tokenizer of `tokenizer_gguf` (llama-bench draws random
    token ids from the vocabulary). Shapes are numpy's (rows, columns): the reverse of ggml's ne."""
    import gguf   # gguf-py, llama.cpp's own writer (needed only when the files are first built)

    reader = gguf.GGUFReader(tokenizer_gguf)
    writer = gguf.GGUFWriter(str(path), arch)
    for key, value in metadata.items():
        kind = (gguf.GGUFValueType.FLOAT32 if isinstance(value, float) else gguf.GGUFValueType.STRING
                if isinstance(value, str) else gguf.GGUFValueType.UINT32)
        writer.add_key_value(f"{arch}.{key}", value, kind)
    writer.add_file_type(file_type)   # 1: LLAMA_FTYPE_MOSTLY_F16
    for name, field in reader.fields.items():
        if name.startswith("tokenizer."):
            sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(name, field.contents(), field.types[0], sub_type=sub)
    rng = np.random.default_rng(0)
    for name, shape in tensors:
        if len(shape) == 1:
            writer.add_tensor(name, np.ones(shape, dtype=np.float32))
        else:
            writer.add_tensor(name, (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def vocab_size(tokenizer_gguf: Path) -> int:
    return int(read_gguf_header_from_path(tokenizer_gguf).array_lengths["tokenizer.ggml.tokens"])


def llama_tensors(*, hidden: int, layers: int, heads: int, kv_heads: int, ffn: int, vocab: int,
                  tied: bool = True) -> list[tuple[str, tuple[int, ...]]]:
    kv = hidden // heads * kv_heads
    out = [("token_embd.weight", (vocab, hidden)), ("output_norm.weight", (hidden,))]
    if not tied:
        out.append(("output.weight", (vocab, hidden)))
    for i in range(layers):
        p = f"blk.{i}."
        out += [(p + "attn_norm.weight", (hidden,)), (p + "attn_q.weight", (hidden, hidden)),
                (p + "attn_k.weight", (kv, hidden)), (p + "attn_v.weight", (kv, hidden)),
                (p + "attn_output.weight", (hidden, hidden)), (p + "ffn_norm.weight", (hidden,)),
                (p + "ffn_gate.weight", (ffn, hidden)), (p + "ffn_up.weight", (ffn, hidden)),
                (p + "ffn_down.weight", (hidden, ffn))]
    return out


def llama_metadata(*, hidden: int, layers: int, heads: int, kv_heads: int, ffn: int, context: int) -> dict[str, Any]:
    return {"block_count": layers, "context_length": context, "embedding_length": hidden,
            "feed_forward_length": ffn, "attention.head_count": heads, "attention.head_count_kv": kv_heads,
            "rope.dimension_count": hidden // heads, "attention.layer_norm_rms_epsilon": 1e-5,
            "rope.freq_base": 10000.0}


def moe_tensors(*, hidden: int, layers: int, heads: int, kv_heads: int, experts: int, expert_ffn: int,
                vocab: int) -> list[tuple[str, tuple[int, ...]]]:
    """llama's attention with a router and stacked experts (Mixtral's names), tied embedding."""
    kv = hidden // heads * kv_heads
    out = [("token_embd.weight", (vocab, hidden)), ("output_norm.weight", (hidden,))]
    for i in range(layers):
        p = f"blk.{i}."
        out += [(p + "attn_norm.weight", (hidden,)), (p + "attn_q.weight", (hidden, hidden)),
                (p + "attn_k.weight", (kv, hidden)), (p + "attn_v.weight", (kv, hidden)),
                (p + "attn_output.weight", (hidden, hidden)), (p + "ffn_norm.weight", (hidden,)),
                (p + "ffn_gate_inp.weight", (experts, hidden)),
                (p + "ffn_gate_exps.weight", (experts, expert_ffn, hidden)),
                (p + "ffn_up_exps.weight", (experts, expert_ffn, hidden)),
                (p + "ffn_down_exps.weight", (experts, hidden, expert_ffn))]
    return out


def _write_bench_moe(path: Path, tokenizer_gguf: Path) -> None:
    s = BENCH_MOE_SHAPE
    dims = {k: s[k] for k in ("hidden", "layers", "heads", "kv_heads")}
    meta = llama_metadata(**dims, ffn=s["expert_ffn"], context=s["context"]) | {
        "expert_count": s["experts"], "expert_used_count": s["top_k"]}
    write_random_gguf(path, arch="llama", metadata=meta, tokenizer_gguf=tokenizer_gguf,
                      tensors=moe_tensors(**dims, experts=s["experts"], expert_ffn=s["expert_ffn"],
                                          vocab=vocab_size(tokenizer_gguf)))


def bench_moe_file(*, tokenizer_gguf: Path, cache_dir: Path = CACHE_DIR, threads: int = 2) -> Path:
    """The small MoE in MOE_SCHEME, built once (its F16 is deleted once quantized)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    s = BENCH_MOE_SHAPE
    tag = f"moe-{s['hidden']}x{s['layers']}-{s['experts']}e{s['top_k']}"
    path = cache_dir / f"{tag}-{MOE_SCHEME}.gguf"
    if not path.exists():
        f16, part = cache_dir / f"{tag}-F16.part", path.with_suffix(".part")
        _write_bench_moe(f16, tokenizer_gguf)
        try:
            llama_tools.run("llama-quantize", [str(f16), str(part), MOE_SCHEME, str(threads)])
        finally:
            f16.unlink()
        part.rename(path)
    return path


def _write_bench_llama(path: Path, tokenizer_gguf: Path, layers: int, shape: dict[str, int]) -> None:
    s = {k: v for k, v in shape.items() if k != "context"} | {"layers": layers}
    write_random_gguf(path, arch="llama", metadata=llama_metadata(**s, context=shape["context"]),
                      tensors=llama_tensors(**s, vocab=vocab_size(tokenizer_gguf)), tokenizer_gguf=tokenizer_gguf)


def bench_files(schemes: tuple[str, ...], *, tokenizer_gguf: Path, cache_dir: Path = CACHE_DIR,
                threads: int = 2, layers: int = BENCH_SHAPE["layers"],
                shape: dict[str, int] = BENCH_SHAPE) -> dict[str, Path]:
    """The random Llama (`layers` deep) in each scheme, built once (F16 written here, the rest by
    llama-quantize)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    tag = "llama-{hidden}x{layers}".format(**shape | {"layers": layers})
    f16 = cache_dir / f"{tag}-F16.gguf"
    if not f16.exists():
        part = f16.with_suffix(".part")
        _write_bench_llama(part, tokenizer_gguf, layers, shape)
        part.rename(f16)
    files = {}
    for scheme in schemes:
        path = cache_dir / f"{tag}-{scheme}.gguf"
        if scheme != "F16" and not path.exists():
            part = path.with_suffix(".part")
            llama_tools.run("llama-quantize", [str(f16), str(part), scheme, str(threads)])
            part.rename(path)
        files[scheme] = path
    return files


def per_layer_cost(deep: dict[str, Any], shallow: dict[str, Any]) -> dict[str, Any]:
    """The fixed time per layer and decode step, from the same scheme at two depths: each step takes
    t = layers × c + bytes / B, two equations in c and B. c < 0 (within noise) means the data show no
    fixed cost: 0."""
    t_d, t_s = 1 / deep["tg_best_tokens_per_s"], 1 / shallow["tg_best_tokens_per_s"]
    L_d, L_s, B_d, B_s = deep["n_layers"], shallow["n_layers"], deep["bytes_per_token"], shallow["bytes_per_token"]
    inv_bw = (t_d * L_s - t_s * L_d) / (B_d * L_s - B_s * L_d)
    c = (t_d - B_d * inv_bw) / L_d
    return {"scheme": deep["scheme"], "seconds_per_layer": max(0.0, c), "raw_seconds_per_layer": c,
            "layers": [L_d, L_s],
            "tg_best_tokens_per_s": [deep["tg_best_tokens_per_s"], shallow["tg_best_tokens_per_s"]],
            "bytes_per_token": [B_d, B_s]}


def file_figures(path: Path, n_prompt: int) -> dict[str, Any]:
    """From the file's own headers: bytes read per decoded token (every tensor once; an untied token
    embedding only by one row; a MoE's stacked experts × top-k / experts), matmul parameters used per
    token, and FLOP per prompt token at `n_prompt` tokens: 2 × matmul params + causal attention
    2 × n_layers × n_prompt × (heads × head_dim). For a MoE also: the experts' share of that FLOP, the
    bytes one `n_prompt`-token ubatch reads (the experts its tokens route to, 1 − (1 − k/E)^n_prompt of
    them, uniform routing) and its MoE layers."""
    header = read_gguf_header_from_path(path)
    arch = header.architecture
    meta = header.metadata
    names = {t.name for t in header.tensors}
    experts = int(meta.get(f"{arch}.expert_count") or 0)
    share = int(meta.get(f"{arch}.expert_used_count") or 0) / experts if experts > 1 else 1.0
    prompt_share = 1 - (1 - share) ** max(1, n_prompt)
    dense = [t for t in header.tensors if not (t.name == "token_embd.weight" and "output.weight" in names)
             and "_exps." not in t.name]
    stacked = [t for t in header.tensors if "_exps." in t.name]
    expert_bytes = sum(t.nbytes for t in stacked)
    dense_bytes = sum(t.nbytes for t in dense)
    expert_matmul = round(sum(int(np.prod(t.shape)) for t in stacked) * share)
    matmul = expert_matmul + sum(int(np.prod(t.shape)) for t in header.tensors
                                 if len(t.shape) == 2 and t.name not in ("token_embd.weight", "output.weight"))
    layers = int(meta[f"{arch}.block_count"])
    heads = int(meta[f"{arch}.attention.head_count"])
    head_dim = int(meta.get(f"{arch}.attention.key_length") or int(meta[f"{arch}.embedding_length"]) // heads)
    out = {"bytes_per_token": dense_bytes + round(expert_bytes * share),
           "file_bytes": sum(t.nbytes for t in header.tensors), "matmul_params": matmul,
           "n_layers": layers, "q_dim": heads * head_dim,
           "flops_per_prompt_token": 2 * matmul + 2 * layers * n_prompt * heads * head_dim}
    if stacked:
        out.update(moe_layers=len({t.name.split(".")[1] for t in stacked}), experts=experts,
                   experts_per_token=round(share * experts), expert_flops_per_prompt_token=2 * expert_matmul,
                   bytes_per_prompt=dense_bytes + round(expert_bytes * prompt_share))
    return out


def run_llama_bench(path: Path, *, threads: int, n_prompt: int, n_gen: int, repetitions: int) -> str:
    """llama-bench's JSON (stdout only; its log goes to stderr)."""
    command = [str(llama_tools.tool("llama-bench")), "-m", str(path), "-t", str(threads), "-p", str(n_prompt),
               "-n", str(n_gen), "-r", str(repetitions), "-o", "json"]
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    if done.returncode != 0:
        tail = " | ".join(x for x in done.stderr.splitlines()[-8:] if x.strip())
        raise NodeBenchError(f"llama-bench failed (exit {done.returncode}): {tail}")
    return done.stdout


def run_llama_bench_depths(path: Path, *, threads: int, n_gen: int, depths: tuple[int, ...], flash_attn: bool,
                           repetitions: int) -> str:
    """llama-bench's JSON for tg `n_gen` after each of `depths` tokens of context (`-d`)."""
    command = [str(llama_tools.tool("llama-bench")), "-m", str(path), "-t", str(threads), "-p", "0",
               "-n", str(n_gen), "-d", ",".join(str(d) for d in depths), "-fa", "on" if flash_attn else "off",
               "-r", str(repetitions), "-o", "json"]
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    if done.returncode != 0:
        tail = " | ".join(x for x in done.stderr.splitlines()[-8:] if x.strip())
        raise NodeBenchError(f"llama-bench -d failed (exit {done.returncode}): {tail}")
    return done.stdout


def parse_llama_bench_depths(output: str) -> list[dict[str, Any]]:
    """llama-bench `-o json` with `-d` → one row per depth and mode: n_depth, n_gen, flash_attn
    (llama-bench writes 0 / 1 for off / on; -1, auto, is refused: which kernel ran is then unknown),
    tok/s mean, best and stddev over the samples of every test at that depth, and the samples."""
    try:
        rows = json.loads(output)
    except ValueError as exc:
        raise NodeBenchError(f"llama-bench printed no JSON: {exc}") from None
    out: dict[tuple[int, bool], dict[str, Any]] = {}
    for row in rows if isinstance(rows, list) else []:
        if not row.get("n_gen") or row.get("n_prompt"):
            continue
        fa = row.get("flash_attn")
        if fa not in (0, 1, False, True):
            raise NodeBenchError(f"llama-bench ran with flash_attn {fa!r}: pass -fa on or off")
        samples = [float(x) for x in row.get("samples_ts") or []] or [float(row["avg_ts"])]
        key = (int(row.get("n_depth", 0)), bool(fa))
        if key in out:
            out[key]["samples_ts"] += samples
            continue
        out[key] = {"n_depth": key[0], "n_gen": int(row["n_gen"]), "flash_attn": key[1], "samples_ts": samples,
                    "threads": row.get("n_threads"), "type_k": row.get("type_k"), "type_v": row.get("type_v")}
    if not out:
        raise NodeBenchError("llama-bench output holds no tg test")
    for r in out.values():
        x = r["samples_ts"]
        mean = sum(x) / len(x)
        r.update(tg_tokens_per_s=round(mean, 3), tg_best_tokens_per_s=round(max(x), 3),
                 tg_stddev=round((sum((v - mean) ** 2 for v in x) / max(1, len(x) - 1)) ** 0.5, 3),
                 samples_ts=[round(v, 3) for v in x])
    return list(out.values())


def attention_shape(path: Path) -> dict[str, int]:
    """Layers, query heads, KV heads and head size of a GGUF file, from its header: what the attention
    term's unit counts (planner/estimator/speed_depth.py)."""
    meta = read_gguf_header_from_path(path).metadata
    arch = meta["general.architecture"]
    heads = int(meta[f"{arch}.attention.head_count"])
    head_dim = int(meta.get(f"{arch}.attention.key_length") or int(meta[f"{arch}.embedding_length"]) // heads)
    return {"n_layers": int(meta[f"{arch}.block_count"]), "n_heads": heads,
            "n_kv_heads": int(meta.get(f"{arch}.attention.head_count_kv") or heads), "head_dim": head_dim}


def measure_depths(path: Path, *, threads: int, n_gen: int = GEN_TOKENS, repetitions: int = REPETITIONS,
                   depths: tuple[int, ...] = DEPTH_ORDER,
                   flash_attn: tuple[bool, ...] = DEPTH_FLASH_ATTN) -> dict[str, Any]:
    """tg at each depth in each flash-attention mode, with the file's attention shape and the load."""
    load_before, started = round(os.getloadavg()[0], 2), time.time()
    rows = []
    for fa in flash_attn:
        rows += parse_llama_bench_depths(run_llama_bench_depths(path, threads=threads, n_gen=n_gen, depths=depths,
                                                                flash_attn=fa, repetitions=repetitions))
    return {"file": path.name, **attention_shape(path), "threads": threads, "n_gen": n_gen,
            "repetitions": repetitions, "rows": rows, "load_before": load_before,
            "load_after": round(os.getloadavg()[0], 2), "seconds": round(time.time() - started, 1)}


def parse_llama_bench(output: str) -> dict[str, Any]:
    """llama-bench `-o json` → {pp_tokens_per_s, tg_tokens_per_s, their stddev, n_prompt, n_gen, threads,
    model_type, model_size, build}: one pp test (n_prompt > 0, n_gen = 0) and one tg test."""
    try:
        rows = json.loads(output)
    except ValueError as exc:
        raise NodeBenchError(f"llama-bench printed no JSON: {exc}") from None
    if not isinstance(rows, list) or not rows:
        raise NodeBenchError("llama-bench printed no test")
    out: dict[str, Any] = {}
    for row in rows:
        kind = "pp" if row.get("n_gen", 0) == 0 else "tg" if row.get("n_prompt", 0) == 0 else None
        if kind is None:
            continue
        out[f"{kind}_tokens_per_s"] = round(float(row["avg_ts"]), 3)
        out[f"{kind}_stddev"] = round(float(row.get("stddev_ts", 0.0)), 3)
        samples = [float(x) for x in row.get("samples_ts") or []]
        # the best repetition: the least disturbed by other work on the node (what calibrates the planner)
        out[f"{kind}_best_tokens_per_s"] = round(max(samples), 3) if samples else out[f"{kind}_tokens_per_s"]
        out[f"n_{'prompt' if kind == 'pp' else 'gen'}"] = int(row["n_prompt" if kind == "pp" else "n_gen"])
        out.update(threads=row.get("n_threads"), model_type=row.get("model_type"), model_size=row.get("model_size"),
                   build=f"{row.get('build_commit', '?')} ({row.get('build_number', '?')})",
                   repetitions=len(row.get("samples_ts") or []))
    if "tg_tokens_per_s" not in out and "pp_tokens_per_s" not in out:
        raise NodeBenchError("llama-bench output holds neither a pp nor a tg test")
    return out


def measure_node(*, tokenizer_gguf: Path, threads: int | None = None, schemes: tuple[str, ...] | None = None,
                 jobs_running: Callable[[], int] = lambda: 0, n_prompt: int = PROMPT_TOKENS,
                 n_gen: int = GEN_TOKENS, repetitions: int = REPETITIONS,
                 cache_dir: Path = CACHE_DIR, device: str = "cpu") -> dict[str, Any]:
    """The whole measurement (tens of seconds once the files are built), as stored on the Worker row."""
    threads = threads or bench_threads()
    schemes = schemes or bench_schemes()
    cores = os.cpu_count() or 1
    load_before = round(os.getloadavg()[0], 2)
    jobs_before = jobs_running()
    started = time.time()
    cpu_start = cpu_seconds()
    files = bench_files(schemes, tokenizer_gguf=tokenizer_gguf, cache_dir=cache_dir, threads=threads)
    bandwidth = measure_bandwidth(device=device)
    rows = []
    for scheme, path in files.items():
        figures = file_figures(path, n_prompt)
        result = parse_llama_bench(run_llama_bench(path, threads=threads, n_prompt=n_prompt, n_gen=n_gen,
                                                   repetitions=repetitions))
        rows.append({"scheme": scheme, "file": path.name, **figures, **result})
    deep = next((r for r in rows if r["scheme"] == "Q4_K_M"), rows[0])
    pair = []
    for layers in (FIXED_SHAPE["layers"], SHALLOW_LAYERS):
        [path] = bench_files((deep["scheme"],), tokenizer_gguf=tokenizer_gguf, cache_dir=cache_dir, threads=threads,
                             layers=layers, shape=FIXED_SHAPE).values()
        # a step of these takes ~1 ms: more of them than of the big file, or thread wake-ups are the figure
        pair.append({"scheme": deep["scheme"], "file": path.name, **file_figures(path, n_prompt),
                     **parse_llama_bench(run_llama_bench(path, threads=threads, n_prompt=0, n_gen=FIXED_GEN_TOKENS,
                                                         repetitions=FIXED_REPETITIONS))})
    fixed = per_layer_cost(*pair)
    depth = {"scheme": deep["scheme"], **measure_depths(files[deep["scheme"]], threads=threads, n_gen=n_gen,
                                                        repetitions=repetitions)}
    moe_path = bench_moe_file(tokenizer_gguf=tokenizer_gguf, cache_dir=cache_dir, threads=threads)
    moe = {"scheme": MOE_SCHEME, "file": moe_path.name, **file_figures(moe_path, n_prompt),
           **parse_llama_bench(run_llama_bench(moe_path, threads=threads, n_prompt=n_prompt, n_gen=n_gen,
                                               repetitions=repetitions))}
    load_after = round(os.getloadavg()[0], 2)
    others = round(other_cores(cpu_start, time.time() - started), 2)
    jobs_after = jobs_running()
    busy = []
    if others > OTHER_CORES_MAX:
        busy.append(f"other processes used {others} cores meanwhile")
    if load_before > BUSY_LOAD_PER_CORE * cores:
        busy.append(f"load average {load_before} before, over {BUSY_LOAD_PER_CORE} × {cores} cores")
    if jobs_before or jobs_after:
        busy.append(f"{max(jobs_before, jobs_after)} job(s) running on the worker")
    return {"version": 1, "bandwidth": bandwidth, "llama_bench": rows, "fixed_cost": fixed, "decode_depth": depth, "moe": moe,
            "conditions": {"threads": threads, "cores": cores, "load_before": load_before, "load_after": load_after,
                           "jobs_running": max(jobs_before, jobs_after), "other_cores": others, "quiet": not busy,
                           "busy_reason": "; ".join(busy), "seconds": round(time.time() - started, 1),
                           "tool": llama_tools.version(), "n_prompt": n_prompt, "n_gen": n_gen,
                           "repetitions": repetitions,
                           "omp_env": {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_"))}}}


def node_measure_and_store(*, hostname: str) -> dict[str, Any]:
    """Measures this node and stores the result on its Worker row; a failure is stored as the error,
    beside the previous figures. Called by the worker itself (start, or the jobs.measure_node task)."""
    close_old_connections()
    previous, worker_device = Worker.objects.filter(hostname=hostname).values_list(
        "measurements", "device").first() or ({}, "cpu")
    previous = previous or {}
    Worker.objects.filter(hostname=hostname).update(
        measurements={**previous, "status": "measuring", "requested_at": timezone.now().isoformat()})
    try:
        result = measure_node(
            tokenizer_gguf=demo_model_path(), device=worker_device,
            jobs_running=lambda: Job.objects.filter(worker=hostname, status=Job.Status.RUNNING).count())
        result["status"] = "done"
        Worker.objects.filter(hostname=hostname).update(measurements=result, measured_at=timezone.now())
    except Exception as exc:   # stored and shown; the worker keeps running
        logger.exception("node measurement failed")
        result = {**previous, "status": "failed", "error": f"{type(exc).__name__}: {exc}"[:2000]}
        Worker.objects.filter(hostname=hostname).update(measurements=result)
    finally:
        close_old_connections()
    return result
