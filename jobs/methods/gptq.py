"""GPTQ quantization through GPTQModel (auto-gptq is archived and transformers 5 dropped it).

Recipe (GPTQModel 7.7.0, CPU): `GPTQModel.load(hf_dir, QuantizeConfig(bits=, group_size=,
desc_act=, sym=, damp_percent=))` → `.quantize([{"input_ids": [...], "attention_mask": [...]}, ...])`
→ `.save(out)` (safetensors with qweight/qzeros/scales/g_idx per block linear, quantize_config.json,
the quantization_config in config.json, tokenizer, and GPTQModel's per-module `quant_log.csv`).
Load back with `GPTQModel.load(out, device="cpu")` (TorchAtenLinear kernel on CPU).

Gotchas: GPTQModel raises on machines with fewer cores than its default CPU worker count unless
GPTQMODEL_CPU_WORKERS is set (2 on a 2-core node); the first quantize on a machine compiles a
CPU packing extension (~30 s); a group size that does not divide a layer's input width makes a
checkpoint the CPU kernels refuse to load (SmolLM2's 576-wide layers need g64, not g128), which
validate() refuses up front.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from jobs.methods import hf_common
from jobs.methods.base import JobError, Method, Output, RunContext
from engines import gpu

BITS = (2, 3, 4, 8)
# GPTQModel 7.7.0's default for METHOD.GPTQ (quantization/config.py, _default_damp_percent).
DAMP_PERCENT = 0.05
# Calibration defaults, the same for the web form, the API and the CLI (all go through validate()):
# sized for a CPU node, where time grows with samples × seq_len. SmolLM2-135M on 2 cores took
# 2 min 52 s at 16 × 256 and about 25 min at GPTQModel's usual 128 × 512.
DEFAULT_SAMPLES = 16
DEFAULT_SEQ_LEN = 256
_PARAMS = {"bits", "group_size", "desc_act", "sym", "damp_percent", "dataset_path", "samples", "seq_len"}
# Share of the job's progress each phase takes; quantize advances per decoder layer.
_LOAD_END, _QUANTIZE_END = 0.1, 0.9


class GPTQMethod(Method):
    name = "gptq"
    kind = "quantize"
    devices = ("cpu", "cuda")
    input_formats = ("hf",)
    soft_time_limit = 4 * 3600
    hard_time_limit = 8 * 3600
    child_env = {"GPTQMODEL_CPU_WORKERS": "2"}

    # ---- web process ----
    def validate(self, params: dict, variant) -> dict:
        params = dict(params or {})
        hf_common.reject_unknown(params, _PARAMS)
        hf_common.require_hf_input(variant, self.name)
        cfg = hf_common.model_config(variant)
        shapes = hf_common.linear_shapes(cfg)
        hf_common.param_counts(cfg)

        bits = hf_common.clean_number(params, "bits", 4, kind=int)
        if bits not in BITS:
            raise JobError.field("bits", f"must be one of {', '.join(map(str, BITS))}; got {bits}")
        group_size = hf_common.clean_number(params, "group_size", 128, kind=int)
        if group_size != -1 and group_size <= 0:
            raise JobError.field("group_size", f"must be -1 (one group per row) or a positive integer; got {group_size}")
        if group_size != -1:
            self._check_group_size(group_size, shapes)
        dataset_path = params.get("dataset_path")
        if not isinstance(dataset_path, str) or not dataset_path.strip():
            raise JobError.field("dataset_path", "choose a calibration text file")
        # Existence is checked in run(): the file lives on the worker, not necessarily here.
        return {
            "bits": bits,
            "group_size": group_size,
            "desc_act": hf_common.clean_bool(params, "desc_act", False),
            "sym": hf_common.clean_bool(params, "sym", True),
            "damp_percent": hf_common.clean_number(params, "damp_percent", DAMP_PERCENT, low=0, high=1,
                                                   low_open=True, high_open=True),
            "dataset_path": dataset_path.strip(),
            "samples": hf_common.clean_number(params, "samples", DEFAULT_SAMPLES, kind=int, low=1, high=1024),
            "seq_len": hf_common.clean_number(params, "seq_len", DEFAULT_SEQ_LEN, kind=int, low=16, high=4096),
        }

    @staticmethod
    def _check_group_size(group_size: int, shapes: dict[str, tuple[int, int]]) -> None:
        for module, (width, _) in shapes.items():
            if width % group_size:
                fits = [g for g in (32, 64, 128, 192, 256) if width % g == 0 and g != group_size]
                near = sorted(fits, key=lambda g: abs(g - group_size))[:2]
                hint = f"; try {' or '.join(map(str, sorted(near)))}" if near else "; try -1"
                raise JobError.field(
                    "group_size",
                    f"group_size {group_size} does not divide model.layers.*.{module} input width "
                    f"{width}{hint} (a checkpoint whose groups do not divide every layer fails to load "
                    f"on the CPU kernels)")

    def estimate(self, params: dict, variant) -> dict:
        """output_bytes: the planner's GPTQ formula (qweight + qzeros + fp16 scales + int32 g_idx per
        block linear, the rest at 2 bytes), or the same formula here for group_size -1.

        peak_memory_bytes = whole model in 16-bit (GPTQModel loads it on the CPU) + calibration
        activations (samples × seq_len × hidden × 4 B, kept as layer inputs and outputs: × 2)
        + one layer's Hessians (in² × 4 B per linear) + one MLP activation (seq_len × inter × 4 B
        × 3) + the packed output + runtime overhead (hf_common). Measured for SmolLM2-135M (float32
        checkpoint, 8 × 64 calibration tokens, 4-bit g64): 1.63 GB peak RSS; GPTQModel copies the
        weights to 16-bit, so the source checkpoint's pages do not stay resident."""
        cfg = hf_common.model_config(variant)
        shapes = hf_common.linear_shapes(cfg)
        linear, other = hf_common.param_counts(cfg)
        bits, group = int(params.get("bits", 4)), int(params.get("group_size", 128))
        samples = int(params.get("samples", DEFAULT_SAMPLES))
        seq_len = int(params.get("seq_len", DEFAULT_SEQ_LEN))
        output = hf_common.planner_weight_bytes(cfg, f"GPTQ-{bits}bit-g{group}") if group > 0 else None
        if output is None:
            output = other * 2
            for din, dout in shapes.values():
                groups = 1 if group <= 0 else -(-din // group)
                per = din * dout * bits // 8 + groups * dout * bits // 8 + groups * dout * 2 + din * 4
                output += per * cfg["num_hidden_layers"]
        model = (linear + other) * 2
        activations = samples * seq_len * cfg["hidden_size"] * 4 * 2
        hessians = sum(din * din * 4 for din, _ in shapes.values())
        mlp = seq_len * cfg["intermediate_size"] * 4 * 3
        peak = model + activations + hessians + mlp + output + hf_common.RUNTIME_OVERHEAD_BYTES
        return {"peak_memory_bytes": int(peak), "output_bytes": int(output)}

    # ---- child process ----
    def run(self, ctx: RunContext) -> list[Output]:
        p = ctx.params

        def config(offload: Path):
            from gptqmodel import QuantizeConfig

            return QuantizeConfig(bits=p["bits"], group_size=p["group_size"], desc_act=p["desc_act"],
                                  sym=p["sym"], damp_percent=p["damp_percent"],
                                  offload_to_disk_path=str(offload))

        quant_type = f"{p['bits']}bit-g{p['group_size']}" + ("-act" if p["desc_act"] else "")
        return quantize_with_gptqmodel(ctx, self, config, quant_type=quant_type)


def quantize_with_gptqmodel(ctx: RunContext, method: Method, config, *, quant_type: str) -> list[Output]:
    """The child's run for a GPTQModel method (GPTQ, AWQ): calibration windows from the dataset,
    GPTQModel.load with `config(offload_folder)` on the node's device (a cuda node checks its GPU
    before anything loads and never falls back to the CPU), layer progress, save, and the variant
    in `method.name`'s format."""
    for key, value in method.child_env.items():
        os.environ.setdefault(key, value)
    p = ctx.params
    input_dir, workdir = Path(ctx.input_dir), Path(ctx.workdir)
    out, offload = workdir / "out", workdir / "offload"
    dataset = Path(p["dataset_path"])
    if not dataset.is_file():
        raise JobError.field("dataset_path", f"calibration file not found on this worker: {dataset}")
    device = "cpu"
    if ctx.device == "cuda":  # before anything loads: a cuda node never falls back to the CPU
        ctx.log(f"{method.name.upper()} on {gpu.require_gpu(node=ctx.node, need_bytes=ctx.peak_memory_bytes)}")
        device = "cuda"  # GPTQModel's CUDA path: Hessians and packing on the GPU

    ctx.progress(0.0, "load")
    from gptqmodel import GPTQModel
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(input_dir))
    calibration = calibration_samples(tokenizer, dataset, p["samples"], p["seq_len"])
    model = GPTQModel.load(str(input_dir), config(offload), device=device, trust_remote_code=False)
    ctx.progress(_LOAD_END, "load")
    model.layer_callback = LayerProgress(ctx, model.model.config.num_hidden_layers)
    ctx.progress(_LOAD_END, "quantize")
    model.quantize(calibration, batch_size=1)
    ctx.progress(_QUANTIZE_END, "save")
    model.save(str(out))
    shutil.rmtree(offload, ignore_errors=True)
    if not (out / "tokenizer_config.json").exists():
        hf_common.save_tokenizer(input_dir, out)
    bpw, metrics = hf_common.bits_per_weight(input_dir, out)
    metrics["calibration_tokens"] = sum(len(s["input_ids"]) for s in calibration)
    ctx.progress(1.0, "save")
    return [Output(key="main", format=method.name, quant_type=quant_type, directory=str(out),
                   bits_per_weight=bpw, params={**p, "device": device}, metrics=metrics,
                   tool_versions=hf_common.versions("gptqmodel", "transformers", "torch"))]


class LayerProgress:
    """GPTQModel's layer-complete callback (looper/module_looper.py `callbackup`, looked up as
    `model.layer_callback`) → ctx.progress("quantize"). It is called once when a layer's linears
    are quantized (submodule_finalized=False) and again, possibly from a finalizer thread, when
    they are packed; progress only moves forward."""

    def __init__(self, ctx: RunContext, n_layers: int):
        self.ctx, self.n_layers = ctx, max(n_layers, 1)
        self.done = 0.0
        self.lock = threading.Lock()

    def layer_complete(self, *, layer_idx, submodule_finalized: bool) -> None:
        if not isinstance(layer_idx, int):
            return  # embeddings / lm_head passes (not quantized by this method)
        fraction = _LOAD_END + (_QUANTIZE_END - _LOAD_END) * min(layer_idx + 1, self.n_layers) / self.n_layers
        with self.lock:
            if fraction <= self.done:
                return
            self.done = fraction
        self.ctx.progress(fraction, "quantize")


def calibration_samples(tokenizer, path: Path, samples: int, seq_len: int) -> list[dict]:
    """`samples` consecutive windows of exactly `seq_len` tokens from the text file.

    Reads only as much text as needed (≈ 8 characters per token to start, doubling)."""
    needed = samples * seq_len
    chars = needed * 8
    while True:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(chars)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) >= needed or len(text) < chars:
            break
        chars *= 2
    if len(ids) < needed:
        raise JobError.field("samples", f"{path.name} has {len(ids):,} tokens; {samples} × {seq_len} "
                                        f"= {needed:,} needed — lower samples or seq_len")
    return [{"input_ids": ids[i * seq_len:(i + 1) * seq_len], "attention_mask": [1] * seq_len}
            for i in range(samples)]


METHODS = {"gptq": GPTQMethod()}
