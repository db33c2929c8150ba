"""/v1 checks every value before the model is looked up or anything runs: each bad value is a 400 in OpenAI's shape naming
its parameter, unsupported parameters are refused unless sent at their no-op value, an unknown
parameter is a 400 naming it; GET /v1/models/<id>. No runtime server is needed here. Also the
pure parts: prompt forms, tool-call parsing and holding back, legacy logprobs."""

import json

import pytest
from django.test import Client

from runtime.errors import RuntimeRequestError

pytestmark = pytest.mark.django_db
HELLO = [{"role": "user", "content": "Say hello."}]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                          "required": ["city"]}}}


@pytest.fixture
def api(teams):
    from runtime.services import api_token_create

    return Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=teams['alice'], name='t')[1]}")


def post(api, path: str, body: dict):
    return api.post(path, json.dumps(body), content_type="application/json")


CHAT, TEXT, EMBED = "/v1/chat/completions", "/v1/completions", "/v1/embeddings"
# Every check runs before the model is looked up, so no variant is needed: a value that wrongly
# passed would meet this id's 404 instead of the 400.
MODEL = "999999"


@pytest.mark.parametrize("path, extra, param", [
    # unsupported, or unknown where they don't belong
    (TEXT, {"best_of": 3}, "best_of"),
    (TEXT, {"suffix": "end"}, "suffix"),
    (CHAT, {"modalities": ["text", "audio"]}, "modalities"),
    (CHAT, {"audio": {"voice": "alloy"}}, "audio"),
    (CHAT, {"prediction": {"type": "content", "content": "x"}}, "prediction"),
    (CHAT, {"reasoning_effort": "low"}, "reasoning_effort"),
    (CHAT, {"functions": [{"name": "f"}]}, "functions"),
    (CHAT, {"function_call": {"name": "f"}}, "function_call"),
    (CHAT, {"echo": True}, "echo"),
    (TEXT, {"tools": [WEATHER]}, "tools"),
    (CHAT, {"warp_speed": 9}, "warp_speed"),
    # n, logprobs
    (CHAT, {"n": 0}, "n"),
    (TEXT, {"n": 9}, "n"),
    (CHAT, {"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    (CHAT, {"top_logprobs": 3}, "top_logprobs"),
    (TEXT, {"logprobs": 6}, "logprobs"),
    (TEXT, {"logprobs": -1}, "logprobs"),
    # penalties, logit_bias
    (CHAT, {"presence_penalty": 2.5}, "presence_penalty"),
    (TEXT, {"frequency_penalty": -3}, "frequency_penalty"),
    (CHAT, {"logit_bias": {"abc": 5}}, "logit_bias"),
    (CHAT, {"logit_bias": {"-5": 5}}, "logit_bias"),
    (CHAT, {"logit_bias": {"5": 101}}, "logit_bias"),
    (CHAT, {"logit_bias": {"5": "lots"}}, "logit_bias"),
    (CHAT, {"logit_bias": {str(i): 1 for i in range(301)}}, "logit_bias"),
    (CHAT, {"logit_bias": [[5, 1]]}, "logit_bias"),
    # response_format
    (CHAT, {"response_format": {"type": "xml"}}, "response_format"),
    (CHAT, {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format"),
    (CHAT, {"response_format": {"type": "json_schema",
                                "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}}, "response_format"),
    (CHAT, {"response_format": {"type": "json_object"}, "tools": [WEATHER], "tool_choice": "required"},
     "response_format"),
    # tools, tool_choice
    (CHAT, {"tools": [{"type": "retrieval", "function": WEATHER["function"]}]}, "tools.0.type"),
    (CHAT, {"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools.0.function.name"),
    (CHAT, {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 5}}}]},
     "tools.0.function.parameters"),
    (CHAT, {"tools": [WEATHER, WEATHER]}, "tools"),
    (CHAT, {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "tool_choice"),
    (CHAT, {"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
    (CHAT, {"tool_choice": "required"}, "tool_choice"),
    # prompts, max_tokens
    (TEXT, {"prompt": []}, "prompt"),
    (TEXT, {"prompt": ["a", 1]}, "prompt"),
    (TEXT, {"prompt": [-1, 5]}, "prompt"),
    (TEXT, {"prompt": [[]]}, "prompt"),
    (TEXT, {"prompt": [True]}, "prompt"),
    (TEXT, {"prompt": ["a"] * 65}, "prompt"),
    (TEXT, {"max_tokens": 0}, "max_tokens"),
    (TEXT, {"max_tokens": -1, "echo": True}, "max_tokens"),
    (CHAT, {"max_tokens": 0}, "max_tokens"),
])
def test_a_bad_value_is_a_400_naming_its_parameter(api, path, extra, param):
    body = {"model": MODEL, **({"messages": HELLO} if path == CHAT else {"prompt": "Hi"})}
    r = post(api, path, {**body, **extra})
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error", error


@pytest.mark.parametrize("messages, param", [
    ([{"role": "robot", "content": "hi"}], "messages.0.role"),
    ([{"role": "user", "content": None}], "messages.0.content"),
    ([{"role": "user", "content": "hi"}, {"role": "tool", "content": "12 C"}], "messages.1.tool_call_id"),
    ([{"role": "user", "content": "hi"},
      {"role": "assistant", "content": None, "tool_calls": [
          {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}],
     "messages.1.tool_calls"),
])
def test_bad_messages_are_400_naming_the_message(api, messages, param):
    r = post(api, CHAT, {"model": MODEL, "messages": messages})
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.content


@pytest.mark.parametrize("extra, param", [
    ({"dimensions": 8}, "dimensions"),
    ({"encoding_format": "hex"}, "encoding_format"),
    ({"input": []}, "input"),
    ({"input": [""]}, "input"),
    ({"input": ["a", [1, 2]]}, "input"),
    ({"input": {"text": "a"}}, "input"),
    ({"stream": True}, "stream"),
])
def test_bad_embedding_requests_are_400(api, extra, param):
    r = post(api, EMBED, {"model": MODEL, "input": "hello", **extra})
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.content


def test_no_op_values_of_unsupported_parameters_pass():
    from runtime.openai_api import refuse_unsupported

    refuse_unsupported({"best_of": 1, "suffix": "", "functions": [], "function_call": "none",
                        "modalities": ["text"], "audio": None, "prediction": None})
    with pytest.raises(RuntimeRequestError) as info:
        refuse_unsupported({"best_of": 2})
    assert info.value.code == "unsupported_parameter"


def test_prompt_forms():
    from runtime.openai_inputs import inputs

    assert inputs("Hi", param="prompt") == ["Hi"]
    assert inputs(["a", "b"], param="prompt") == ["a", "b"]
    assert inputs([1, 2, 3], param="prompt") == [[1, 2, 3]]
    assert inputs([[1, 2], [3]], param="prompt") == [[1, 2], [3]]
    assert inputs(["a", [3]], param="prompt") == ["a", [3]]


def test_response_format_becomes_the_reply_schema():
    from runtime.openai_inputs import response_schema

    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert response_schema(None) is None and response_schema({"type": "text"}) is None
    assert json.loads(response_schema({"type": "json_object"})) == {"type": "object"}
    assert json.loads(response_schema({"type": "json_schema",
                                       "json_schema": {"name": "n", "schema": schema, "strict": True}})) == schema


def _plan(tool_choice="auto", parallel=None):
    from runtime.openai_tools import Tool, plan

    return plan([Tool(**WEATHER), Tool(type="function", function={"name": "now"})], tool_choice, parallel)


def test_a_forced_tool_choice_constrains_the_reply_to_that_call():
    import jsonschema

    named = json.loads(_plan({"type": "function", "function": {"name": "get_weather"}}).forced_schema)
    jsonschema.validate({"name": "get_weather", "arguments": {"city": "Oslo"}}, named)
    for wrong in ({"name": "now", "arguments": {}}, {"name": "get_weather", "arguments": {}},
                  {"name": "get_weather"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, named)
    required = json.loads(_plan("required").forced_schema)
    jsonschema.validate({"name": "now", "arguments": {}}, required)
    assert _plan("none") is None and _plan("auto").forced_schema is None


def test_tool_calls_are_parsed_from_tags_or_a_bare_json_reply():
    from runtime.openai_tools import tool_calls

    tools = _plan()
    content, calls = tool_calls('Let me look.\n<tool_call>\n{"name": "get_weather", "arguments": '
                                '{"city": "Oslo"}}\n</tool_call>\n<tool_call>{"name": "now", '
                                '"arguments": {}}</tool_call>', tools)
    assert content == "Let me look."
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("get_weather", {"city": "Oslo"}), ("now", {})]
    assert calls[0]["id"].startswith("call_") and calls[0]["type"] == "function"
    assert len(tool_calls('{"name": "now", "arguments": {}}', tools)[1]) == 1
    assert len(tool_calls('<tool_call>{"name": "now", "arguments": {}}</tool_call>' * 2,
                          _plan(parallel=False))[1]) == 1
    # an unknown function or broken JSON stays content
    for text in ('<tool_call>{"name": "launch", "arguments": {}}</tool_call>', "<tool_call>{oops</tool_call>",
                 '{"answer": 42}'):
        assert tool_calls(text, tools) == (text, [])


def test_streamed_content_holds_back_what_may_be_a_tool_call():
    from runtime.openai_tools import ToolStream

    stream = ToolStream(_plan())
    released = [stream.feed(p) for p in ["Sure", ", here: <tool", "_call>", '{"name": "now", ', '"arguments": {}}',
                                         "</tool_call>"]]
    assert released == ["Sure", ", here: ", "", "", "", ""]
    content, calls = stream.finish()
    assert content == "" and calls[0]["function"]["name"] == "now"
    plain = ToolStream(_plan())
    assert [plain.feed(p) for p in ["<to", "day is fine"]] == ["", "<today is fine"]
    assert plain.finish() == ("", [])
    bare = ToolStream(_plan())
    assert [bare.feed(p) for p in [" ", '{"a"', ": 1}"]] == ["", "", ""]
    assert bare.finish() == (' {"a": 1}', [])


def test_legacy_logprobs_shape():
    from runtime.openai_shapes import legacy_logprobs

    entries = [None, {"token": " wor", "logprob": -1.5, "bytes": [32, 119, 111, 114],
                      "top_logprobs": [{"token": " the", "logprob": -0.5, "bytes": []}]},
               {"token": "ld", "logprob": -0.1, "bytes": [108, 100], "top_logprobs": []}]
    assert legacy_logprobs(entries, offset=0, first_token="Hello") == {
        "tokens": ["Hello", " wor", "ld"], "token_logprobs": [None, -1.5, -0.1],
        "top_logprobs": [None, {" the": -0.5, " wor": -1.5}, {"ld": -0.1}], "text_offset": [0, 5, 9]}


def test_one_model_by_id_is_team_scoped(api, teams, demo_variant):
    from runtime.services import api_token_create

    r = api.get(f"/v1/models/{demo_variant.pk}")
    assert r.status_code == 200 and r.json()["id"] == str(demo_variant.pk) and r.json()["object"] == "model"
    bob = Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=teams['bob'], name='t')[1]}")
    r = bob.get(f"/v1/models/{demo_variant.pk}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
