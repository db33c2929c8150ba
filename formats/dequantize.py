"""GGUF -> HF safetensors through transformers' own GGUF loader. No Django: it runs inside job
child processes as well as in tests."""

from pathlib import Path

from formats.gguf_header import read_gguf_header_from_path

DTYPES = {"float16": "F16", "bfloat16": "BF16", "float32": "F32"}
# tokenizer.ggml.pre values for which llama.cpp splits off every \p{N} character on its own before
# GPT-2's regex (llama.cpp src/llama-vocab.cpp, llm_tokenizer_bpe: STARCODER, REFACT, COMMAND_R,
# SMOLLM, CODESHELL, EXAONE), as the original tokenizer.json's Digits(individual_digits) does.
# transformers' GGUF loader (integrations/gguf/gguf_tokenizer_mapping.py, GGUF_PRE_TOKENIZER_SPLITS)
# has no entry for them and keeps ByteLevel's GPT-2 regex alone, so " ½" became "ĠÂ" "½" (llama.cpp:
# "Ġ" "Â½") and the demo's HF, NF4 and GPTQ variants tokenized unlike their GGUF (WikiText-2 test
# from "4 ½ m", its id 245,502).
DIGIT_SPLIT_PRE_TYPES = {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone"}


def dequantize_gguf(gguf: Path, out: Path, dtype: str = "float16") -> dict:
    """Writes an HF folder (config.json, tokenizer, model.safetensors) for a llama-family GGUF.

    transformers marks a GGUF-loaded model as quantized (config.quantization_config = GgufConfig,
    model.hf_quantizer, model.is_quantized) and save_pretrained refuses it ("quantized with gguf
    and is not serializable"); the weights are already plain float tensors, so dropping those
    markers makes it a normal model. Returns the tool versions used.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=getattr(torch, dtype), trust_remote_code=False)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    model.save_pretrained(str(out), safe_serialization=True)
    gguf_tokenizer(gguf).save_pretrained(str(out))
    return {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0]}


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
