"""Check the planner's estimates against real runtimes on the demo model (SmolLM2-135M-Instruct).

    python bench/estimator_accuracy.py [--no-save] [--workdir DIR]

llama.cpp (llama-cpp-python): F16, Q8_0, Q4_K_M GGUFs at contexts 512, 2048, 8192 with KV f16 and
q8_0 (q8_0 V needs flash attention, so those runs set it). Compared: the model/KV/compute buffer sizes
llama.cpp prints when verbose ("CPU_Mapped model buffer size = …", "CPU KV buffer size = …",
"CPU compute buffer size = …"), the file size, and the process peak RSS.
transformers: an fp32 HF folder made from the demo GGUF, loaded as fp32, bf16, bnb int8 and bnb NF4;
compared: `model.get_memory_footprint()` and peak RSS (bnb runs keep the other tensors in bf16).

Every configuration runs in its own subprocess (one model load per context) so peak RSS
(VmHWM) is that configuration's alone. Rows are printed as a table and saved
to planner/measured.json — "the measured error on record" the planner page shows beside its estimate.
error % = (estimate − measured) / measured × 100.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MiB = 2**20
GGUF_TYPES = ["F16", "Q8_0", "Q4_K_M"]
CONTEXTS = [512, 2048, 8192]
KV_TYPES = ["f16", "q8_0"]
HF_SCHEMES = ["FP32", "BF16", "INT8", "NF4"]
LLAMA_FTYPE = {"F16": 1, "Q8_0": 7, "Q4_K_M": 15}  # llama_ftype: MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_Q4_K_M
GGML_TYPE_Q8_0 = 8
BUFFER_RE = re.compile(r"(\S+)\s+(model|KV|compute|output) buffer size =\s+([\d.]+) MiB")
PROMPT = "The planner estimates how much memory a language model needs. " * 4


def peak_rss() -> int:
    """This process's peak RSS: VmHWM from /proc (getrusage's ru_maxrss survives execve on Linux, so a
    child started by a parent that had loaded torch would report the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ----------------------------------------------------------------------------- children

def child_llama(gguf: str, ctx: int, kv: str) -> dict:
    import llama_cpp

    base = peak_rss()
    kwargs = {"flash_attn": True, "type_k": GGML_TYPE_Q8_0, "type_v": GGML_TYPE_Q8_0} if kv == "q8_0" else {}
    llm = llama_cpp.Llama(model_path=gguf, n_ctx=ctx, n_threads=2, verbose=True, **kwargs)
    tokens = llm.tokenize(PROMPT.encode())
    llm.eval(tokens[:64])
    return {"rss_base": base, "rss_peak": peak_rss(), "n_ctx": llm.n_ctx()}


def child_hf(folder: str, scheme: str) -> dict:
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
    footprint = int(model.get_memory_footprint())
    ids = AutoTokenizer.from_pretrained(folder)(PROMPT, return_tensors="pt").input_ids[:, :64]
    with torch.no_grad():
        model(ids)
    return {"rss_base": base, "rss_peak": peak_rss(), "footprint": footprint}


def run_child(args: list[str]) -> tuple[dict, str]:
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.run([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, stderr=err,
                              text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "2"})
        err.seek(0)
        log = err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed: {log[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), log


def llama_buffers(log: str) -> dict[str, int]:
    """Sums llama.cpp's reported buffers by kind (model buffers include CPU_Mapped and CPU_REPACK)."""
    out = {"model": 0, "KV": 0, "compute": 0, "output": 0}
    for _, kind, mib in BUFFER_RE.findall(log):
        out[kind] += int(round(float(mib) * MiB))
    return out


# ----------------------------------------------------------------------------- parent

def prepare(workdir: Path) -> tuple[dict[str, Path], Path]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantdash.settings")
    django.setup()
    from catalog.services import demo_model_path

    demo = demo_model_path()
    ggufs: dict[str, Path] = {}
    for t in GGUF_TYPES:
        cached = Path(f"/tmp/qv/smol-{t}.gguf")
        if cached.is_file():
            ggufs[t] = cached
            continue
        import llama_cpp

        out = workdir / f"smol-{t}.gguf"
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = LLAMA_FTYPE[t]
        params.allow_requantize = True
        params.nthread = 2
        if llama_cpp.llama_model_quantize(str(demo).encode(), str(out).encode(), params) != 0:
            raise RuntimeError(f"llama_model_quantize to {t} failed")
        ggufs[t] = out
    hf = workdir / "hf-f32"
    if not (hf / "config.json").is_file():
        from catalog.dequantize import dequantize_gguf

        dequantize_gguf(demo, hf, "float32")
    return ggufs, hf


def pct(estimate: int, measured: int) -> float:
    return round((estimate - measured) / measured * 100, 1) if measured else float("nan")


def row(runtime: str, scheme: str, context: int, kv: str, metric: str, est: int, meas: int, arch) -> dict:
    return {"model": "SmolLM2-135M-Instruct", "total_params": arch.total_params, "runtime": runtime,
            "scheme": scheme, "context": context, "kv_dtype": kv, "metric": metric, "estimate_bytes": int(est),
            "measured_bytes": int(meas), "error_pct": pct(est, meas)}


def measure_llama(ggufs: dict[str, Path], arch) -> list[dict]:
    from planner.estimator import HARDWARE_PROFILES, Workload, estimate

    hw = HARDWARE_PROFILES["cpu-2core-24gb"]
    rows = []
    for t, path in ggufs.items():
        for ctx in CONTEXTS:
            for kv in KV_TYPES:
                data, log = run_child(["llama", str(path), str(ctx), kv])
                buf = llama_buffers(log)
                wl = Workload(runtime="llama.cpp", context=ctx, kv_dtype=kv, flash_attn=kv != "f16")
                e = estimate(arch, hw, wl, schemes=[t]).rows[0]
                measured_total = buf["model"] + buf["KV"] + buf["compute"] + buf["output"]
                est_buffers = e["weights_bytes"] + e["kv_cache_bytes"] + e["compute_bytes"]
                rows += [row("llama.cpp", t, ctx, kv, "weights", e["weights_bytes"], buf["model"], arch),
                         row("llama.cpp", t, ctx, kv, "kv", e["kv_cache_bytes"], buf["KV"], arch),
                         row("llama.cpp", t, ctx, kv, "compute", e["compute_bytes"], buf["compute"], arch),
                         row("llama.cpp", t, ctx, kv, "buffers", est_buffers, measured_total, arch),
                         row("llama.cpp", t, ctx, kv, "rss", e["total_bytes"], data["rss_peak"], arch)]
                if ctx == CONTEXTS[0] and kv == "f16":
                    rows.append(row("llama.cpp", t, 0, "-", "file", e["weights_bytes"], path.stat().st_size, arch))
                print(f"  llama.cpp {t:7} ctx {ctx:5} KV {kv:5}: buffers {measured_total / MiB:8.2f} MiB "
                      f"(est {est_buffers / MiB:8.2f}), RSS {data['rss_peak'] / MiB:7.1f} MiB", flush=True)
    return rows


def measure_hf(folder: Path, arch) -> list[dict]:
    from planner.estimator import HARDWARE_PROFILES, Workload, estimate

    hw = HARDWARE_PROFILES["cpu-2core-24gb"]
    rows = []
    for scheme in HF_SCHEMES:
        data, _ = run_child(["hf", str(folder), scheme])
        e = estimate(arch, hw, Workload(runtime="transformers", context=512), schemes=[scheme]).rows[0]
        rows += [row("transformers", scheme, 512, "f16", "weights", e["weights_bytes"], data["footprint"], arch),
                 row("transformers", scheme, 512, "f16", "rss", e["total_bytes"], data["rss_peak"], arch)]
        print(f"  transformers {scheme:5}: footprint {data['footprint'] / MiB:8.2f} MiB "
              f"(est {e['weights_bytes'] / MiB:8.2f}), RSS {data['rss_peak'] / MiB:7.1f} MiB", flush=True)
    return rows


def print_table(rows: list[dict]) -> str:
    lines = ["| runtime | scheme | ctx | KV | metric | estimate MiB | measured MiB | error % |",
             "|---|---|---:|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['runtime']} | {r['scheme']} | {r['context'] or '–'} | {r['kv_dtype']} | {r['metric']} | "
                     f"{r['estimate_bytes'] / MiB:.2f} | {r['measured_bytes'] / MiB:.2f} | {r['error_pct']:+.1f} |")
    text = "\n".join(lines)
    print(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs="+")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = child_llama(rest[0], int(rest[1]), rest[2]) if kind == "llama" else child_hf(rest[0], rest[1])
        print(json.dumps(result))
        return
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="qd-accuracy-") as tmp:
        workdir = args.workdir or Path(tmp)
        ggufs, hf = prepare(workdir)
        from planner.estimator import Architecture

        arch = Architecture.from_config(json.loads((hf / "config.json").read_text()), name="SmolLM2-135M-Instruct")
        print(f"model: {arch.total_params:,} parameters; GGUFs {', '.join(ggufs)}; HF folder {hf}", flush=True)
        rows = measure_llama(ggufs, arch) + measure_hf(hf, arch)
    print()
    print_table(rows)
    elapsed = time.monotonic() - start
    print(f"\n{len(rows)} rows in {elapsed:.0f} s")
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
