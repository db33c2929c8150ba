"""Check the planner's estimates against real runtimes: the demo model and tiny MoE/MLA/SWA/hybrid models.

    python bench/estimator_accuracy.py [--no-save] [--workdir DIR] [--only demo,hf,tiny]

Demo model (SmolLM2-135M-Instruct), llama.cpp (llama-cpp-python): F16, Q8_0, Q4_K_M GGUFs at
contexts 512, 2048, 8192 with KV f16 and q8_0 (q8_0 V needs flash attention, so those runs set
it). transformers: a bf16 HF folder made from the demo GGUF, loaded as fp32, bf16, bnb int8 and
NF4 on the CPU, with a 512-token forward.
Tiny random-weight instances of the architectures bench/moe_mla_ground_truth.py,
bench/swa_ground_truth.py and bench/hybrid_ground_truth.py (when present) build: converted with
the vendored convert_hf_to_gguf.py, quantized to Q4_K_M, loaded at n_ctx 2048 (SWA models with
swa_full on and off).

Each llama.cpp run loads the model in its own subprocess and then fills the whole context
(ubatches of 512), so the last ubatch attends over every cell — the graph llama.cpp reserved its
compute buffer for — and peak RSS (VmHWM) is that configuration's worst case. Compared: the
buffers llama.cpp logs ("CPU_Mapped/CPU_REPACK model buffer size", "KV", "RS", "compute"), the
GGUF tensor bytes (gguf.GGUFReader), and peak RSS against the planner's total. `overhead` rows are
peak RSS minus the planner's non-overhead parts: the measured process overhead that
planner/estimator/repack.py (llama.cpp) and memory.py (transformers) cite.
Rows are printed as a table, the worst error per architecture against the targets, and saved to
planner/measured.json. error % = (estimate − measured) / measured × 100. Raw child results are
cached in WORKDIR/raw.json, so re-running with --workdir only recomputes the estimates.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MiB = 2**20
GGUF_TYPES = ["F16", "Q8_0", "Q4_K_M"]
CONTEXTS = [512, 2048, 8192]
KV_TYPES = ["f16", "q8_0"]
HF_SCHEMES = ["FP32", "BF16", "INT8", "NF4"]
LLAMA_FTYPE = {"F16": 1, "Q8_0": 7, "Q4_K_M": 15}  # llama_ftype: MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_Q4_K_M
GGML_TYPE_Q8_0 = 8
TINY_CTX = 2048
BUFFER_RE = re.compile(r"(\S+)\s+(model|KV|RS|compute|output) buffer size =\s+([\d.]+) MiB")
PROMPT = "The planner estimates how much memory a language model needs. " * 4
# metric -> target |error| % (the targets); "rss" is the planner's total against peak RSS
TARGETS = {"file": 0.1, "model": 1.0, "kv": 1.0, "compute": 5.0, "rss": 10.0}


def peak_rss() -> int:
    """This process's peak RSS: VmHWM from /proc (getrusage's ru_maxrss survives execve on Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


# ----------------------------------------------------------------------------- children

def child_llama(gguf: str, ctx: int, kv: str, swa_full: bool = True) -> dict:
    import llama_cpp

    base = peak_rss()
    kwargs = {"flash_attn": True, "type_k": GGML_TYPE_Q8_0, "type_v": GGML_TYPE_Q8_0} if kv == "q8_0" else {}
    llm = llama_cpp.Llama(model_path=gguf, n_ctx=ctx, n_threads=2, verbose=True, swa_full=swa_full, **kwargs)
    loaded = peak_rss()
    tokens = llm.tokenize(PROMPT.encode())
    llm.eval((tokens * (ctx // len(tokens) + 1))[:llm.n_ctx()])
    return {"rss_base": base, "rss_loaded": loaded, "rss_peak": peak_rss(), "n_ctx": llm.n_ctx()}


def child_hf(folder: str, scheme: str, n_tokens: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    base = peak_rss()
    kwargs: dict = {"device_map": "cpu"}
    if scheme == "FP32":
        kwargs["dtype"] = torch.float32
    elif scheme == "BF16":
        kwargs["dtype"] = torch.bfloat16
    elif scheme == "INT8":  # non-quantized tensors (embeddings, norms) in bf16, as the estimator assumes
        kwargs.update(dtype=torch.bfloat16, quantization_config=BitsAndBytesConfig(load_in_8bit=True))
    else:
        kwargs.update(dtype=torch.bfloat16, quantization_config=BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16))
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    loaded = peak_rss()
    footprint = int(model.get_memory_footprint()) + quant_state_bytes(model)
    ids = AutoTokenizer.from_pretrained(folder)(PROMPT * 40, return_tensors="pt").input_ids[:, :n_tokens]
    with torch.no_grad():
        model(ids)
    return {"rss_base": base, "rss_loaded": loaded, "rss_peak": peak_rss(), "footprint": footprint}


def quant_state_bytes(model) -> int:
    """Bytes of bitsandbytes' quantization state, which get_memory_footprint() leaves out (it sums
    parameters and buffers; the state hangs off each weight as attributes): Linear4bit's
    weight.quant_state (absmax, its nested absmax and code with double quantization, the NF4 code)
    and Linear8bitLt's weight.SCB (one fp32 scale per output row)."""
    seen, total = set(), 0

    def count(t) -> None:
        nonlocal total
        if t is not None and id(t) not in seen:
            seen.add(id(t))
            total += t.nelement() * t.element_size()

    for module in model.modules():
        weight = getattr(module, "weight", None)
        state = getattr(weight, "quant_state", None)
        if state is not None:
            count(state.absmax)
            count(getattr(state, "code", None))
            nested = getattr(state, "state2", None)
            if nested is not None:
                count(nested.absmax)
                count(getattr(nested, "code", None))
        count(getattr(weight, "SCB", None))
    return total


def run_child(args: list[str]) -> dict:
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.run([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, stderr=err,
                              text=True, timeout=1800, env={**os.environ, "OMP_NUM_THREADS": "2"})
        err.seek(0)
        log = err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed: {log[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    data["buffers"] = llama_buffers(log)
    return data


def llama_buffers(log: str) -> dict[str, int]:
    """Sums llama.cpp's reported buffers by kind (model buffers include CPU_Mapped and CPU_REPACK)."""
    out = {"model": 0, "KV": 0, "RS": 0, "compute": 0, "output": 0, "repack": 0}
    for name, kind, mib in BUFFER_RE.findall(log):
        out[kind] += int(round(float(mib) * MiB))
        if name == "CPU_REPACK":
            out["repack"] += int(round(float(mib) * MiB))
    return out


class Raw:
    """Child results cached in WORKDIR/raw.json by configuration key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = json.loads(path.read_text()) if path.is_file() else {}

    def get(self, key: str, args: list[str]) -> dict:
        if key not in self.data:
            started = time.monotonic()
            self.data[key] = run_child(args)
            self.data[key]["seconds"] = round(time.monotonic() - started, 1)
            self.path.write_text(json.dumps(self.data, indent=1))
        return self.data[key]


# ----------------------------------------------------------------------------- parent

def pct(estimate: int, measured: int) -> float:
    return round((estimate - measured) / measured * 100, 2) if measured else float("nan")


def row(model: str, arch, runtime: str, scheme: str, context: int, kv: str, metric: str, est: int, meas: int,
        **extra) -> dict:
    return {"model": model, "total_params": arch.total_params, "runtime": runtime, "scheme": scheme,
            "context": context, "kv_dtype": kv, "metric": metric, "estimate_bytes": int(est),
            "measured_bytes": int(meas), "error_pct": pct(est, meas), **extra}


def llama_rows(model: str, family: str, arch, scheme: str, ctx: int, kv: str, data: dict, gguf: Path,
               swa_full: bool = True) -> list[dict]:
    from gguf import GGUFReader

    from planner.estimator import HARDWARE_PROFILES, Workload, estimate
    from planner.estimator.repack import mapped_bytes

    hw = HARDWARE_PROFILES["cpu-2core-24gb"]
    wl = Workload(runtime="llama.cpp", context=ctx, kv_dtype=kv, flash_attn=kv != "f16", swa_full=swa_full)
    e = estimate(arch, hw, wl, schemes=[scheme]).rows[0]
    buf = data["buffers"]
    tag = {"family": family, "swa_full": swa_full}
    non_overhead = e.total_bytes - e.overhead_bytes
    model_est = mapped_bytes(arch, scheme) + e.repack_bytes   # CPU_Mapped span + CPU_REPACK
    rows = [row(model, arch, "llama.cpp", scheme, ctx, kv, "model", model_est, buf["model"], **tag),
            row(model, arch, "llama.cpp", scheme, ctx, kv, "kv", e.kv_cache_bytes, buf["KV"], **tag),
            row(model, arch, "llama.cpp", scheme, ctx, kv, "compute", e.compute_bytes, buf["compute"], **tag),
            row(model, arch, "llama.cpp", scheme, ctx, kv, "buffers",
                model_est + e.kv_cache_bytes + e.recurrent_state_bytes + e.compute_bytes,
                buf["model"] + buf["KV"] + buf["RS"] + buf["compute"] + buf["output"], **tag),
            row(model, arch, "llama.cpp", scheme, ctx, kv, "rss", e.total_bytes, data["rss_peak"], **tag),
            *([row(model, arch, "llama.cpp", scheme, ctx, kv, "recurrent state", e.recurrent_state_bytes,
                   buf["RS"], **tag)] if buf["RS"] else []),
            row(model, arch, "llama.cpp", scheme, ctx, kv, "overhead", e.overhead_bytes,
                data["rss_peak"] - non_overhead, **tag)]
    if ctx == min(CONTEXTS[0], TINY_CTX) or family != "dense":
        if kv == "f16" and swa_full:
            tensors = sum(int(t.n_bytes) for t in GGUFReader(str(gguf)).tensors)
            rows.append(row(model, arch, "llama.cpp", scheme, 0, "-", "file", e.weights_bytes, tensors, **tag))
    return rows


def prepare_demo(workdir: Path) -> tuple[dict[str, Path], Path]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantdash.settings")
    django.setup()
    import llama_cpp

    from formats.dequantize import dequantize_gguf
    from catalog.services import demo_model_path

    demo = demo_model_path()
    ggufs = {t: quantize(demo, workdir / f"smol-{t}.gguf", t, llama_cpp) for t in GGUF_TYPES}
    hf = workdir / "hf-bf16"   # a 16-bit checkpoint, as Hugging Face repos ship (the planner assumes so)
    if not (hf / "config.json").is_file():
        dequantize_gguf(demo, hf, "bfloat16")
    return ggufs, hf


def quantize(src: Path, out: Path, ftype: str, llama_cpp) -> Path:
    if not out.is_file():
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = LLAMA_FTYPE[ftype]
        params.allow_requantize = True
        params.nthread = 2
        if llama_cpp.llama_model_quantize(str(src).encode(), str(out).encode(), params) != 0:
            raise RuntimeError(f"llama_model_quantize of {src} to {ftype} failed")
    return out


def measure_demo(raw: Raw, ggufs: dict[str, Path], arch) -> list[dict]:
    rows = []
    for t, path in ggufs.items():
        for ctx in CONTEXTS:
            for kv in KV_TYPES:
                data = raw.get(f"demo {t} {ctx} {kv}", ["llama", str(path), str(ctx), kv])
                new = llama_rows("SmolLM2-135M-Instruct", "dense", arch, t, ctx, kv, data, path)
                rows += new
                print(f"  llama.cpp {t:7} ctx {ctx:5} KV {kv:5}: "
                      + ", ".join(f"{r['metric']} {r['error_pct']:+.2f} %" for r in new), flush=True)
    return rows


def measure_hf(raw: Raw, folder: Path, arch) -> list[dict]:
    from planner.estimator import HARDWARE_PROFILES, Workload, estimate

    hw = HARDWARE_PROFILES["cpu-2core-24gb"]
    rows = []
    for scheme in HF_SCHEMES:
        data = raw.get(f"hf-bf16 {scheme} 512", ["hf", str(folder), scheme, "512"])
        e = estimate(arch, hw, Workload(runtime="transformers", context=512), schemes=[scheme]).rows[0]
        m, tag = "SmolLM2-135M-Instruct", {"family": "dense"}
        rows += [row(m, arch, "transformers", scheme, 512, "f16", "weights", e.weights_bytes, data["footprint"],
                     **tag),
                 row(m, arch, "transformers", scheme, 512, "f16", "rss", e.total_bytes, data["rss_peak"], **tag),
                 row(m, arch, "transformers", scheme, 512, "f16", "overhead", e.overhead_bytes,
                     data["rss_peak"] - (e.total_bytes - e.overhead_bytes), **tag)]
        print(f"  transformers {scheme:5}: footprint {data['footprint'] / MiB:8.2f} MiB "
              f"(est {e.weights_bytes / MiB:8.2f}), RSS {data['rss_peak'] / MiB:7.1f} MiB "
              f"(est {e.total_bytes / MiB:7.1f})", flush=True)
    return rows


def tiny_models() -> dict[str, tuple]:
    """name -> (config class, architecture, fields, family) from the ground-truth benches."""
    import moe_mla_ground_truth
    import swa_ground_truth

    out = {name: (*spec, "moe-mla" if "deepseek" in name else "moe")
           for name, spec in moe_mla_ground_truth.TINY.items()}
    out.update({name: (*spec, "swa") for name, spec in swa_ground_truth.TINY.items()})
    try:
        import hybrid_ground_truth
    except ImportError:
        print("  (bench/hybrid_ground_truth.py not there yet: no hybrid rows)")
    else:
        out.update({name: (*spec[:3], "hybrid") for name, spec in hybrid_ground_truth.TINY.items()})
    return out


def build_and_convert(name: str, family: str, workdir: Path, f16: Path) -> Path:
    """The tiny model's HF folder and F16 GGUF, made as its ground-truth bench makes them."""
    import moe_mla_ground_truth as base

    if family == "hybrid":   # published config spellings and converter patches (see that bench)
        import hybrid_ground_truth as hybrid

        folder, _ = hybrid.build(name, workdir)
        hybrid.convert(name, folder, f16)
        return folder
    folder, _ = base.build(name, workdir)
    subprocess.run([sys.executable, str(base.CONVERTER), str(folder), "--outtype", "f16", "--outfile", str(f16)],
                   check=True, capture_output=True)
    return folder


def measure_tiny(raw: Raw, workdir: Path) -> list[dict]:
    import llama_cpp
    import moe_mla_ground_truth as base

    from planner.estimator import Architecture

    rows = []
    models = tiny_models()
    base.TINY.update({k: v[:3] for k, v in models.items() if v[3] != "hybrid"})
    for name, (*_, family) in models.items():
        f16 = workdir / f"{name}-F16.gguf"
        folder = workdir / name
        try:
            if not f16.is_file():
                folder = build_and_convert(name, family, workdir, f16)
            q4 = quantize(f16, workdir / f"{name}-Q4_K_M.gguf", "Q4_K_M", llama_cpp)
            cfg = json.loads((folder / "config.json").read_text())
            if name.startswith("qwen3-next"):
                cfg["mtp_num_hidden_layers"] = 0   # hybrid_ground_truth converts it with --no-mtp
            arch = Architecture.from_config(cfg, name=name)
            for swa_full in ((True, False) if family == "swa" else (True,)):
                data = raw.get(f"tiny {name} {swa_full}", ["llama", str(q4), str(TINY_CTX), "f16", str(int(swa_full))])
                new = llama_rows(name, family, arch, "Q4_K_M", TINY_CTX, "f16", data, q4, swa_full)
                rows += new
                print(f"  {name:18} swa_full={swa_full!s:5}: "
                      + ", ".join(f"{r['metric']} {r['error_pct']:+.2f} %" for r in new), flush=True)
        except Exception as exc:  # one architecture failing must not hide the others
            print(f"  {name}: FAILED {type(exc).__name__}: {str(exc)[-300:]}", flush=True)
    return rows


def print_table(rows: list[dict]) -> None:
    print("| model | runtime | scheme | ctx | KV | metric | estimate MiB | measured MiB | error % |")
    print("|---|---|---|---:|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['runtime']} | {r['scheme']} | {r['context'] or '–'} | {r['kv_dtype']} | "
              f"{r['metric']} | {r['estimate_bytes'] / MiB:.2f} | {r['measured_bytes'] / MiB:.2f} | "
              f"{r['error_pct']:+.2f} |")


def print_worst(rows: list[dict]) -> None:
    """The worst |error| per architecture and metric, against the targets."""
    print("\n| architecture | runtime | " + " | ".join(f"{m} (±{t:g} %)" for m, t in TARGETS.items()) + " |")
    print("|---|---|" + "---:|" * len(TARGETS))
    for key in sorted({(r["model"], r["runtime"]) for r in rows}):
        cells = []
        for metric, target in TARGETS.items():
            errs = [r["error_pct"] for r in rows if (r["model"], r["runtime"]) == key and r["metric"] == metric]
            if metric == "model" and key[1] == "transformers":
                errs = [r["error_pct"] for r in rows if (r["model"], r["runtime"]) == key and r["metric"] == "weights"]
            worst = max(errs, key=abs) if errs else None
            cells.append("–" if worst is None else f"{worst:+.2f}{'' if abs(worst) <= target else ' ✗'}")
        print(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    from planner.estimator.cpu_process import LLAMA_CPP_PROCESS_BYTES, TRANSFORMERS_PROCESS_BYTES

    for runtime, cited in (("llama.cpp", LLAMA_CPP_PROCESS_BYTES), ("transformers", TRANSFORMERS_PROCESS_BYTES)):
        # the process part: measured overhead minus the modelled rest of it (work buffer; checkpoint pages)
        over = sorted((r["measured_bytes"] - r["estimate_bytes"] + cited) / MiB for r in rows
                      if r["metric"] == "overhead" and r["runtime"] == runtime)
        if over:
            print(f"measured {runtime} process overhead (peak RSS − everything modelled): min {over[0]:.1f}, "
                  f"median {statistics.median(over):.1f}, max {over[-1]:.1f} MiB over {len(over)} runs "
                  f"(cpu_process.py cites {cited / MiB:.0f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs="+")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--only", default="demo,hf,tiny")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "llama":
            result = child_llama(rest[0], int(rest[1]), rest[2], len(rest) < 4 or rest[3] == "1")
        else:
            result = child_hf(rest[0], rest[1], int(rest[2]))
        print(json.dumps(result))
        return
    start = time.monotonic()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="qd-accuracy-"))
    workdir.mkdir(parents=True, exist_ok=True)
    raw = Raw(workdir / "raw.json")
    parts = set(args.only.split(","))
    rows: list[dict] = []
    if parts & {"demo", "hf"}:
        ggufs, hf = prepare_demo(workdir)
        from planner.estimator import Architecture

        arch = Architecture.from_config(json.loads((hf / "config.json").read_text()), name="SmolLM2-135M-Instruct")
        print(f"demo model: {arch.total_params:,} parameters; workdir {workdir}", flush=True)
        if "demo" in parts:
            rows += measure_demo(raw, ggufs, arch)
        if "hf" in parts:
            rows += measure_hf(raw, hf, arch)
    if "tiny" in parts:
        rows += measure_tiny(raw, workdir)
    print()
    print_table(rows)
    print_worst(rows)
    print(f"\n{len(rows)} rows in {time.monotonic() - start:.0f} s")
    if not args.no_save:
        import llama_cpp
        import transformers

        out = {"date": dt.date.today().isoformat(), "command": "python bench/estimator_accuracy.py",
               "tools": {"llama_cpp_python": llama_cpp.__version__, "transformers": transformers.__version__},
               "error_pct": "(estimate - measured) / measured * 100", "rows": rows}
        (ROOT / "planner" / "measured.json").write_text(json.dumps(out, indent=1) + "\n")
        print("saved planner/measured.json")


if __name__ == "__main__":
    main()
