"""AWQ quantization (activation-aware weight scaling, 4-bit) through GPTQModel's AWQ path.

Why GPTQModel: AutoAWQ is deprecated, and llm-compressor 0.14 pins torch ≤ 2.14.0 and
transformers ≤ 5.17 (`pip install --dry-run llmcompressor` would downgrade both), while the
GPTQModel 7.7.0 already pinned for GPTQ has an AWQ processor (looper/awq_processor.py) that runs
with this torch and transformers.

Recipe (GPTQModel 7.7.0): `GPTQModel.load(hf_dir, AWQConfig(bits=4, group_size=, sym=),
device=)` → `.quantize([{"input_ids": [...], "attention_mask": [...]}, ...])` → `.save(out)`:
safetensors with qweight / qzeros / scales per block linear in the GEMM layout (the layout
AutoAWQ and transformers read), quantize_config.json and `quant_method: awq` in config.json.
`GPTQModel.load(out, device=)` loads it back (GEMM / Marlin kernels on CUDA, TorchAWQ on a CPU).

Offered on cuda nodes only: the scale search runs every layer's calibration forward once per
candidate scale, which a CPU can do for a toy model (the tests do, calling run() directly) but
not for a real one in a job's time, and AWQ checkpoints are served by CUDA kernels. A CPU-only
pool therefore refuses it at submit (no worker can run it).
"""

from __future__ import annotations

from pathlib import Path

from jobs.methods import hf_common
from jobs.methods.base import JobError, Method, Output, RunContext
from jobs.methods.gptq import DEFAULT_SAMPLES, DEFAULT_SEQ_LEN, quantize_with_gptqmodel

BITS = 4  # the GEMM / GEMV / Marlin AWQ kernels pack 4-bit weights (planner AWQ_BITS too)
# Group sizes the CUDA GEMM kernel takes (nn_modules/qlinear/gemm_awq.py SUPPORTS_GROUP_SIZE).
GROUP_SIZES = (16, 32, 64, 128)
PACK = 32 // BITS  # weights per int32: a layer's output width must be a multiple of it
# The clipping search takes output rows 64 (or 256) at a time and asserts they divide evenly
# (looper/awq_processor.py, _compute_best_clip); q_proj and k_proj are not clipped.
CLIP_ROWS = 64
_UNCLIPPED = ("self_attn.q_proj", "self_attn.k_proj")
_PARAMS = {"group_size", "zero_point", "dataset_path", "samples", "seq_len"}


class AWQMethod(Method):
    name = "awq"
    kind = "quantize"
    devices = ("cuda",)
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
        group_size = hf_common.clean_number(params, "group_size", 128, kind=int)
        if group_size not in GROUP_SIZES:
            raise JobError.field("group_size", f"must be one of {', '.join(map(str, GROUP_SIZES))} "
                                               f"(the AWQ GEMM kernel's); got {group_size}")
        check_shapes(group_size, shapes)
        dataset_path = params.get("dataset_path")
        if not isinstance(dataset_path, str) or not dataset_path.strip():
            raise JobError.field("dataset_path", "choose a calibration text file")
        return {
            "bits": BITS,
            "group_size": group_size,
            # AWQ's usual asymmetric grid (a zero point per group); False quantizes symmetrically.
            "zero_point": hf_common.clean_bool(params, "zero_point", True),
            "dataset_path": dataset_path.strip(),
            "samples": hf_common.clean_number(params, "samples", DEFAULT_SAMPLES, kind=int, low=1, high=1024),
            "seq_len": hf_common.clean_number(params, "seq_len", DEFAULT_SEQ_LEN, kind=int, low=16, high=4096),
        }

    def estimate(self, params: dict, variant) -> dict:
        """output_bytes: the planner's AWQ-4bit-g<group> formula (qweight + qzeros + fp16 scales
        per block linear, the rest at 2 bytes), or the same formula here if the planner is absent.

        peak_memory_bytes = the model in 16-bit (GPTQModel loads it whole) + calibration
        activations kept as layer inputs and outputs (samples × seq_len × hidden × 4 B × 2) + the
        scale search's inputs of the widest linear (samples × seq_len × intermediate × 4 B × 2)
        + the packed output + runtime overhead (hf_common). Not yet measured on a GPU."""
        cfg = hf_common.model_config(variant)
        shapes = hf_common.linear_shapes(cfg)
        linear, other = hf_common.param_counts(cfg)
        group = int(params.get("group_size", 128))
        samples = int(params.get("samples", DEFAULT_SAMPLES))
        seq_len = int(params.get("seq_len", DEFAULT_SEQ_LEN))
        output = hf_common.planner_weight_bytes(cfg, f"AWQ-{BITS}bit-g{group}")
        if output is None:
            output = other * 2
            for din, dout in shapes.values():
                groups = -(-din // group)
                per = din * dout * BITS // 8 + groups * dout * BITS // 8 + groups * dout * 2
                output += per * cfg["num_hidden_layers"]
        model = (linear + other) * 2
        activations = samples * seq_len * cfg["hidden_size"] * 4 * 2
        search = samples * seq_len * max(din for din, _ in shapes.values()) * 4 * 2
        peak = model + activations + search + output + hf_common.RUNTIME_OVERHEAD_BYTES
        return {"peak_memory_bytes": int(peak), "output_bytes": int(output)}

    # ---- child process ----
    def run(self, ctx: RunContext) -> list[Output]:
        p = ctx.params

        def config(offload: Path):
            from gptqmodel.quantization.config import AWQConfig

            return AWQConfig(bits=p["bits"], group_size=p["group_size"], sym=not p["zero_point"],
                             offload_to_disk_path=str(offload))

        return quantize_with_gptqmodel(ctx, self, config, quant_type=f"{p['bits']}bit-g{p['group_size']}")


def check_shapes(group_size: int, shapes: dict[str, tuple[int, int]]) -> None:
    """Every block linear's input width must be a whole number of groups (the kernels refuse a
    partial group: "in_features must be divisible by group_size"), its output width a whole
    number of packed int32 words, and of the clipping search's row batches."""
    for module, (width, _) in shapes.items():
        if width % group_size:
            fits = [g for g in GROUP_SIZES if width % g == 0]
            hint = f"; try {' or '.join(map(str, fits))}" if fits else ""
            raise JobError.field(
                "group_size", f"group_size {group_size} does not divide model.layers.*.{module} "
                              f"input width {width}{hint}")
    for module, (_, out) in shapes.items():
        if out % PACK:
            raise JobError.field(
                "input", f"model.layers.*.{module} output width {out} is not a multiple of "
                         f"{PACK}: AWQ packs {PACK} 4-bit weights per int32")
        if module not in _UNCLIPPED and out % CLIP_ROWS:
            raise JobError.field(
                "input", f"model.layers.*.{module} output width {out} is not a multiple of "
                         f"{CLIP_ROWS}: AWQ's clipping search takes its rows {CLIP_ROWS} at a time")


METHODS = {"awq": AWQMethod()}
