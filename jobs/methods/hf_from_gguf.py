"""GGUF -> HF safetensors (dequantized by transformers), so a GGUF-only model can be quantized
with bitsandbytes or GPTQ too. The result is an `hf` variant whose parent is the GGUF, and its
tokenizer gives llama.cpp's token ids for any text (formats.dequantize.gguf_tokenizer), so
perplexity and KL of the variant and of everything quantized from it are over the GGUF's tokens."""

from pathlib import Path

from jobs.methods.base import JobError, Method, Output, RunContext

# Architectures transformers' GGUF loader can dequantize (transformers/integrations/ggml.py).
ARCHITECTURES = {"llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"}



class HFFromGGUFMethod(Method):
    name = "hf-from-gguf"
    kind = "import"
    devices = ("cpu", "cuda")
    input_formats = ("gguf",)
    soft_time_limit = 3600
    hard_time_limit = 2 * 3600

    def validate(self, params: dict, variant) -> dict:
        from formats.dequantize import DTYPES

        dtype = params.get("dtype", "float16")
        if dtype not in DTYPES:
            raise JobError.field("dtype", f"choose one of {', '.join(DTYPES)}")
        if variant.model.architecture not in ARCHITECTURES:
            raise JobError.field("input", f"transformers can't dequantize a "
                                 f"{variant.model.architecture!r} GGUF")
        return {"dtype": dtype}

    def estimate(self, params: dict, variant) -> dict:
        n = variant.model.param_count or 0
        width = {"float32": 4}.get(params["dtype"], 2)
        # transformers dequantizes into float32 first, then casts: two copies at the peak.
        return {"peak_memory_bytes": n * (4 + width) + 2**30, "output_bytes": n * width}

    def run(self, ctx: RunContext) -> list[Output]:
        from formats.dequantize import DTYPES, dequantize_gguf

        out = Path(ctx.workdir) / "hf"
        ctx.progress(0.05, "load")
        versions = dequantize_gguf(ctx.input_path(".gguf"), out, ctx.params["dtype"])
        ctx.progress(0.95, "save")
        return [Output(key="hf", format="hf", quant_type=DTYPES[ctx.params["dtype"]],
                       directory=str(out), bits_per_weight=8.0 * (2 if "16" in ctx.params["dtype"] else 4),
                       params={"from": "gguf", "dequantized_from": ctx.input_quant_type,
                               "dtype": ctx.params["dtype"]},
                       tool_versions=versions)]


METHODS = {"hf-from-gguf": HFFromGGUFMethod()}
