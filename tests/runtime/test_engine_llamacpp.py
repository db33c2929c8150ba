"""The llama.cpp engine on the real demo GGUF, in-process (loaded once for the module)."""

from pathlib import Path

import pytest

from runtime.engines import ContextTooLong, EngineError, SamplingParams
from runtime.engines.llamacpp import LlamaCppEngine

pytestmark = pytest.mark.slow
GREEDY = SamplingParams(temperature=0.0, max_tokens=12, seed=1)


@pytest.fixture(scope="module")
def engine(demo_gguf):
    engine = LlamaCppEngine(files=[demo_gguf], n_ctx=256, threads=2)
    engine.load()
    yield engine
    engine.unload()


def chat(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_chat_template_comes_from_the_gguf(engine):
    prepared = engine.prepare(messages=chat("Hi"), prompt=None, params=GREEDY)
    text = engine._llm.detokenize(prepared.tokens, special=True).decode()
    assert text.startswith("<|im_start|>system") and text.endswith("<|im_start|>assistant\n")
    assert "<|im_end|>" in prepared.stop


def test_streams_token_by_token_and_is_deterministic_at_temperature_0(engine):
    prepared = engine.prepare_checked(messages=chat("Name a colour."), prompt=None, params=GREEDY)
    first = list(engine.stream(prepared=prepared, params=GREEDY, cancelled=lambda: False))
    again = list(engine.stream(prepared=prepared, params=GREEDY, cancelled=lambda: False))
    assert len(first) > 1 and first == again


def test_cancel_flag_stops_before_the_next_token(engine):
    params = SamplingParams(temperature=0.0, max_tokens=100)
    prepared = engine.prepare_checked(messages=None, prompt="Count: 1, 2, 3,", params=params)
    seen = []
    for text in engine.stream(prepared=prepared, params=params, cancelled=lambda: len(seen) >= 3):
        seen.append(text)
    assert len(seen) == 3


def test_prompt_longer_than_the_context_is_refused_and_max_tokens_capped(engine):
    with pytest.raises(ContextTooLong) as info:
        engine.prepare_checked(messages=None, prompt="word " * 400, params=GREEDY)
    assert info.value.status == 400 and "256" in info.value.message
    prepared = engine.prepare_checked(messages=None, prompt="word " * 200,
                                      params=SamplingParams(max_tokens=1000))
    assert len(prepared.tokens) + prepared.max_tokens == 256


def test_a_broken_file_fails_with_a_clear_error(tmp_path: Path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(EngineError) as info:
        LlamaCppEngine(files=[bad], n_ctx=256).load()
    assert info.value.code == "model_load_failed" and "broken.gguf" in info.value.message
