"""The llama.cpp engine on the real demo GGUF, in-process (loaded once for the module).

Reference numbers come from outside the engine: llama.cpp's own penalties sampler, a logits_all
Llama, SmolLM2-135M's published hidden
size (576), and jsonschema for the constrained replies."""

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from engines import ContextTooLong, EngineError, SamplingParams
from engines.llamacpp import LlamaCppEngine
from tests.support.processes import WIKITEXT

pytestmark = pytest.mark.slow
GREEDY = SamplingParams(temperature=0.0, max_tokens=12, seed=1)
PLAIN = SamplingParams(temperature=0.0, max_tokens=12, repeat_penalty=1.0)  # no penalties at all
SMOLLM2_135M_HIDDEN_SIZE = 576  # config.json of HuggingFaceTB/SmolLM2-135M-Instruct


@pytest.fixture(scope="module")
def engine(demo_gguf):
    engine = LlamaCppEngine(files=[demo_gguf], n_ctx=256, threads=2)
    engine.load()
    yield engine
    engine.unload()


def chat(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def run(engine, params: SamplingParams, *, prompt: str | None = None, messages=None):
    """(pieces, prepared) of one complete generation."""
    prepared = engine.prepare_checked(messages=messages, prompt=prompt, params=params)
    return list(engine.stream(prepared=prepared, params=params, cancelled=lambda: False)), prepared


def text_of(pieces) -> str:
    return "".join(p.text for p in pieces)


def first_token(engine, params: SamplingParams, prompt: str) -> int:
    pieces, _ = run(engine, replace(params, max_tokens=1, logprobs=0),
                    prompt=prompt)
    [token] = engine._llm.tokenize(bytes(pieces[0].logprobs[0]["bytes"]), add_bos=False)
    return token


def test_chat_template_comes_from_the_gguf(engine):
    prepared = engine.prepare(messages=chat("Hi"), prompt=None, params=GREEDY)
    text = engine._llm.detokenize(prepared.tokens, special=True).decode()
    assert text.startswith("<|im_start|>system") and text.endswith("<|im_start|>assistant\n")
    assert "<|im_end|>" in prepared.stop


def test_tools_are_written_into_a_template_without_tool_support(engine):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    messages = chat("Weather in Paris?") + [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]
    prepared = engine.prepare(messages=messages, prompt=None, params=GREEDY, tools=tools)
    text = engine._llm.detokenize(prepared.tokens, special=True).decode()
    assert text.startswith("<|im_start|>system\nYou may call one or more functions")
    assert '"name": "get_weather"' in text and "<tool_call>" in text
    assert "<tool_response>\nsunny\n</tool_response>" in text


def test_prompt_tokens_are_used_as_given_and_checked(engine):
    ids = engine._llm.tokenize(b"The capital of France is", add_bos=False)
    prepared = engine.prepare(messages=None, prompt=None, params=GREEDY, prompt_tokens=ids)
    assert prepared.tokens == ids and engine.detokenize(ids) == "The capital of France is"
    n_vocab = engine._llm.n_vocab()
    for bad in ([1, -1], [n_vocab], [1.5], [True]):
        with pytest.raises(EngineError) as info:
            engine.prepare(messages=None, prompt=None, params=GREEDY, prompt_tokens=bad)
        assert (info.value.status, info.value.param) == (400, "prompt")
    with pytest.raises(EngineError) as info:
        engine.prepare(messages=None, prompt="x", params=SamplingParams(logit_bias=((n_vocab, 1.0),)))
    assert (info.value.status, info.value.param) == (400, "logit_bias")


def test_streams_token_by_token_and_is_deterministic_at_temperature_0(engine):
    first, prepared = run(engine, GREEDY, messages=chat("Name a colour."))
    again, _ = run(engine, GREEDY, messages=chat("Name a colour."))
    assert len(first) > 1 and first == again
    # the reply ran to max_tokens: one piece per token, every one counted
    assert (prepared.finish_reason, prepared.completion_tokens, len(first)) == ("length", 12, 12)


def test_a_seed_makes_sampling_reproducible(engine):
    replies = [text_of(run(engine, SamplingParams(temperature=1.0, max_tokens=12, seed=seed),
                           prompt="My favourite food is")[0]) for seed in (7, 7, 8)]
    assert replies[0] == replies[1] != replies[2]


def test_cancel_flag_stops_before_the_next_token(engine):
    params = SamplingParams(temperature=0.0, max_tokens=100)
    prepared = engine.prepare_checked(messages=None, prompt="Count: 1, 2, 3,", params=params)
    seen = []
    for piece in engine.stream(prepared=prepared, params=params, cancelled=lambda: len(seen) >= 3):
        seen.append(piece)
    assert len(seen) == 3 and prepared.completion_tokens == 3


def test_prompt_longer_than_the_context_is_refused_and_max_tokens_capped(engine):
    with pytest.raises(ContextTooLong) as info:
        engine.prepare_checked(messages=None, prompt="word " * 400, params=GREEDY)
    assert info.value.status == 400 and "256" in info.value.message
    prepared = engine.prepare_checked(messages=None, prompt="word " * 200,
                                      params=SamplingParams(max_tokens=1000))
    assert len(prepared.tokens) + prepared.max_tokens == 256


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    peak = logits.max(axis=1, keepdims=True)
    return logits - peak - np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))


class LogitsAllLlama:
    """llama-cpp-python's own logits_all path on the same file (Llama.eval keeps every position's
    scores): the reference the engine's own batch-by-batch logits are held to."""

    def __init__(self, path, n_ctx: int):
        from llama_cpp import Llama

        self.llm = Llama(str(path), n_ctx=n_ctx, n_threads=2, n_threads_batch=2, logits_all=True,
                         verbose=False)

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=False, special=False)

    def logits(self, ids: list[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(ids)
        return np.array(self.llm.scores[:len(ids)], dtype=np.float32)


@pytest.fixture(scope="module")
def reference(demo_gguf):
    return LogitsAllLlama(demo_gguf, n_ctx=256)


def test_the_engines_logits_are_a_logits_all_llamas(engine, reference):
    """What evaluations score (Engine.logits, every position in n_batch batches) equals what a
    logits_all Llama computes for the same ids, and tokenize() is llama.cpp's plain tokenization."""
    text = (WIKITEXT / "test.txt").read_text()[:3000]
    tokens = engine.tokenize(text)[:200]
    assert tokens == reference.tokenize(text)[:200] and len(tokens) == 200
    ours, theirs = engine.logits(tokens), reference.logits(tokens)
    assert ours.shape == (200, engine.vocab) == (200, 49152) and ours.dtype == np.float32
    assert float(np.abs(ours - theirs).max()) < 1e-4
    assert engine.bos_id is None and engine.info["engine"] == "llama.cpp"


def test_logprobs_per_token_match_llama_cpp_logits(engine, reference):
    """Streamed logprobs are those of the incremental decode (prompt in one batch, then one token
    at a time); score() those of one batch. llama.cpp's CPU attention without flash attention is
    not batch-invariant (about 0.1 apart here after a few tokens), so each is checked against a
    logits_all Llama computed the same way, and the two agree where the computation is shared."""
    params = SamplingParams(temperature=0.0, max_tokens=10, repeat_penalty=1.0, logprobs=5)
    pieces, prepared = run(engine, params, prompt="The capital of France is")
    entries = [lp for p in pieces for lp in p.logprobs]
    assert len(entries) == len(pieces) == prepared.completion_tokens == 10
    for entry in entries:
        top = [t["logprob"] for t in entry["top_logprobs"]]
        assert len(top) == 5 and top == sorted(top, reverse=True) and top[0] <= 0
        # greedy: the chosen token is the most likely one
        assert entry["logprob"] == top[0] and entry["bytes"] == entry["top_logprobs"][0]["bytes"]
    reply = engine._llm.tokenize(text_of(pieces).encode(), add_bos=False)
    assert [list(engine._llm._model.detokenize([t])) for t in reply] == [e["bytes"] for e in entries]
    sequence, n_prompt = prepared.tokens + reply, len(prepared.tokens)
    llm = reference.llm
    llm.reset()
    llm.eval(prepared.tokens)
    for token in reply[:-1]:
        llm.eval([token])
    incremental = log_softmax(np.array(llm.scores[:len(sequence) - 1]))
    batch = log_softmax(reference.logits(sequence))
    scored = engine.score(tokens=sequence, top=5)
    for i, entry in enumerate(entries):
        position = n_prompt - 1 + i  # the row that predicts reply token i
        assert entry["logprob"] == pytest.approx(incremental[position, reply[i]], abs=1e-4)
        assert scored[position + 1]["logprob"] == pytest.approx(batch[position, reply[i]], abs=1e-4)
        assert scored[position + 1]["token"] == entry["token"]
    # the first reply token comes from the prompt's own batch in both: the same numbers
    assert scored[n_prompt]["logprob"] == pytest.approx(entries[0]["logprob"], abs=1e-6)
    assert scored[n_prompt]["top_logprobs"] == entries[0]["top_logprobs"]


def test_logit_bias_bans_and_forces_tokens(engine):
    prompt = "The capital of France is"
    greedy = first_token(engine, PLAIN, prompt)
    banned = first_token(engine, replace(PLAIN, logit_bias=((greedy, -100.0),)), prompt)
    assert banned != greedy
    [zebra] = engine._llm.tokenize(b" zebra", add_bos=False)
    forced = replace(PLAIN, logit_bias=((zebra, 100.0),), logprobs=1, max_tokens=3)
    pieces, _ = run(engine, forced, prompt=prompt)
    assert text_of(pieces) == " zebra zebra zebra"
    assert pieces[0].logprobs[0]["logprob"] == pytest.approx(0.0, abs=1e-6)  # logprobs see the bias


def test_an_end_token_counts_and_is_listed_only_with_logprobs(engine):
    end = ((engine._llm.token_eos(), 100.0),)
    pieces, prepared = run(engine, replace(PLAIN, logit_bias=end, max_tokens=4), prompt="Hi")
    assert pieces == [] and (prepared.finish_reason, prepared.completion_tokens) == ("stop", 1)
    # lm-eval's echo scoring drops the last logprob as the generated token: it must be there
    pieces, _ = run(engine, replace(PLAIN, logit_bias=end, max_tokens=4, logprobs=1), prompt="Hi")
    assert [p.text for p in pieces] == [""] and pieces[0].logprobs[0]["logprob"] > -1e-3


def test_presence_and_frequency_penalties_match_llama_cpp_and_break_a_loop(engine):
    """Our Python penalties against llama.cpp's own penalties sampler on the same prompt."""
    prompt = "I like cats. I like cats. I like"
    plain = SamplingParams(temperature=0.0, max_tokens=24, repeat_penalty=1.0)
    loop = text_of(run(engine, plain, prompt=prompt)[0])
    assert loop.count(" I'm a cat.") >= 4
    llm = engine._llm
    for penalties in ({"presence_penalty": 2.0}, {"frequency_penalty": 1.5, "repeat_penalty": 1.1}):
        params = replace(plain, **penalties)
        pieces, prepared = run(engine, params, prompt=prompt)
        assert text_of(pieces) != loop and text_of(pieces).count(" I'm a cat.") < 2
        llm.reset()
        native = llm.generate(prepared.tokens, temp=0.0, reset=True, **{"repeat_penalty": 1.0, **penalties})
        reference = [next(native) for _ in range(24)]
        native.close()
        assert text_of(pieces) == llm.detokenize(reference).decode()


def test_json_schema_reply_validates(engine):
    schema = {"type": "object", "properties": {"age": {"type": "integer"},
                                               "colour": {"enum": ["red", "green", "blue"]}},
              "required": ["age", "colour"]}
    params = SamplingParams(temperature=0.0, max_tokens=40, json_schema=json.dumps(schema))
    pieces, prepared = run(engine, params, messages=chat("Describe a person."))
    jsonschema.validate(json.loads(text_of(pieces)), schema)
    # the grammar ends on EOS: finish "stop", EOS counted but not yielded
    assert prepared.finish_reason == "stop" and prepared.completion_tokens == len(pieces) + 1
    anything = SamplingParams(temperature=0.0, max_tokens=40, json_schema='{"type": "object"}')
    assert isinstance(json.loads(text_of(run(engine, anything, messages=chat("Hi"))[0])), dict)
    for bad in ('{"type": "strin"}', "[1, 2]", "not json"):
        with pytest.raises(EngineError) as info:
            engine.prepare(messages=chat("Hi"), prompt=None, params=SamplingParams(json_schema=bad))
        assert (info.value.status, info.value.param) == (400, "response_format")


def test_stop_string_is_cut_even_across_tokens(engine):
    pieces, _ = run(engine, PLAIN, prompt="The capital of France is")
    texts, full = [p.text for p in pieces], text_of(pieces)
    stop = texts[0][-2:] + texts[1]  # the end of the first token and all of the second
    assert len(stop) >= 3 and full.find(stop) == len(texts[0]) - 2
    params = replace(PLAIN, stop=(stop,))
    cut, prepared = run(engine, params, prompt="The capital of France is")
    assert text_of(cut) == full[:full.find(stop)] and stop not in text_of(cut)
    # no piece ever released any of the stop string; the token completing it is the last
    assert prepared.finish_reason == "stop" and prepared.completion_tokens == len(cut) == 2


def test_embeddings_are_unit_vectors_and_similar_sentences_are_closer(engine):
    vectors, counted = engine.embed(["The cat sat on the mat.", "A cat was sitting on the mat.",
                                     "Stock markets fell sharply today."])
    v = np.array(vectors)
    assert v.shape == (3, SMOLLM2_135M_HIDDEN_SIZE)
    assert np.linalg.norm(v, axis=1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-6)
    assert v[0] @ v[1] > v[0] @ v[2]
    ids = engine._llm.tokenize(b"The cat sat on the mat.", add_bos=True)
    assert counted == sum(len(engine._llm.tokenize(s.encode(), add_bos=True)) for s in (
        "The cat sat on the mat.", "A cat was sitting on the mat.", "Stock markets fell sharply today."))
    same, n = engine.embed([ids])
    assert n == len(ids) and np.array(same[0]) == pytest.approx(v[0], abs=1e-5)
    with pytest.raises(EngineError) as info:
        engine.embed(["word " * 300])
    assert (info.value.status, info.value.param) == (400, "input")


def test_score_matches_a_logits_all_llama_on_wikitext(engine, reference, monkeypatch):
    tokens = reference.tokenize((WIKITEXT / "test.txt").read_text()[:2000])[:128]
    logsoftmax = log_softmax(reference.logits(tokens))
    expected = sum(logsoftmax[i, tokens[i + 1]] for i in range(len(tokens) - 1))
    before = run(engine, GREEDY, messages=chat("Name a colour."))[0]
    for n_batch in (engine._llm.n_batch, 48):  # one batch, then three chunks
        monkeypatch.setattr(engine._llm, "n_batch", n_batch)
        scored = engine.score(tokens=tokens, top=2)
        assert scored[0] is None and len(scored) == len(tokens)
        assert sum(s["logprob"] for s in scored[1:]) == pytest.approx(expected, rel=1e-3)
    # scoring leaves no state behind: generation afterwards is unchanged
    assert run(engine, GREEDY, messages=chat("Name a colour."))[0] == before


def test_a_broken_file_fails_with_a_clear_error(tmp_path: Path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(EngineError) as info:
        LlamaCppEngine(files=[bad], n_ctx=256).load()
    assert info.value.code == "model_load_failed" and "broken.gguf" in info.value.message



def _ends_mid_character(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return False
    except UnicodeDecodeError as exc:
        return exc.end == len(data) and exc.reason == "unexpected end of data"


@pytest.mark.parametrize("text", ["Reply with three emoji: 😀🎉👍", "日本語で答えてください。", "Привет! Как дела? 🙂"])
def test_a_reply_cut_by_max_tokens_never_ends_in_a_broken_character(engine, text):
    """Every cut of the same greedy reply is a prefix of the whole reply: a character whose
    bytes span tokens (emoji, CJK) is held back, and dropped when max_tokens cuts through it."""
    whole, _ = run(engine, replace(PLAIN, max_tokens=24, logprobs=0), messages=chat(text))
    full = text_of(whole)
    token_bytes = [bytes(p.logprobs[0]["bytes"]) for p in whole if p.logprobs]
    assert "\ufffd" not in full  # the demo model's whole replies here are valid UTF-8
    splits = [n for n in range(1, len(token_bytes) + 1) if _ends_mid_character(b"".join(token_bytes[:n]))]
    assert splits, "no cut falls inside a character: the prompt does not exercise the hold-back"
    for n in range(1, len(token_bytes) + 1):
        pieces, prepared = run(engine, replace(PLAIN, max_tokens=n), messages=chat(text))
        cut = text_of(pieces)
        assert full.startswith(cut) and "\ufffd" not in cut, (n, cut, full)
        assert prepared.completion_tokens == n  # the cut token still counts
        if n in splits:  # exactly the complete characters of its tokens' bytes
            assert cut.encode() == b"".join(token_bytes[:n]).decode("utf-8", "ignore").encode()
