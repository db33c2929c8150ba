"""GGUF -> HF safetensors (dequantized by transformers), so a GGUF-only model can be quantized
with bitsandbytes or GPTQ too. The result is an `hf` variant whose parent is the GGUF, and its
tokenizer gives llama.cpp's token ids for any text (see gguf_tokenizer), so perplexity and KL of
the variant and of everything quantized from it are over the same tokens as the GGUF's."""

from pathlib import Path

from formats.gguf_header import read_gguf_header_from_path
from jobs.methods.base import JobError, Method, Output, RunContext

# Architectures transformers' GGUF loader can dequantize (transformers/integrations/ggml.py).
ARCHITECTURES = {"llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"}

# tokenizer.ggml.pre values for which llama.cpp splits off every \p{N} character on its own before
# GPT-2's regex (llama.cpp src/llama-vocab.cpp, llm_tokenizer_bpe: STARCODER, REFACT, COMMAND_R,
# SMOLLM, CODESHELL, EXAONE), as the original tokenizer.json's Digits(individual_digits) does.
# transformers' GGUF loader (integrations/gguf/gguf_tokenizer_mapping.py, GGUF_PRE_TOKENIZER_SPLITS)
# has no entry for them and keeps ByteLevel's GPT-2 regex alone, so " ½" became "ĠÂ" "½" (llama.cpp:
# "Ġ" "Â½") and the demo's HF, NF4 and GPTQ variants tokenized unlike their GGUF (WikiText-2 test
# from "4 ½ m", its id 245,502).
DIGIT_SPLIT_PRE_TYPES = {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone"}


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
        gguf = ctx.input_path(".gguf")
        versions = dequantize_gguf(gguf, out, ctx.params["dtype"])
        ctx.progress(0.95, "save")
        gguf_tokenizer(gguf).save_pretrained(str(out))  # replaces the tokenizer dequantize wrote
        return [Output(key="hf", format="hf", quant_type=DTYPES[ctx.params["dtype"]],
                       directory=str(out), bits_per_weight=8.0 * (2 if "16" in ctx.params["dtype"] else 4),
                       params={"from": "gguf", "dequantized_from": ctx.input_quant_type,
                               "dtype": ctx.params["dtype"]},
                       tool_versions=versions)]


def gguf_tokenizer(gguf: Path):
    """The GGUF's tokenizer as transformers builds it, with llama.cpp's pre-tokenizer where
    transformers' differs (DIGIT_SPLIT_PRE_TYPES)."""
    from tokenizers import Regex, pre_tokenizers
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if read_gguf_header_from_path(gguf).metadata.get("tokenizer.ggml.pre") in DIGIT_SPLIT_PRE_TYPES:
        tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(r"\p{N}"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    return tokenizer


METHODS = {"hf-from-gguf": HFFromGGUFMethod()}
