"""Every OpenAI feature /v1 serves, driven by the official `openai` package against real uvicorn,
the runtime server and llama.cpp on the demo GGUF (SmolLM2-135M-Instruct): logprobs, echo and
prompt scoring, prompt lists and token-id prompts, n, penalties and logit_bias, JSON replies,
forced tool calls and tool results, embeddings, and the 400s only the runtime can find.

Numbers are pinned against llama-cpp-python run here on the same file (prompt logprobs, token
ids, embedding size)."""

import base64
import json
import math
import struct

import jsonschema
import numpy as np
import openai
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
GREEDY = {"temperature": 0, "seed": 3}
HELLO = [{"role": "user", "content": "Say hello."}]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}},
                   "required": ["city"], "additionalProperties": False}}}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
EMBEDDING_SIZE = 576  # SmolLM2-135M's hidden size (its config.json, GGUF llama.embedding_length)


@pytest.fixture
def served(runtime_web_server, red_demo, api_keys):
    """(openai client as alice, the demo variant's model id). The rows are per test (transactional
    tests flush the database); the demo file loads in well under a second."""
    return openai.OpenAI(base_url=f"{runtime_web_server}/v1", api_key=api_keys["alice"], max_retries=0,
                         timeout=60), str(red_demo.pk)


@pytest.fixture(scope="module")
def llama():
    """llama-cpp-python on the demo file, in this process: the reference for the numbers."""
    from llama_cpp import Llama

    from catalog.services import demo_model_path

    llm = Llama(str(demo_model_path()), n_ctx=512, n_threads=1, logits_all=True, verbose=False)
    yield llm
    llm.close()


def tokens_of(llm, text: str) -> list[int]:
    return llm.tokenize(text.encode(), add_bos=False, special=False)


def test_chat_logprobs_streamed_and_whole(served):
    api, model = served
    ask = {"model": model, "messages": HELLO, "max_tokens": 8, "logprobs": True, "top_logprobs": 3, **GREEDY}
    whole = api.chat.completions.create(**ask).choices[0]
    entries = whole.logprobs.content
    assert len(entries) == 8 and "".join(e.token for e in entries) == whole.message.content
    for e in entries:
        tops = [t.logprob for t in e.top_logprobs]
        assert len(tops) == 3 and tops == sorted(tops, reverse=True) and tops[0] <= 0
        assert e.top_logprobs[0].token == e.token and e.logprob == pytest.approx(tops[0])  # greedy
        assert bytes(e.bytes) == e.token.encode()
    chunks = [c.choices[0] for c in api.chat.completions.create(**ask, stream=True) if c.choices]
    assert "".join(c.delta.content or "" for c in chunks) == whole.message.content
    streamed = [e for c in chunks if c.logprobs for e in c.logprobs.content]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in entries]


def test_echo_scores_the_prompt_like_llama_cpp(served, llama):
    """max_tokens 0 + echo + logprobs: lm-eval's loglikelihood request, on token-id prompts (two of
    them: one choice each) and on a string."""
    api, model = served
    texts = ["The capital of France is Paris", "One, two, three, four"]
    prompts = [tokens_of(llama, t) for t in texts]
    result = api.completions.create(model=model, prompt=prompts, echo=True, logprobs=1, max_tokens=0)
    assert [c.index for c in result.choices] == [0, 1]
    assert result.usage.prompt_tokens == sum(map(len, prompts)) and result.usage.completion_tokens == 0
    for choice, tokens, text in zip(result.choices, prompts, texts):
        lp = choice.logprobs
        assert choice.text == text and "".join(lp.tokens) == text and choice.finish_reason == "length"
        assert len(lp.token_logprobs) == len(tokens) and lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
        assert lp.text_offset == [len("".join(lp.tokens[:i])) for i in range(len(tokens))]
        llama.reset()
        llama.eval(tokens)
        for i in range(1, len(tokens)):
            row = np.asarray(llama.scores[i - 1], dtype=np.float64)
            log_softmax = row - row.max() - math.log(np.exp(row - row.max()).sum())
            assert lp.token_logprobs[i] == pytest.approx(log_softmax[tokens[i]], abs=2e-3)
            assert max(lp.top_logprobs[i].values()) == pytest.approx(log_softmax.max(), abs=2e-3)
    one = api.completions.create(model=model, prompt=texts[0], echo=True, logprobs=0, max_tokens=1, **GREEDY)
    lp = one.choices[0].logprobs
    assert one.choices[0].text.startswith(texts[0]) and len(lp.tokens) == len(prompts[0]) + 1
    assert lp.token_logprobs[1:len(prompts[0])] == pytest.approx(result.choices[0].logprobs.token_logprobs[1:],
                                                                 abs=1e-4)


def test_prompt_lists_n_and_seeds(served, llama):
    api, model = served
    prompts = ["The sky is", "Water is"]
    result = api.completions.create(model=model, prompt=prompts, n=2, max_tokens=4, **GREEDY)
    texts = [c.text for c in sorted(result.choices, key=lambda c: c.index)]
    assert [c.index for c in result.choices] == [0, 1, 2, 3] and all(texts)
    assert texts[0] == texts[1] and texts[2] == texts[3]  # temperature 0
    assert result.usage.prompt_tokens == sum(len(tokens_of(llama, p)) for p in prompts)
    assert result.usage.completion_tokens == 16

    hot = {"model": model, "messages": [{"role": "user", "content": "Name an animal."}], "max_tokens": 6,
           "temperature": 1.5, "top_p": 1, "extra_body": {"top_k": 0, "min_p": 0}}
    chunks = [c.choices[0] for c in api.chat.completions.create(**hot, n=2, seed=11, stream=True) if c.choices]
    replies = {i: "".join(c.delta.content or "" for c in chunks if c.index == i) for i in (0, 1)}
    assert [c.index for c in chunks if c.finish_reason] == [0, 1]
    second = api.chat.completions.create(**hot, seed=12).choices[0].message.content
    assert replies[1] == second  # choice j runs with seed + j


def test_penalties_and_logit_bias_change_the_greedy_reply(served, llama):
    api, model = served
    ask = {"model": model, "prompt": "1, 2, 3, 4, 5,", "max_tokens": 8, "logprobs": 0, **GREEDY}
    plain = api.completions.create(**ask).choices[0]
    first = tokens_of(llama, plain.logprobs.tokens[0])
    assert len(first) == 1
    banned = api.completions.create(**ask, logit_bias={str(first[0]): -100}).choices[0]
    assert banned.logprobs.tokens[0] != plain.logprobs.tokens[0]
    assert plain.text == " 6, 7, 8"  # digits are single tokens: 8 tokens, the commas repeat
    for penalty in ({"presence_penalty": 2}, {"frequency_penalty": 2}):
        assert api.completions.create(**ask, **penalty).choices[0].text != plain.text, penalty


def test_json_replies_parse_and_validate(served):
    api, model = served
    person = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10},
                                               "age": {"type": "integer", "minimum": 0, "maximum": 150}},
              "required": ["name", "age"], "additionalProperties": False}
    ask = [{"role": "user", "content": "Describe a person as JSON."}]
    reply = api.chat.completions.create(model=model, messages=ask, max_tokens=40, **GREEDY, response_format={
        "type": "json_schema", "json_schema": {"name": "person", "schema": person, "strict": True}})
    jsonschema.validate(json.loads(reply.choices[0].message.content), person)
    reply = api.chat.completions.create(model=model, messages=ask, max_tokens=60, **GREEDY,
                                        response_format={"type": "json_object"})
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_a_forced_tool_call_streamed_and_whole_and_its_result(served):
    api, model = served
    ask = {"model": model, "messages": ASK_WEATHER, "tools": [WEATHER], "max_tokens": 40, **GREEDY,
           "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
    whole = api.chat.completions.create(**ask).choices[0]
    assert whole.finish_reason == "tool_calls" and whole.message.content is None
    (call,) = whole.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_") and call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])

    chunks = [c.choices[0] for c in api.chat.completions.create(**ask, stream=True) if c.choices]
    deltas = [d for c in chunks for d in (c.delta.tool_calls or [])]
    assert {d.index for d in deltas} == {0} and deltas[0].id.startswith("call_")
    assert "".join(d.function.name or "" for d in deltas) == "get_weather"
    assert "".join(d.function.arguments or "" for d in deltas) == call.function.arguments
    assert chunks[-1].finish_reason == "tool_calls"

    required = api.chat.completions.create(**{**ask, "tool_choice": "required"}).choices[0]
    assert required.message.tool_calls[0].function.name == "get_weather"
    answered = api.chat.completions.create(model=model, tools=[WEATHER], max_tokens=8, **GREEDY, messages=[
        *ASK_WEATHER, {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature_c": 18, "sky": "clear"}'}])
    assert answered.choices[0].message.content and answered.usage.prompt_tokens > 40


def test_embeddings(served, llama):
    api, model = served
    texts = ["The cat sat on the mat.", "Stock markets fell today."]
    floats = api.embeddings.create(model=model, input=texts, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1] and floats.model == model
    assert floats.usage.prompt_tokens == sum(len(tokens_of(llama, t)) for t in texts)
    for d in floats.data:
        assert len(d.embedding) == EMBEDDING_SIZE
        assert math.fsum(x * x for x in d.embedding) == pytest.approx(1, abs=1e-3)
    raw = api.with_raw_response.embeddings.create(model=model, input=texts, encoding_format="base64")
    encoded = json.loads(raw.text)["data"][0]["embedding"]
    decoded = struct.unpack(f"<{EMBEDDING_SIZE}f", base64.b64decode(encoded))
    assert decoded == pytest.approx(floats.data[0].embedding, abs=1e-6)
    by_ids = api.embeddings.create(model=model, input=[tokens_of(llama, texts[0])])
    assert by_ids.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-5)
    assert api.embeddings.create(model=model, input=texts[1]).data[0].embedding == pytest.approx(
        floats.data[1].embedding, abs=1e-5)


def test_values_only_the_runtime_can_check_are_400_naming_them(served):
    api, model = served
    refusals = [
        (lambda: api.completions.create(model=model, prompt=[[1, 10**7]], max_tokens=1), "prompt"),
        (lambda: api.chat.completions.create(model=model, messages=HELLO, max_tokens=1,
                                             logit_bias={str(10**7): 5}), "logit_bias"),
        (lambda: api.completions.create(model=model, prompt="x", max_tokens=0), "max_tokens"),
    ]
    for call, param in refusals:
        with pytest.raises(openai.BadRequestError) as info:
            call()
        assert info.value.body["param"] == param, info.value.body
