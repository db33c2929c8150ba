"""GGUF -> HF safetensors through transformers' own GGUF loader. No Django: it runs inside job
child processes as well as in tests."""

from pathlib import Path

DTYPES = {"float16": "F16", "bfloat16": "BF16", "float32": "F32"}


def dequantize_gguf(gguf: Path, out: Path, dtype: str = "float16") -> dict:
    """Writes an HF folder (config.json, tokenizer, model.safetensors) for a llama-family GGUF.

    transformers marks a GGUF-loaded model as quantized (config.quantization_config = GgufConfig,
    model.hf_quantizer, model.is_quantized) and save_pretrained refuses it ("quantized with gguf
    and is not serializable"); the weights are already plain float tensors, so dropping those
    markers makes it a normal model. Returns the tool versions used.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=getattr(torch, dtype), trust_remote_code=False)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    model.save_pretrained(str(out), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(str(out))
    return {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0]}
