"""What /v1 accepts beyond sampling parameters, checked before anything runs: completion prompts
and embedding inputs (text or token ids), chat messages (tool calls and tool results included)
and response_format. Each refusal is a 400 naming the parameter."""

from __future__ import annotations

import json
from typing import Any, Literal

from jsonschema import Draft202012Validator, SchemaError
from ninja import Schema
from pydantic import ConfigDict, Field

from runtime.errors import RuntimeRequestError

MAX_INPUTS = 64  # prompts per completion request, inputs per embeddings request
JSON_OBJECT = '{"type": "object"}'


def inputs(raw: Any, *, param: str) -> list[str | list[int]]:
    """OpenAI's prompt / input forms: a string, a list of strings, a list of token ids or a list
    of token-id lists; one entry per prompt (a string, or token ids sent as they are)."""
    def token_ids(value) -> bool:
        return (isinstance(value, list) and bool(value)
                and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value))

    if isinstance(raw, str):
        return [raw]
    if token_ids(raw):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(p, str) or token_ids(p) for p in raw):
        if len(raw) > MAX_INPUTS:
            raise RuntimeRequestError(f"{param} takes at most {MAX_INPUTS} entries", param=param)
        return raw
    raise RuntimeRequestError(f"{param} must be a string, a list of strings, a list of token ids "
                              "(integers >= 0) or a list of token-id lists, none of them empty",
                              param=param)


def check_schema(schema: Any, *, param: str) -> None:
    """A JSON Schema (draft 2020-12) object, else a 400 naming `param`."""
    if not isinstance(schema, dict):
        raise RuntimeRequestError(f"{param} must be a JSON Schema object", param=param)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise RuntimeRequestError(f"{param} is not a valid JSON Schema: {exc.message}",
                                  param=param) from None


def response_schema(response_format: dict | None) -> str | None:
    """The JSON Schema text the reply must match (params.json_schema), or None for plain text."""
    kind = (response_format or {}).get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        return JSON_OBJECT
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or "schema" not in spec:
            raise RuntimeRequestError('response_format json_schema needs {"json_schema": {"name": ..., '
                                      '"schema": {...}}}', param="response_format")
        check_schema(spec["schema"], param="response_format")
        return json.dumps(spec["schema"])
    raise RuntimeRequestError('response_format type must be "text", "json_object" or "json_schema"',
                              param="response_format")


class CalledFunction(Schema):
    name: str
    arguments: str = Field(description="JSON text of the arguments")


class ToolCall(Schema):
    id: str
    type: Literal["function"] = "function"
    function: CalledFunction


class Message(Schema):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict] | None = Field(None, description="text, or content parts (their text is kept)")
    name: str | None = None
    tool_calls: list[ToolCall] | None = Field(None, description="an assistant's earlier calls")
    tool_call_id: str | None = Field(None, description="the call a tool message answers")


def messages(items: list[Message]) -> list[dict]:
    """Messages as the runtime takes them: text content, "developer" as "system", assistant
    tool calls and tool results passed on (the engines render them)."""
    out = []
    for i, m in enumerate(items):
        content = m.content
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(str(p.get("text", "")) for p in content)
        if content is None and not (m.role == "assistant" and m.tool_calls):
            raise RuntimeRequestError(f"messages.{i}.content is required (only an assistant message "
                                      "with tool_calls may leave it null)", param=f"messages.{i}.content")
        message: dict = {"role": "system" if m.role == "developer" else m.role, "content": content}
        if m.role == "tool":
            if not m.tool_call_id:
                raise RuntimeRequestError(f"messages.{i}.tool_call_id is required for a tool message",
                                          param=f"messages.{i}.tool_call_id")
            message["tool_call_id"] = m.tool_call_id
        if m.tool_calls and m.role != "assistant":
            raise RuntimeRequestError(f"messages.{i}.tool_calls: only assistant messages carry tool calls",
                                      param=f"messages.{i}.tool_calls")
        if m.tool_calls:
            for call in m.tool_calls:
                try:
                    json.loads(call.function.arguments)
                except ValueError:
                    raise RuntimeRequestError(f"messages.{i}.tool_calls: arguments must be JSON text",
                                              param=f"messages.{i}.tool_calls") from None
            message["tool_calls"] = [c.model_dump() for c in m.tool_calls]
        out.append(message)
    return out
