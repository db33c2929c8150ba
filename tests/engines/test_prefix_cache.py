"""Multi-turn chat reuses the evaluated prompt prefix: the cache on its own, then the llama.cpp
engine on the real demo GGUF against the same engine evaluating every prompt whole, and the
manager counting cached prefixes in its memory budget."""

from dataclasses import replace

import numpy as np
import pytest

from engines import SamplingParams
from engines.llamacpp import LlamaCppEngine
from engines.prefix_cache import PrefixCache, common_prefix
from runtime.manager import LoadSpec, ModelManager
from runtime.memory import estimate_bytes

GREEDY = SamplingParams(temperature=0.0, max_tokens=24, logprobs=1)
CONVERSATIONS = {
    "france": ["What is the capital of France?", "And its population?",
               "Name a famous museum there.", "Who painted the Mona Lisa?"],
    "rhymes": ["Give me a word that rhymes with cat.", "Another one?",
               "Use both in a sentence.", "Now translate it to French."],
}


# --- the cache on its own ----------------------------------------------------------------------
def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2 and common_prefix((), [1]) == 0
    assert common_prefix([7], [8]) == 0


def test_take_returns_the_longest_shared_prefix_and_removes_it():
    cache = PrefixCache(max_bytes=100)
    cache.put([1, 2, 3], "abc", 10)
    cache.put([1, 2, 9, 9], "ab99", 10)
    cache.put([5, 6], "56", 10)
    saved, shared = cache.take([1, 2, 9, 4])
    assert (saved.state, shared) == ("ab99", 3) and len(cache) == 2
    assert cache.take([1, 2, 3, 4], longer_than=3) is None  # not better than what is live
    assert cache.take([8]) is None and cache.bytes() == 20


def test_least_recently_used_states_go_first_and_an_oversized_one_is_not_kept():
    cache = PrefixCache(max_bytes=25)
    cache.put([1], "one", 10)
    cache.put([2], "two", 10)
    cache.put([3], "three", 10)  # 30 > 25: [1] goes
    assert cache.take([1]) is None and cache.bytes() == 20
    cache.put([4], "big", 26)
    assert cache.take([4]) is None and cache.bytes() == 20
    assert cache.drop_oldest() == 10 and cache.take([2]) is None and cache.take([3]) is not None


# --- the llama.cpp engine on the demo model ----------------------------------------------------
def open_engine(path, *, reuse: bool) -> LlamaCppEngine:
    engine = LlamaCppEngine(files=[path], n_ctx=1024, threads=2)
    engine.load()
    engine.reuse_prefixes = reuse
    return engine


@pytest.fixture(scope="module")
def engines(demo_gguf):
    cached, whole = open_engine(demo_gguf, reuse=True), open_engine(demo_gguf, reuse=False)
    yield cached, whole
    cached.unload()
    whole.unload()


def turn(engine, messages, params=GREEDY):
    prepared = engine.prepare_checked(messages=messages, prompt=None, params=params)
    pieces = list(engine.stream(prepared=prepared, params=params, cancelled=lambda: False))
    return pieces, prepared


def logprob_entries(pieces) -> list[dict]:
    return [lp for p in pieces for lp in p.logprobs]


@pytest.mark.slow
def test_batch_and_single_token_decoding_differ_for_real(batch_vs_single_gap):
    """The tolerance the cache is held to, measured: the same chat prompt decoded in one batch and
    token by token (what generation does) on a logits_all Llama. On this machine the chosen
    tokens' logprobs differ by up to about 0.15 nats and the whole vocabulary's by about 1.3."""
    assert batch_vs_single_gap > 0.01


@pytest.fixture(scope="module")
def batch_vs_single_gap(demo_gguf) -> float:
    """Largest |Δ logprob| of each position's most likely token, batch vs token by token."""
    from llama_cpp import Llama

    llm = Llama(str(demo_gguf), n_ctx=512, n_threads=2, n_threads_batch=2, verbose=False, logits_all=True)
    try:
        text = "".join(f"<|im_start|>user\n{q}<|im_end|>\n" for q in CONVERSATIONS["france"])
        tokens = llm.tokenize(text.encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(tokens)
        batch = log_softmax(np.array(llm.scores[:len(tokens)]))
        llm.reset()
        for token in tokens:
            llm.eval([token])
        single = log_softmax(np.array(llm.scores[:len(tokens)]))
    finally:
        llm.close()
    rows, best = np.arange(len(tokens)), batch.argmax(axis=1)
    return float(np.abs(batch[rows, best] - single[rows, best]).max())


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    peak = logits.max(axis=1, keepdims=True)
    return logits - peak - np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))


@pytest.mark.slow
def test_replies_are_the_same_with_and_without_the_cache(engines, batch_vs_single_gap):
    """Two conversations alternating, four turns each, one settling its replies between turns
    (what the manager does while the model is idle), the other not: every reply token by token
    and every logprob as the engine that evaluates each prompt whole gives them. The bound is 1%
    of the measured batch-vs-single gap: the cache keeps only batch-evaluated tokens, so the
    numbers are computed the same way (reusing the reply's KV as generation left it instead flips
    greedy tokens on this model)."""
    cached, whole = engines
    bound = batch_vs_single_gap / 100
    history = {name: [] for name in CONVERSATIONS}
    previous_prompt = {}
    for i in range(4):
        for name, questions in CONVERSATIONS.items():
            history[name].append({"role": "user", "content": questions[i]})
            pieces, prepared = turn(cached, history[name])
            reference, reference_prepared = turn(whole, history[name])
            assert prepared.tokens == reference_prepared.tokens
            got, want = logprob_entries(pieces), logprob_entries(reference)
            assert [e["bytes"] for e in got] == [e["bytes"] for e in want], (name, i)
            assert [p.text for p in pieces] == [p.text for p in reference]
            for a, b in zip(got, want):
                assert abs(a["logprob"] - b["logprob"]) <= bound
            # the previous prompt came from the cache (restored from a saved state after the other
            # conversation's turn), and the previous reply too where it was settled
            assert reference_prepared.cached_tokens == 0
            if name in previous_prompt:
                previous = previous_prompt[name]
                assert prepared.tokens[:len(previous)] == previous
                if name == "france":
                    assert prepared.cached_tokens >= len(previous) + settled - 1
                else:
                    assert prepared.cached_tokens == len(previous)
            previous_prompt[name] = prepared.tokens
            settled = cached.settle() if name == "france" else 0
            assert settled == (len(logprob_entries(pieces)) if name == "france" else 0)
            history[name].append({"role": "assistant", "content": "".join(p.text for p in pieces)})
    assert len(cached.prefix_cache) == 1 and cached.prefix_cache.bytes() > 0


@pytest.mark.slow
def test_seeded_sampling_is_reproducible_through_the_cache(engines):
    cached, whole = engines
    sampled = replace(GREEDY, temperature=1.0, seed=7, max_tokens=16)
    messages = [{"role": "user", "content": "Tell me about cats."}]
    first, _ = turn(cached, messages, sampled)
    messages += [{"role": "assistant", "content": "".join(p.text for p in first)},
                 {"role": "user", "content": "And dogs?"}]
    replies = [turn(engine, messages, sampled) for engine in (cached, whole, cached)]
    assert replies[0][1].cached_tokens > 0 and replies[2][1].cached_tokens == len(replies[2][1].tokens) - 2
    texts = ["".join(p.text for p in pieces) for pieces, _ in replies]
    assert texts[0] == texts[1] == texts[2]
    other = turn(cached, messages, replace(sampled, seed=8))[0]
    assert "".join(p.text for p in other) != texts[0]


@pytest.mark.slow
def test_cached_prefixes_count_in_the_budget_and_go_before_a_model(demo_gguf):
    spec = {v: LoadSpec(variant_id=v, format="gguf", files=(demo_gguf,), n_ctx=512) for v in "ab"}
    model_bytes = estimate_bytes(files=[demo_gguf], config={}, n_ctx=512, format="gguf")
    manager = ModelManager(memory_budget_bytes=4 * model_bytes)
    chats = [[{"role": "user", "content": q}] for q in ("Name a colour.", "Name a fruit.", "Hi!")]
    for messages in chats:
        with manager.acquire(spec["a"]) as loaded:
            turn(loaded.engine, messages, replace(GREEDY, max_tokens=4))
    [status] = manager.status()["models"]
    saved = status["cached_prefix_bytes"]
    assert status["cached_prefixes"] == 2 and saved > 0
    assert manager.status()["memory_used_bytes"] == model_bytes + saved
    # b fits only once a's saved prefixes are gone: they go, a stays loaded
    manager.memory_budget_bytes = 2 * model_bytes + saved // 2
    with manager.acquire(spec["b"]):
        pass
    models = {m["variant_id"]: m for m in manager.status()["models"]}
    assert set(models) == {"a", "b"} and models["a"]["cached_prefix_bytes"] <= saved // 2
    assert manager.status()["memory_used_bytes"] <= manager.memory_budget_bytes
    manager.shutdown()


@pytest.mark.slow
def test_the_manager_settles_a_reply_while_the_model_is_idle(demo_gguf):
    import threading

    from tests.support.processes import wait_until

    spec = LoadSpec(variant_id="a", format="gguf", files=(demo_gguf,), n_ctx=512)
    manager = ModelManager(memory_budget_bytes=2 * 1024**3)
    messages = [{"role": "user", "content": "Name three colours."}]
    with manager.acquire(spec) as loaded:
        pieces, first = turn(loaded.engine, messages)
    wait_until(lambda: not any(t.name == "settle-a" for t in threading.enumerate()), timeout=60,
               what="the settle thread")
    messages += [{"role": "assistant", "content": "".join(p.text for p in pieces)},
                 {"role": "user", "content": "One more?"}]
    with manager.acquire(spec) as loaded:
        _, second = turn(loaded.engine, messages)
    reply = len(logprob_entries(pieces))
    assert reply > 2 and second.cached_tokens >= len(first.tokens) + reply - 1
    manager.shutdown()


# --- the transformers engine on the demo model in float32 -------------------------------------
@pytest.fixture(scope="module")
def hf_engines(demo_hf_f32):
    from engines.transformers_engine import TransformersEngine

    engines = []
    for reuse in (True, False):
        engine = TransformersEngine(files=sorted(demo_hf_f32.iterdir()), n_ctx=1024, threads=2)
        engine.load()
        engine.reuse_prefixes = reuse
        engines.append(engine)
    yield engines
    for engine in engines:
        engine.unload()


@pytest.fixture(scope="module")
def hf_batch_vs_single_gap(hf_engines) -> float:
    """Largest |Δ logprob| over the whole vocabulary between a chat prompt evaluated in one
    forward pass and token by token through a DynamicCache (what generation does): about 1e-4
    on this machine (1.3e-5 on the most likely tokens)."""
    import torch
    from transformers import DynamicCache

    engine = hf_engines[1]
    model = engine._model
    tokens = engine.prepare(messages=[{"role": "user", "content": q} for q in CONVERSATIONS["france"]],
                            prompt=None, params=GREEDY).tokens
    ids = torch.tensor([tokens])
    with torch.inference_mode():
        batch = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
        cache, rows = DynamicCache(config=model.config), []
        for i in range(len(tokens)):
            rows.append(model(input_ids=ids[:, i:i + 1], past_key_values=cache, use_cache=True).logits[0, -1])
        single = torch.log_softmax(torch.stack(rows).double(), dim=-1)
    return float((batch - single).abs().max())


@pytest.mark.slow
def test_transformers_replies_are_the_same_with_and_without_the_cache(hf_engines, hf_batch_vs_single_gap):
    """Two conversations alternating, three turns each: the same tokens as the engine that
    evaluates each prompt whole, logprobs within the measured batch-vs-single gap (a prompt split
    in two passes differs by matrix products of other shapes only), and each turn after the first
    finds its previous prompt kept (the other conversation took only a copy of the shared part)."""
    cached, whole = hf_engines
    assert 0 < hf_batch_vs_single_gap < 1e-2
    history = {name: [] for name in CONVERSATIONS}
    previous_prompt = {}
    for i in range(3):
        for name, questions in CONVERSATIONS.items():
            history[name].append({"role": "user", "content": questions[i]})
            params = replace(GREEDY, repeat_penalty=1.0)
            pieces, prepared = turn(cached, history[name], params)
            reference, reference_prepared = turn(whole, history[name], params)
            got, want = logprob_entries(pieces), logprob_entries(reference)
            assert [e["bytes"] for e in got] == [e["bytes"] for e in want], (name, i)
            for a, b in zip(got, want):
                assert abs(a["logprob"] - b["logprob"]) <= hf_batch_vs_single_gap
            assert reference_prepared.cached_tokens == 0
            if name in previous_prompt:
                assert prepared.cached_tokens == len(previous_prompt[name])
                assert prepared.tokens[:prepared.cached_tokens] == previous_prompt[name]
            previous_prompt[name] = prepared.tokens
            history[name].append({"role": "assistant", "content": "".join(p.text for p in pieces)})
    assert len(cached.prefix_cache) == 2 and len(whole.prefix_cache) == 0
    # what is kept is exactly the prompts' keys and values: 2 (K, V) × layers × KV width × 4 bytes
    config = cached._model.config
    per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * (
        config.hidden_size // config.num_attention_heads) * 4
    assert cached.prefix_cache.bytes() == per_token * sum(len(t) for t in previous_prompt.values())


@pytest.mark.slow
def test_transformers_seeded_sampling_is_reproducible_through_the_cache(hf_engines):
    cached, whole = hf_engines
    sampled = replace(GREEDY, temperature=1.0, seed=7, max_tokens=12)
    messages = [{"role": "user", "content": "Tell me about cats."}]
    first, _ = turn(cached, messages, sampled)
    messages += [{"role": "assistant", "content": "".join(p.text for p in first)},
                 {"role": "user", "content": "And dogs?"}]
    replies = [turn(engine, messages, sampled) for engine in (cached, whole)]
    assert replies[0][1].cached_tokens > 0 and replies[1][1].cached_tokens == 0
    assert "".join(p.text for p in replies[0][0]) == "".join(p.text for p in replies[1][0])
