"""What evaluation jobs read from an engine — plain tokenization, every position's logits, timed
runs, what ran — comes from the engine chat serves, loaded the same way (engines.open_engine). On
the session's bitsandbytes NF4 and GPTQ 4-bit builds of the demo model (tests/support/artifacts.py):
the loaded model's quantized layers are bitsandbytes' and GPTQModel's, the greedy chat reply is
the real model's answer, and the logits an evaluation scores give the log-probabilities chat's
echo scoring reports."""

import json

import numpy as np
import pytest

from engines import SamplingParams, open_engine
from runtime.manager import LoadSpec, ModelManager
from tests.support.processes import WIKITEXT

pytestmark = pytest.mark.slow
GREEDY = SamplingParams(temperature=0.0, max_tokens=8, repeat_penalty=1.0)
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def chat_reply(engine) -> str:
    prepared = engine.prepare_checked(messages=QUESTION, prompt=None, params=GREEDY)
    return "".join(p.text for p in engine.stream(prepared=prepared, params=GREEDY,
                                                 cancelled=lambda: False))


@pytest.mark.parametrize("build, fmt, kernel, loader", [
    ("demo_nf4", "bnb-nf4", "Linear4bit", "bitsandbytes"),
    ("demo_gptq", "gptq", "TorchCpu", "gptqmodel"),
])
def test_a_quantized_variant_is_measured_as_chat_serves_it(request, build, fmt, kernel, loader):
    folder = request.getfixturevalue(build).folder
    files = sorted(folder.iterdir())
    manager = ModelManager(memory_budget_bytes=4 * 2**30, threads=2)
    spec = LoadSpec(variant_id="v", format=fmt, files=tuple(files), n_ctx=256,
                    config=json.loads((folder / "config.json").read_text()))
    with manager.acquire(spec) as loaded:
        assert "Paris" in chat_reply(loaded.engine)
    served = manager.status()["models"][0]["engine_info"]
    manager.shutdown()

    engine = open_engine(fmt, files, n_ctx=256, threads=2)  # as the evaluate method opens it
    try:
        # the same class, dtype, quantized-layer kernels and library versions as chat's
        assert engine.info == served
        assert engine.info["class"] == "engines.transformers_engine.TransformersEngine"
        assert any(name.startswith(kernel) for name in engine.info["linear"]), engine.info
        assert engine.info[loader] not in ("?", None) and engine.info["device"] == "cpu"

        tokens = engine.tokenize((WIKITEXT / "test.txt").read_text()[:1500])[:96]
        logits = engine.logits(tokens).astype(np.float64)
        assert logits.shape == (96, engine.vocab) == (96, 49152)
        rows = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) \
            - logits.max(1, keepdims=True)
        scored = engine.score(tokens=tokens, top=0)
        assert scored[0] is None
        for i in range(1, 96):
            assert scored[i]["logprob"] == pytest.approx(rows[i - 1, tokens[i]], abs=1e-3)

        with engine.speed_runner(tokens[:32], 4) as run:
            prefill, decode = run()
        assert prefill > 0 and decode > 0
    finally:
        engine.unload()


def test_a_float_checkpoint_computes_in_float32_on_a_cpu(demo_hf_f16):
    """An F16 folder loads upcast on a CPU (half-precision matmuls are slow there; upcasting is
    exact): chat and evaluation both run float32."""
    engine = open_engine("hf", sorted(demo_hf_f16.iterdir()), n_ctx=128, threads=2)
    try:
        assert engine.info["dtype"] == "torch.float32" and engine.info["linear"] == ["Linear"]
        assert engine.bos_id is None and engine.tokenizer_info["vocab"] == 49152
    finally:
        engine.unload()
