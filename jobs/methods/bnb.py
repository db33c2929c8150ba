"""bitsandbytes quantization (LLM.int8 and 4-bit NF4/FP4) through transformers.

Recipe (works on CPU with bitsandbytes ≥ 0.48; measured with transformers 5.23, bitsandbytes 0.50):
quantizing *is* loading: `AutoModelForCausalLM.from_pretrained(hf_dir,
quantization_config=BitsAndBytesConfig(...), device_map="cpu", dtype=compute_dtype)` quantizes each
block linear as it is loaded (lm_head and embeddings stay in `dtype`), then `save_pretrained`
writes safetensors with the quantization state beside each weight (`.SCB` for int8;
`.absmax`, `.quant_map`, `.quant_state.bitsandbytes__nf4` and, with double quant, `.nested_*` for
4-bit) and the BitsAndBytesConfig in config.json, so a plain `AutoModelForCausalLM.from_pretrained(out,
device_map="cpu")` loads it back quantized. On a cuda node the same call gets `device_map={"": 0}`
and a 16-bit compute dtype (cuda_compute_dtype), after checking the GPU is there and free enough.
"""

from __future__ import annotations

import re
from pathlib import Path

from jobs.methods import hf_common
from jobs.methods.base import Method, Output, RunContext
from engines import gpu

_PARAMS = {"bnb-int8": {"llm_int8_threshold", "compute_dtype"},
           "bnb-nf4": {"quant_type", "double_quant", "compute_dtype"}}
# transformers' loading bar, e.g. "Loading weights:  54%|█████▍    | 147/272 [...]"
_LOADING = re.compile(r"Loading weights:\s+(\d+)%")


class BitsAndBytesMethod(Method):
    kind = "quantize"
    devices = ("cpu", "cuda")
    input_formats = ("hf",)
    soft_time_limit = 3600
    hard_time_limit = 2 * 3600

    def __init__(self, name: str):
        self.name = name
        self.four_bit = name == "bnb-nf4"

    # ---- web process ----
    def validate(self, params: dict, variant) -> dict:
        params = dict(params or {})
        hf_common.reject_unknown(params, _PARAMS[self.name])
        hf_common.require_hf_input(variant, self.name)
        hf_common.param_counts(hf_common.model_config(variant))  # refuses configs without the shape
        if self.four_bit:
            return {
                "quant_type": hf_common.clean_choice(params, "quant_type", ("nf4", "fp4"), "nf4"),
                "double_quant": hf_common.clean_bool(params, "double_quant", True),
                # bfloat16, measured on CPU (SmolLM2-135M, 8 greedy tokens after reload): bf16 1.3 s,
                # float32 1.8 s and a 168 MB instead of 112 MB checkpoint (embeddings stay in the
                # compute dtype), float16 23 s (CPU fp16 matmuls are slow). Same text from all three.
                "compute_dtype": hf_common.clean_choice(params, "compute_dtype", hf_common.COMPUTE_DTYPES,
                                                        "bfloat16"),
            }
        return {
            "llm_int8_threshold": hf_common.clean_number(params, "llm_int8_threshold", 6.0, low=0,
                                                         low_open=True),
            # float32 on CPU: the int8 matmul casts its inputs to fp16 itself; the rest of the model
            # (embeddings, norms, attention math) keeps full precision.
            "compute_dtype": hf_common.clean_choice(params, "compute_dtype", hf_common.COMPUTE_DTYPES,
                                                    "float32"),
        }

    def estimate(self, params: dict, variant) -> dict:
        """output_bytes: the planner's INT8 / NF4 / NF4-DQ weight formula (its unquantized tensors at
        2 bytes) corrected to `compute_dtype`, or the same formula here if the planner is absent.

        peak_memory_bytes = source safetensors (mmapped, every page read once while transformers
        quantizes tensor by tensor) + the quantized model + runtime overhead (hf_common); measured
        1.82 GB peak RSS for SmolLM2-135M from a float32 checkpoint, NF4 and int8 alike."""
        cfg = hf_common.model_config(variant)
        linear, other = hf_common.param_counts(cfg)
        dtype_bytes = hf_common.DTYPE_BYTES[params.get("compute_dtype", "float32")]
        if self.four_bit:
            scheme = "NF4-DQ" if params.get("double_quant", True) else "NF4"
            blocks = linear // 64  # quantize_4bit blocksize 64: fp32 absmax, or uint8 + fp32 per 256
            own = linear // 2 + (blocks + blocks // 256 * 4 if scheme == "NF4-DQ" else blocks * 4)
        else:
            scheme = "INT8"
            rows = sum(o for _, o in hf_common.linear_shapes(cfg).values()) * cfg["num_hidden_layers"]
            own = linear + rows * 4  # int8 CB + fp32 row scale SCB
        planner = hf_common.planner_weight_bytes(cfg, scheme)
        quantized = (planner - other * 2) if planner is not None else own
        output = quantized + other * dtype_bytes
        source = hf_common.source_checkpoint_bytes(variant, cfg)
        return {"peak_memory_bytes": int(source + output + hf_common.RUNTIME_OVERHEAD_BYTES),
                "output_bytes": int(output)}

    # ---- child process ----
    def run(self, ctx: RunContext) -> list[Output]:
        # The GPU is checked before transformers and bitsandbytes load: a cuda node without one
        # fails at once, never quantizing on the CPU.
        gpu_name = gpu.require_gpu(node=ctx.node, need_bytes=ctx.peak_memory_bytes) if ctx.device == "cuda" else ""
        import torch
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        p = dict(ctx.params)
        input_dir, out = Path(ctx.input_dir), Path(ctx.workdir) / "out"
        device_map = "cpu"
        if gpu_name:
            device_map = {"": 0}  # every module on GPU 0: bitsandbytes quantizes there
            p["compute_dtype"] = cuda_compute_dtype(p["compute_dtype"], torch.cuda.is_bf16_supported())
            ctx.log(f"bitsandbytes on {gpu_name}, compute dtype {p['compute_dtype']}")
        dtype = getattr(torch, p["compute_dtype"])
        if self.four_bit:
            config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=p["quant_type"],
                                        bnb_4bit_use_double_quant=p["double_quant"],
                                        bnb_4bit_compute_dtype=dtype)
            quant_type = p["quant_type"] + ("-dq" if p["double_quant"] else "")
        else:
            config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=p["llm_int8_threshold"])
            quant_type = "int8"

        ctx.progress(0.0, "load")
        # Quantization happens inside from_pretrained, tensor by tensor (see parse_log_line).
        ctx.progress(0.05, "quantize")
        model = AutoModelForCausalLM.from_pretrained(
            str(input_dir), quantization_config=config, device_map=device_map, dtype=dtype,
            trust_remote_code=False)
        ctx.progress(0.85, "save")
        model.save_pretrained(str(out))
        hf_common.save_tokenizer(input_dir, out)
        bpw, metrics = hf_common.bits_per_weight(input_dir, out)
        ctx.progress(1.0, "save")
        return [Output(key="main", format=self.name, quant_type=quant_type, directory=str(out),
                       bits_per_weight=bpw, params={**p, "device": ctx.device}, metrics=metrics,
                       tool_versions=hf_common.versions("transformers", "bitsandbytes", "torch"))]

    def parse_log_line(self, line: str) -> tuple[float, str] | None:
        """transformers' "Loading weights: NN%" bar is where bitsandbytes quantizes: map it to
        0.05..0.85 of the job. tqdm redraws with carriage returns, so read the last one."""
        matches = _LOADING.findall(line)
        if not matches:
            return None
        return 0.05 + 0.8 * int(matches[-1]) / 100, "quantize"


def cuda_compute_dtype(asked: str, bf16_supported: bool) -> str:
    """The compute dtype on a GPU: float32 (the CPU default, where half-precision matmuls are
    slow) becomes bfloat16, or float16 on a GPU without bf16 (before Ampere): the GPU kernels
    of bitsandbytes run in 16-bit, and a float32 model would take twice the GPU memory."""
    if asked != "float32":
        return asked
    return "bfloat16" if bf16_supported else "float16"


METHODS = {"bnb-int8": BitsAndBytesMethod("bnb-int8"), "bnb-nf4": BitsAndBytesMethod("bnb-nf4")}
