"""Tool calling for /v1/chat/completions: which tools the model is shown, how a forced call is
constrained, and how a reply becomes OpenAI `tool_calls`.

- tool_choice "auto" (the default with tools): the tools go to the runtime, which renders them
  with the model's chat template (or the Hermes/Qwen convention of engines/base.py's
  `messages_with_tools`); a reply holding <tool_call>{"name", "arguments"}</tool_call> blocks, or
  that is exactly such a JSON object, is answered as tool calls.
- "required" or {"type": "function", "function": {"name"}}: the reply is constrained by a JSON
  Schema of the call itself ({"name": <const>, "arguments": <the function's parameters>}), so it
  always parses into one call whose arguments validate.
- "none": the tools are not shown and the reply is plain content.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from runtime.errors import RuntimeRequestError
from runtime.openai_inputs import check_schema

MAX_TOOLS = 128
TAG = "<tool_call>"
BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
NO_PARAMETERS = {"type": "object", "properties": {}}


class Function(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict | None = Field(None, description="a JSON Schema of the arguments object")
    strict: bool | None = None


class Tool(Schema):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: Function


@dataclass(frozen=True)
class ToolPlan:
    """What one request does with its tools."""

    tools: list[dict]  # shown to the model (the runtime renders them into the prompt)
    parameters: dict[str, dict]  # function name -> its arguments schema
    forced_schema: str | None  # set when tool_choice forces a call: the schema of that call
    parallel: bool


def plan(tools: list[Tool] | None, tool_choice: str | dict | None,
         parallel: bool | None) -> ToolPlan | None:
    """The request's ToolPlan, or None when no tool may be called."""
    if len(tools or []) > MAX_TOOLS:
        raise RuntimeRequestError(f"tools takes at most {MAX_TOOLS} functions", param="tools")
    if tool_choice not in (None, "none", "auto", "required") and not _named(tool_choice):
        raise RuntimeRequestError('tool_choice must be "none", "auto", "required" or {"type": '
                                  '"function", "function": {"name": ...}}', param="tool_choice")
    if not tools:
        if tool_choice not in (None, "none"):
            raise RuntimeRequestError("tool_choice needs tools", param="tool_choice")
        return None
    parameters: dict[str, dict] = {}
    for i, tool in enumerate(tools):
        if tool.function.name in parameters:
            raise RuntimeRequestError(f"tools: function {tool.function.name!r} is defined twice",
                                      param="tools")
        if tool.function.parameters is not None:
            check_schema(tool.function.parameters, param=f"tools.{i}.function.parameters")
        parameters[tool.function.name] = tool.function.parameters or NO_PARAMETERS
    if tool_choice == "none":
        return None
    forced = None
    if tool_choice == "required":
        forced = list(parameters)
    elif isinstance(tool_choice, dict):
        name = tool_choice["function"]["name"]
        if name not in parameters:
            raise RuntimeRequestError(f"tool_choice names {name!r}, which is not in tools",
                                      param="tool_choice")
        forced = [name]
    return ToolPlan(tools=[t.model_dump(exclude_none=True) for t in tools], parameters=parameters,
                    forced_schema=forced and _call_schema({n: parameters[n] for n in forced}),
                    parallel=parallel is not False)


def _named(choice) -> bool:
    return (isinstance(choice, dict) and choice.get("type") == "function"
            and isinstance(choice.get("function"), dict) and isinstance(choice["function"].get("name"), str))


def _call_schema(functions: dict[str, dict]) -> str:
    """JSON Schema of one call {"name", "arguments"} to any of `functions`."""
    options = [{"type": "object", "properties": {"name": {"const": name}, "arguments": parameters},
                "required": ["name", "arguments"], "additionalProperties": False}
               for name, parameters in functions.items()]
    return json.dumps(options[0] if len(options) == 1 else {"anyOf": options})


def _call(data, tools: ToolPlan) -> dict | None:
    """An OpenAI tool call from a parsed {"name", "arguments"} object naming one of the tools."""
    if not isinstance(data, dict) or data.get("name") not in tools.parameters:
        return None
    arguments = data.get("arguments", {})
    if isinstance(arguments, str):  # some models write the arguments as JSON text already
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": data["name"], "arguments": json.dumps(arguments)}}


def _json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def tool_calls(text: str, tools: ToolPlan) -> tuple[str, list[dict]]:
    """(the content left, the calls) of a reply."""
    whole = _call(_json(text.strip()), tools)
    if whole is not None or tools.forced_schema:
        return ("", [whole]) if whole else (text, [])
    calls, content = [], text
    for match in BLOCK.finditer(text):
        call = _call(_json(match.group(1)), tools)
        if call is not None:
            calls.append(call)
            content = content.replace(match.group(0), "", 1)
    if calls and not tools.parallel:
        calls = calls[:1]
    return (content.strip() if calls else text), calls


class ToolStream:
    """Streams a reply's content while holding back whatever may be a tool call: a reply that
    opens with "{" (it may be a bare JSON call, or forced to be one) until its end, otherwise the
    text from the first <tool_call> on (and any tail that could start one)."""

    def __init__(self, tools: ToolPlan):
        self.tools = tools
        self.text = ""
        self.sent = 0  # characters of `text` released as content
        self.holding = False  # the rest is held until the end

    def feed(self, piece: str) -> str:
        """Adds generated text; returns the content that may be released now."""
        self.text += piece
        if self.holding:
            return ""
        if self.sent == 0:
            head = self.text.lstrip()
            if not head:
                return ""
            if head.startswith("{") or self.tools.forced_schema:
                self.holding = True
                return ""
        cut = self.text.find(TAG, self.sent)
        if cut >= 0:
            self.holding = True
        else:
            cut = len(self.text) - next((n for n in range(len(TAG) - 1, 0, -1)
                                         if self.text.endswith(TAG[:n])), 0)
        out, self.sent = self.text[self.sent:max(cut, self.sent)], max(cut, self.sent)
        return out

    def finish(self) -> tuple[str, list[dict]]:
        """At the end: the content not released yet, and the calls."""
        content, calls = tool_calls(self.text[self.sent:], self.tools)
        self.sent = len(self.text)
        return content, calls
