"""engines/harness.py on the real demo GGUF through the llama.cpp engine (loaded once).

The expectations are worked out here by hand from the engine's raw outputs: the token ids split
as lm-eval's TemplateLM splits a (context, continuation) pair, the log-softmax of `engine.logits`
summed over the continuation tokens, and greedy decoding by argmax over full-sequence logits."""

import numpy as np
import pytest
from lm_eval.api.instance import Instance

from engines import open_engine
from engines.harness import EngineLM

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(demo_gguf):
    engine = open_engine("gguf", [demo_gguf], n_ctx=256, threads=1)
    yield engine
    engine.unload()


def request(kind: str, *args) -> Instance:
    return Instance(request_type=kind, doc={}, arguments=tuple(args), idx=0)


def by_hand(engine, context: str, continuation: str) -> tuple[float, bool, int]:
    """(log-likelihood, greedy, continuation token count) read off the engine's logits."""
    spaces = len(context) - len(context.rstrip())  # lm-eval moves them to the continuation
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = engine.tokenize(context + continuation)  # the demo's tokenizer adds no BOS
    n = len(engine.tokenize(context))
    continuation_ids = whole[n:]
    logits = engine.logits(whole[:-1]).astype(np.float64)
    total, greedy = 0.0, True
    for row, token in zip(logits[n - 1:], continuation_ids):
        log_z = row.max() + np.log(np.exp(row - row.max()).sum())
        total += row[token] - log_z
        greedy &= int(np.argmax(row)) == token
    return total, greedy, len(continuation_ids)


def test_loglikelihood_is_the_continuations_log_softmax_sum(engine):
    assert engine.bos_id is None  # the hand split below assumes no BOS, as SmolLM2's tokenizer
    pairs = [("The capital of France is", " Paris"),
             ("The capital of France is", " a small village by the sea"),
             ("Question: what is two plus two?\nAnswer: ", "4"),  # trailing space moves over
             ("The capital of France is", " Berlin")]
    got = EngineLM(engine).loglikelihood([request("loglikelihood", c, x) for c, x in pairs])
    expected = [by_hand(engine, c, x) for c, x in pairs]
    assert [n for *_, n in expected] != [1] * len(pairs)  # multi-token continuations are covered
    for (ll, greedy), (want_ll, want_greedy, _) in zip(got, expected):
        assert ll == pytest.approx(want_ll, abs=1e-6)
        assert greedy == want_greedy
    assert got[0][0] > got[3][0]  # Paris is likelier than Berlin after this context
    assert any(greedy for _, greedy in got)  # one continuation is the model's own greedy one


def hand_greedy(engine, prompt: str, tokens: int) -> str:
    ids = engine.tokenize(prompt)
    generated = []
    for _ in range(tokens):
        generated.append(int(np.argmax(engine.logits(ids + generated)[-1])))
    return engine.detokenize(generated)


def test_generate_until_is_greedy_and_stops_at_the_until_string(engine):
    prompt = "The capital of France is"
    free = hand_greedy(engine, prompt, 8)
    words = free.split()
    assert len(words) >= 3, free
    stop = " " + words[2]  # the third word: generation must end before it
    lm = EngineLM(engine, max_gen_toks=8)
    [capped, stopped] = lm.generate_until([
        request("generate_until", prompt, {"until": [], "do_sample": False}),
        request("generate_until", prompt, {"until": [stop], "do_sample": False}),
    ])
    assert capped == free  # max_gen_toks greedy tokens, as argmax picks them
    assert stopped == free.split(stop)[0]
    assert stop not in stopped and len(stopped) < len(free)


def test_loglikelihood_rolling_sums_every_token_once(engine):
    text = "Paris is the capital and largest city of France."
    [total] = EngineLM(engine).loglikelihood_rolling([request("loglikelihood_rolling", text)])
    ids = engine.tokenize(text)
    eos = engine._llm.token_eos()  # lm-eval conditions the first token on the prefix token
    bos = engine._llm.token_bos()
    prefix = bos if bos >= 0 else eos
    logits = engine.logits([prefix] + ids[:-1]).astype(np.float64)
    log_z = logits.max(axis=1) + np.log(np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1))
    assert total == pytest.approx(float((logits[np.arange(len(ids)), ids] - log_z).sum()), abs=1e-6)
