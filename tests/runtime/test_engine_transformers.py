"""The transformers engine on a real (tiny, randomly initialised) Llama saved as an HF variant,
with the demo model's real tokenizer and chat template read from its GGUF. Random weights make
the text meaningless; what's checked is the engine's mechanics."""

import pytest

from runtime.engines import ContextTooLong, EngineError, SamplingParams
from runtime.engines.transformers_engine import TransformersEngine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(tiny_chat_hf):
    engine = TransformersEngine(files=sorted(tiny_chat_hf.iterdir()), n_ctx=128, threads=1)
    engine.load()
    yield engine
    engine.unload()


def test_chat_template_and_streaming(engine):
    params = SamplingParams(temperature=0, max_tokens=8)
    prepared = engine.prepare_checked(messages=[{"role": "user", "content": "hi"}], prompt=None,
                                      params=params)
    assert "<|im_start|>assistant" in engine._tokenizer.decode(prepared.tokens)
    pieces = list(engine.stream(prepared=prepared, params=params, cancelled=lambda: False))
    assert len(pieces) > 1
    assert pieces == list(engine.stream(prepared=prepared, params=params, cancelled=lambda: False))
    assert engine.memory_bytes() > 0


def test_cancel_stops_generation_early(engine):
    params = SamplingParams(temperature=0.9, max_tokens=100, seed=1)
    prepared = engine.prepare_checked(messages=None, prompt="Once upon a time", params=params)
    seen = []
    for piece in engine.stream(prepared=prepared, params=params, cancelled=lambda: len(seen) >= 2):
        seen.append(piece)
    assert len(seen) < 10  # the streamer may flush a word or two already decoded


def test_context_limit(engine):
    with pytest.raises(ContextTooLong):
        engine.prepare_checked(messages=None, prompt="word " * 200, params=SamplingParams())


def test_remote_code_is_never_trusted(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "made-up", "auto_map": '
                                          '{"AutoModelForCausalLM": "evil.Model"}}')
    (tmp_path / "evil.py").write_text("raise SystemExit('ran remote code')\n")
    with pytest.raises(EngineError, match="could not load"):
        TransformersEngine(files=[tmp_path / "config.json"], n_ctx=64).load()
