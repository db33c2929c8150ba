"""The transformers engine on a real (tiny, randomly initialised) Llama saved as an HF variant,
with the demo model's real tokenizer and chat template read from its GGUF. Random weights make
the text meaningless; what's checked is the engine's mechanics. Greedy runs use
repeat_penalty=1 so the model's distribution is the plain log-softmax that score() computes."""

import json

import jsonschema
import pytest

from engines import ContextTooLong, EngineError, SamplingParams
from engines.hf_processors import IncrementalDecoder, logprob_entry
from engines.transformers_engine import TransformersEngine

pytestmark = pytest.mark.slow

GREEDY = dict(temperature=0, repeat_penalty=1.0)
# SmolLM2's tokenizer (the demo's): "h" "é" "llo" " \xf0\x9f\x98" "\x80" " world" for
# "héllo 😀 world"; the emoji's four UTF-8 bytes are split over two tokens.
EMOJI_IDS = [88, 2756, 31394, 40303, 218, 905]
EOS = 2  # <|im_end|>
WORLD, H = 905, 88  # " world", "h"


@pytest.fixture(scope="module")
def engine(tiny_chat_hf):
    engine = TransformersEngine(files=sorted(tiny_chat_hf.iterdir()), n_ctx=128, threads=1)
    engine.load()
    yield engine
    engine.unload()


@pytest.fixture(scope="module")
def token_ids(engine):
    """Bytes -> token id over the vocabulary, to turn a stream's logprob dicts back into ids."""
    vocab = engine._byte_tokenizer("logprobs")
    return {vocab.decode_bytes([i]): i for i in range(len(engine._tokenizer))}


def run(engine, *, prompt="Once upon a time", **params):
    params = SamplingParams(**params)
    prepared = engine.prepare_checked(messages=None, prompt=prompt, params=params)
    pieces = list(engine.stream(prepared=prepared, params=params, cancelled=lambda: False))
    return prepared, pieces


def test_chat_template_and_streaming(engine):
    params = SamplingParams(temperature=0, max_tokens=8)
    prepared = engine.prepare_checked(messages=[{"role": "user", "content": "hi"}], prompt=None,
                                      params=params)
    assert "<|im_start|>assistant" in engine._tokenizer.decode(prepared.tokens)
    pieces = list(engine.stream(prepared=prepared, params=params, cancelled=lambda: False))
    assert len(pieces) == 8 and all(p.logprobs == [] for p in pieces)
    assert pieces == list(engine.stream(prepared=prepared, params=params, cancelled=lambda: False))
    assert (prepared.finish_reason, prepared.completion_tokens) == ("length", 8)
    assert engine.memory_bytes() > 0


def test_tools_are_written_into_a_template_without_tool_support(engine):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    messages = [{"role": "user", "content": "weather in Oslo?"},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]
    prepared = engine.prepare(messages=messages, prompt=None, params=SamplingParams(), tools=tools)
    text = engine._tokenizer.decode(prepared.tokens)
    assert '<tools>\n{"name": "get_weather"' in text
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>' in text
    assert "<|im_start|>user\n<tool_response>\nsunny\n</tool_response>" in text


def test_tools_go_to_a_template_that_supports_them(engine, monkeypatch):
    monkeypatch.setattr(engine._tokenizer, "chat_template",
                        "{% for t in tools or [] %}[tool {{ t.function.name }}]{% endfor %}"
                        "{% for m in messages %}[{{ m.role }}: {{ m.content }}]{% endfor %}")
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    prepared = engine.prepare(messages=[{"role": "user", "content": "hi"}], prompt=None,
                              params=SamplingParams(), tools=tools)
    assert engine._tokenizer.decode(prepared.tokens) == "[tool get_weather][user: hi]"


def test_prompt_tokens_are_used_as_given_and_checked(engine):
    params = SamplingParams(**GREEDY, max_tokens=3)
    prepared = engine.prepare_checked(messages=None, prompt=None, params=params,
                                      prompt_tokens=EMOJI_IDS)
    assert prepared.tokens == EMOJI_IDS
    assert engine.detokenize([EOS, *EMOJI_IDS]) == "héllo 😀 world"  # special tokens left out
    for bad in ([], [0, 49152], [-1], ["7"]):
        with pytest.raises(EngineError) as caught:
            engine.prepare(messages=None, prompt=None, params=params, prompt_tokens=bad)
        assert (caught.value.status, caught.value.param) == (400, "prompt")


def test_decoding_releases_only_whole_characters(engine):
    decoder = IncrementalDecoder(engine._tokenizer)
    assert [decoder.add(t) for t in EMOJI_IDS] == ["h", "é", "llo", "", " 😀", " world"]
    half = IncrementalDecoder(engine._tokenizer)
    assert half.add(40303) == "" and half.flush() == " "  # the emoji's first 3 of 4 bytes dropped
    entry = logprob_entry(engine._byte_tokenizer("logprobs"), 40303, -1.5, [218], [-2.0])
    assert entry == {"token": " \ufffd", "logprob": -1.5, "bytes": [32, 0xF0, 0x9F, 0x98],
                     "top_logprobs": [{"token": "\ufffd", "logprob": -2.0, "bytes": [0x80]}]}
    eos = logprob_entry(engine._byte_tokenizer("logprobs"), EOS, -3.0, [], [])
    assert eos == {"token": "", "logprob": -3.0, "bytes": [], "top_logprobs": []}


def test_a_reply_cut_inside_a_character_drops_its_bytes(engine):
    """max_tokens 1 with the token forced to " " plus an emoji's first three bytes: the reply is
    the space alone (the old behaviour sent " \ufffd"), the token still counted."""
    forced = ((40303, 100.0),)
    prepared, pieces = run(engine, temperature=0, max_tokens=1, logit_bias=forced)
    assert "".join(p.text for p in pieces) == " "
    assert (prepared.finish_reason, prepared.completion_tokens) == ("length", 1)


def test_logprobs_match_scoring_and_greedy_takes_the_best(engine, token_ids):
    prepared, pieces = run(engine, **GREEDY, max_tokens=6, logprobs=3)
    entries = [p.logprobs[0] for p in pieces]
    assert len(entries) == 6 and all(len(p.logprobs) == 1 for p in pieces)
    for entry in entries:
        tops = [t["logprob"] for t in entry["top_logprobs"]]
        assert len(tops) == 3 and tops == sorted(tops, reverse=True)
        assert entry["top_logprobs"][0]["bytes"] == entry["bytes"]  # greedy: the chosen is top-1
        assert entry["logprob"] == pytest.approx(tops[0])
    completion = [token_ids[bytes(e["bytes"])] for e in entries]
    scored = engine.score(tokens=prepared.tokens + completion, top=3)
    assert len(scored) == len(prepared.tokens) + 6 and scored[0] is None
    for streamed, again in zip(entries, scored[len(prepared.tokens):]):
        assert again["bytes"] == streamed["bytes"]
        assert again["logprob"] == pytest.approx(streamed["logprob"], abs=1e-3)
        assert [t["logprob"] for t in again["top_logprobs"]] == pytest.approx(
            [t["logprob"] for t in streamed["top_logprobs"]], abs=1e-3)
    assert "".join(p.text for p in pieces) == engine.detokenize(completion)
    with pytest.raises(EngineError) as caught:
        engine.score(tokens=[1, 10**6], top=0)
    assert (caught.value.status, caught.value.param) == (400, "prompt")


def test_logit_bias_forces_and_bans_tokens(engine, token_ids):
    _, plain = run(engine, **GREEDY, max_tokens=1, logprobs=0)
    first = token_ids[bytes(plain[0].logprobs[0]["bytes"])]
    _, forced = run(engine, **GREEDY, max_tokens=3, logprobs=0, logit_bias=((WORLD, 100.0),))
    assert "".join(p.text for p in forced) == " world" * 3
    assert all(p.logprobs[0]["logprob"] > -1e-3 for p in forced)  # the bias is in the logprobs
    _, banned = run(engine, **GREEDY, max_tokens=1, logprobs=0, logit_bias=((first, -100.0),))
    assert token_ids[bytes(banned[0].logprobs[0]["bytes"])] != first
    with pytest.raises(EngineError) as caught:
        run(engine, logit_bias=((10**6, 1.0),))
    assert (caught.value.status, caught.value.param) == (400, "logit_bias")


def test_presence_and_frequency_penalties_are_openais(engine):
    """Two tokens biased far above the rest (" world" +20, "h" +18) so greedy picks " world"
    every step; the gap between their logprobs (normalisation cancels out) then shrinks by
    exactly the penalty: presence once the token is used, frequency per use; the prompt's own
    " world" doesn't count."""

    def gaps(**penalty):
        _, pieces = run(engine, prompt="hello world", **GREEDY, max_tokens=3, logprobs=2,
                        logit_bias=((WORLD, 20.0), (H, 18.0)), **penalty)
        assert "".join(p.text for p in pieces) == " world" * 3
        return [{bytes(t["bytes"]): t["logprob"] for t in p.logprobs[0]["top_logprobs"]}
                for p in pieces]

    def shrink(penalised, plain):
        return [(a[b" world"] - a[b"h"]) - (b[b" world"] - b[b"h"]) for a, b in zip(plain, penalised)]

    plain = gaps()
    assert shrink(gaps(presence_penalty=0.5), plain) == pytest.approx([0, 0.5, 0.5], abs=1e-4)
    assert shrink(gaps(frequency_penalty=0.5), plain) == pytest.approx([0, 0.5, 1.0], abs=1e-4)


def test_json_schema_reply_validates(engine):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"},
                                               "n": {"type": "integer", "minimum": 0, "maximum": 9}},
              "required": ["ok", "n"], "additionalProperties": False}
    for seed in (1, 2):
        prepared, pieces = run(engine, temperature=0.9, seed=seed, max_tokens=40,
                               json_schema=json.dumps(schema))
        reply = json.loads("".join(p.text for p in pieces))
        jsonschema.validate(reply, schema)
        assert (prepared.finish_reason, prepared.completion_tokens) == ("stop", len(pieces))
    with pytest.raises(EngineError) as caught:
        run(engine, json_schema='{"type": "objekt"}')
    assert (caught.value.status, caught.value.param) == (400, "response_format")


def test_stop_string_is_never_streamed(engine):
    _, plain = run(engine, **GREEDY, max_tokens=10)
    texts = [p.text for p in plain]
    full = "".join(texts)
    # a stop string across the 3rd/4th tokens' boundary: the 3rd must be held back, not sent
    boundary = len("".join(texts[:3]))
    stop = full[boundary - 2:boundary + 2]
    prepared, pieces = run(engine, **GREEDY, max_tokens=10, stop=(stop, "never-there"))
    assert "".join(p.text for p in pieces) == full[:full.index(stop)]
    assert pieces[2].text == texts[2][:-2] and len(pieces) == 4
    assert (prepared.finish_reason, prepared.completion_tokens) == ("stop", 4)


def test_eos_finishes_with_stop(engine):
    prepared, pieces = run(engine, **GREEDY, max_tokens=5, logit_bias=((EOS, 100.0),))
    # EOS counts as a generated token (as in the llama.cpp engine) but has no text to stream
    assert pieces == [] and (prepared.finish_reason, prepared.completion_tokens) == ("stop", 1)
    # with logprobs it is listed, text "" (lm-eval's echo scoring drops the last entry as the
    # generated one, so it must be there even when the model ends at once)
    prepared, pieces = run(engine, **GREEDY, max_tokens=5, logprobs=2, logit_bias=((EOS, 100.0),))
    assert [p.text for p in pieces] == [""] and len(pieces[0].logprobs) == 1
    assert pieces[0].logprobs[0]["logprob"] > -1e-3


def test_seed_repeats_a_sampled_reply(engine):
    first = run(engine, temperature=0.9, max_tokens=6, seed=7)[1]
    assert first == run(engine, temperature=0.9, max_tokens=6, seed=7)[1]
    assert first != run(engine, temperature=0.9, max_tokens=6, seed=8)[1]


def test_cancel_stops_generation_early(engine):
    params = SamplingParams(temperature=0.9, max_tokens=100, seed=1)
    prepared = engine.prepare_checked(messages=None, prompt="Once upon a time", params=params)
    seen = []
    for piece in engine.stream(prepared=prepared, params=params, cancelled=lambda: len(seen) >= 2):
        seen.append(piece)
    assert len(seen) == 2  # checked before each token


def test_context_limit(engine):
    with pytest.raises(ContextTooLong):
        engine.prepare_checked(messages=None, prompt="word " * 200, params=SamplingParams())


def test_remote_code_is_never_trusted(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "made-up", "auto_map": '
                                          '{"AutoModelForCausalLM": "evil.Model"}}')
    (tmp_path / "evil.py").write_text("raise SystemExit('ran remote code')\n")
    with pytest.raises(EngineError, match="could not load"):
        TransformersEngine(files=[tmp_path / "config.json"], n_ctx=64).load()
