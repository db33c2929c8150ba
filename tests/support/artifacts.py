"""The expensive model artifacts, each built once per test session with the job methods' own
code (in the test process, no worker): the demo GGUF dequantized to HF F32 and F16 folders, its
bitsandbytes NF4 / INT8 and GPTQ 4-bit g64 variants, an F16 GGUF converted back by llama.cpp, and
a tiny random Llama with the demo's tokenizer for cheap job runs.

The folders are read-only by convention: a test that needs one in the catalog registers a
hard-linked copy (`register_copy`); a test that changes one works on its own copy.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import WIKITEXT


@dataclass
class Built:
    """What a method's run() returned and the progress it reported."""

    output: object  # jobs.methods.base.Output
    events: list[tuple[float, str]]

    @property
    def folder(self) -> Path:
        return Path(self.output.directory)


def run_method(name: str, params: dict, input_dir: Path, workdir: Path, *,
               input_format: str = "hf", input_quant_type: str = "f32") -> Built:
    from jobs.methods import get_method
    from jobs.methods.base import RunContext

    events: list[tuple[float, str]] = []
    ctx = RunContext(job_id=1, params=params, input_format=input_format,
                     input_quant_type=input_quant_type, input_dir=str(input_dir), input_files=[],
                     workdir=str(workdir), progress=lambda f, s: events.append((f, s)))
    [output] = get_method(name).run(ctx)
    return Built(output, events)


@pytest.fixture(scope="session")
def demo_gguf() -> Path:
    from catalog.services import demo_model_path

    return demo_model_path()


def _dequantized(demo_gguf: Path, tmp_path_factory, dtype: str) -> Path:
    from formats.dequantize import dequantize_gguf

    out = tmp_path_factory.mktemp(f"demo-hf-{dtype}")
    dequantize_gguf(demo_gguf, out, dtype)
    return out


@pytest.fixture(scope="session")
def demo_hf_f32(demo_gguf, tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct as an HF folder in float32 (config.json, tokenizer, model.safetensors)."""
    return _dequantized(demo_gguf, tmp_path_factory, "float32")


@pytest.fixture(scope="session")
def demo_hf_f16(demo_gguf, tmp_path_factory) -> Path:
    return _dequantized(demo_gguf, tmp_path_factory, "float16")


@pytest.fixture(scope="session")
def calibration_text() -> Path:
    path = WIKITEXT / "valid.txt"
    assert path.exists(), f"WikiText-2 is expected at {path}"
    return path


@pytest.fixture(scope="session")
def demo_nf4(demo_hf_f32, tmp_path_factory) -> Built:
    return run_method("bnb-nf4", {"quant_type": "nf4", "double_quant": True,
                                  "compute_dtype": "bfloat16"},
                      demo_hf_f32, tmp_path_factory.mktemp("demo-nf4"))


@pytest.fixture(scope="session")
def demo_int8(demo_hf_f32, tmp_path_factory) -> Built:
    return run_method("bnb-int8", {"llm_int8_threshold": 6.0, "compute_dtype": "float32"},
                      demo_hf_f32, tmp_path_factory.mktemp("demo-int8"))


GPTQ_PARAMS = {"bits": 4, "group_size": 64, "desc_act": False, "sym": True, "damp_percent": 0.05,
               "samples": 8, "seq_len": 64}


@pytest.fixture(scope="session")
def demo_gptq(demo_hf_f32, calibration_text, tmp_path_factory) -> Built:
    """GPTQ 4-bit g64 (576 isn't a multiple of 128) on 8 × 64 calibration tokens: ~1 min."""
    return run_method("gptq", {**GPTQ_PARAMS, "dataset_path": str(calibration_text)},
                      demo_hf_f32, tmp_path_factory.mktemp("demo-gptq"))


@pytest.fixture(scope="session")
def demo_f16_gguf(demo_hf_f16, tmp_path_factory) -> Built:
    """The F16 HF folder converted back to an F16 GGUF by llama.cpp's convert_hf_to_gguf.py."""
    return run_method("gguf", {"types": ["F16"], "intermediate": "F16"}, demo_hf_f16,
                      tmp_path_factory.mktemp("demo-f16-gguf"), input_quant_type="F16")


@pytest.fixture(scope="session")
def tiny_chat_hf(demo_gguf, tmp_path_factory) -> Path:
    """A randomly initialised 2-layer Llama (width 64) with the demo model's real tokenizer and
    chat template: real enough for every engine and method, seconds to quantize."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-chat-hf")
    tokenizer = AutoTokenizer.from_pretrained(demo_gguf.parent, gguf_file=demo_gguf.name)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def register_copy(*, model, folder: Path, format: str, quant_type: str, parent=None):
    """Registers a hard-linked copy of `folder` as a variant of `model` through the catalog's own
    register_variant (which hashes the files and moves the staged folder into place)."""
    from django.conf import settings

    from catalog.imports.common import NewVariant, register_variant

    staged = Path(settings.ARTIFACT_ROOT) / "uploads" / f"copy-{os.urandom(6).hex()}"
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        target = staged / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    return register_variant(team_id=model.team_id, user_id=None, staged=staged,
                            info=NewVariant(format=format, quant_type=quant_type),
                            model_id=model.pk, parent_id=parent.pk if parent else None)


def build_tiny_llama(out: Path, demo_gguf: Path, *, hidden: int, intermediate: int) -> Path:
    """A randomly initialised 2-layer Llama (4 heads, 2 KV heads, tied embeddings) in float32
    with the demo model's real tokenizer, saved as an HF folder in `out`."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(demo_gguf.parent, gguf_file=demo_gguf.name)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden,
                         intermediate_size=intermediate, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama_256_hf(demo_gguf, tmp_path_factory) -> Path:
    """`build_tiny_llama` with width 256 and FFN 512: every weight matrix holds whole 256-blocks,
    so llama-quantize really makes the k-quant / IQ types asked for (the demo's 576 falls back)."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-256-hf"), demo_gguf,
                            hidden=256, intermediate=512)
