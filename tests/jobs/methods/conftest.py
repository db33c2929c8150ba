"""Fixtures for the job-method tests: a real HF checkpoint of the demo model and calibration text."""

from pathlib import Path

import pytest

from tests.support.processes import WIKITEXT


def gguf_to_hf(gguf: Path, out: Path) -> Path:
    """Dequantize a GGUF into an HF safetensors folder (float32) with its tokenizer."""
    from catalog.dequantize import dequantize_gguf

    dequantize_gguf(gguf, out, "float32")
    return out


@pytest.fixture(scope="session")
def demo_hf_dir(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct as an HF folder (config.json, tokenizer, model.safetensors), made once."""
    from catalog.services import demo_model_path

    return gguf_to_hf(demo_model_path(), tmp_path_factory.mktemp("demo-hf"))


@pytest.fixture(scope="session")
def calibration_text() -> Path:
    path = WIKITEXT / "valid.txt"
    assert path.exists(), f"WikiText-2 is expected at {path}"
    return path


def generate(model, tokenizer, prompt: str = "The capital of France is", new_tokens: int = 8) -> str:
    """Greedy continuation of prompt (the new text only)."""
    import torch

    ids = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=new_tokens, do_sample=False)
    return tokenizer.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=True)
