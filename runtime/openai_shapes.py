"""OpenAI response objects (chat.completion, chat.completion.chunk, text_completion), built from
the runtime's events by one state object per choice, so a streamed reply and a whole one are the
same text, logprobs and tool calls.

Logprobs: the engines send OpenAI's chat shape (engines/base.py); chat passes it on as
choices[i].logprobs.content, completions turn it into the legacy shape {tokens, token_logprobs,
top_logprobs [{token: logprob}], text_offset}, where top_logprobs holds the N alternatives asked
for plus the chosen token, and text_offset counts characters from the start of the choice's text
(the echoed prompt included).
"""

from __future__ import annotations

import time

from runtime.openai_tools import ToolPlan, ToolStream


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> dict:
    """OpenAI's usage object; `cached_tokens`: prompt tokens taken from the prefix cache, not
    evaluated again (OpenAI's prompt_tokens_details.cached_tokens)."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens}}


def finish_reason(reason: str) -> str:
    return "length" if reason == "length" else "stop"


class Envelope:
    """The fields every object of one response shares."""

    def __init__(self, *, model: str, chat: bool, request_id: str):
        self.model, self.chat, self.created = model, chat, int(time.time())
        self.id = ("chatcmpl-" if chat else "cmpl-") + request_id.split("-", 1)[1]

    def _base(self, object_: str) -> dict:
        return {"id": self.id, "object": object_, "created": self.created, "model": self.model}

    def whole(self, choices: list[dict], totals: dict) -> dict:
        return {**self._base("chat.completion" if self.chat else "text_completion"),
                "choices": choices, "usage": totals}

    def chunk(self, choices: list[dict], totals: dict | None = None) -> dict:
        out = {**self._base("chat.completion.chunk" if self.chat else "text_completion"),
               "choices": choices}
        if totals is not None:
            out["usage"] = totals
        return out


def legacy_logprobs(entries: list[dict | None], *, offset: int, first_token: str = "") -> dict:
    """Chat-shape logprob dicts -> the completions API's legacy shape; a None entry (the first
    echoed prompt token, which has no prefix to be scored on) is `first_token` with null
    logprobs."""
    out: dict[str, list] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for entry in entries:
        token = first_token if entry is None else entry["token"]
        top = None
        if entry is not None:
            top = {}
            for alternative in entry.get("top_logprobs", []):
                top.setdefault(alternative["token"], alternative["logprob"])
            top.setdefault(token, entry["logprob"])
        out["tokens"].append(token)
        out["token_logprobs"].append(None if entry is None else entry["logprob"])
        out["top_logprobs"].append(top)
        out["text_offset"].append(offset)
        offset += len(token)
    return out


def _first_token(prompt_text: str, entries: list[dict | None]) -> str:
    """The first prompt token's text: what the prompt holds before the other tokens' texts."""
    rest = "".join(e["token"] for e in entries[1:] if e is not None)
    return prompt_text[:len(prompt_text) - len(rest)] if prompt_text.endswith(rest) else ""


class ChatChoice:
    """One chat choice: its content (or tool calls), logprobs and finish reason."""

    def __init__(self, index: int, *, logprobs: bool, tools: ToolPlan | None):
        self.index, self.want_logprobs = index, logprobs
        self.tools = ToolStream(tools) if tools else None
        self.content, self.calls, self.finish = "", [], None
        self.logprobs: list[dict] = []
        self.pending: list[dict] = []  # logprobs of tokens whose text is not released yet

    def _delta(self, delta: dict, finish: str | None = None) -> dict:
        logprobs = None
        if self.want_logprobs and self.pending:
            logprobs, self.pending = {"content": self.pending, "refusal": None}, []
        return {"index": self.index, "delta": delta, "finish_reason": finish, "logprobs": logprobs}

    def opened(self, start: dict) -> list[dict]:
        return [self._delta({"role": "assistant", "content": ""})]

    def token(self, event: dict) -> list[dict]:
        self.logprobs += event.get("logprobs") or []
        self.pending += event.get("logprobs") or []
        text = self.tools.feed(event["text"]) if self.tools else event["text"]
        self.content += text
        return [self._delta({"content": text})] if text else []

    def done(self, event: dict) -> list[dict]:
        chunks = []
        if self.tools:
            rest, self.calls = self.tools.finish()
            if rest:
                self.content += rest
                chunks.append(self._delta({"content": rest}))
            for i, call in enumerate(self.calls):
                chunks.append(self._delta({"tool_calls": [{"index": i, **call}]}))
        self.finish = "tool_calls" if self.calls else finish_reason(event["finish_reason"])
        return [*chunks, self._delta({}, self.finish)]

    def whole(self) -> dict:
        message: dict = {"role": "assistant", "content": self.content or (None if self.calls else "")}
        if self.calls:
            message["tool_calls"] = self.calls
        return {"index": self.index, "message": message, "finish_reason": self.finish,
                "logprobs": {"content": self.logprobs, "refusal": None} if self.want_logprobs else None}


class TextChoice:
    """One text completion choice: the echoed prompt (echo), the completion, legacy logprobs."""

    def __init__(self, index: int, *, logprobs: int | None, echo: bool):
        self.index, self.want_logprobs, self.echo = index, logprobs is not None, echo
        self.text, self.finish, self.offset = "", None, 0
        self.logprobs = legacy_logprobs([], offset=0)

    def _piece(self, text: str, entries: list[dict | None], finish: str | None = None,
               first_token: str = "") -> dict:
        self.text += text
        logprobs = None
        if self.want_logprobs:
            logprobs = legacy_logprobs(entries, offset=self.offset, first_token=first_token)
            self.offset += sum(len(t) for t in logprobs["tokens"])
            for key, values in logprobs.items():
                self.logprobs[key] += values
        return {"index": self.index, "text": text, "finish_reason": finish, "logprobs": logprobs}

    def opened(self, start: dict) -> list[dict]:
        if not self.echo:
            return []
        prompt, entries = start.get("prompt_text", ""), start.get("prompt_logprobs") or []
        return [self._piece(prompt, entries, first_token=_first_token(prompt, entries))]

    def token(self, event: dict) -> list[dict]:
        if not event["text"] and not event.get("logprobs"):
            return []
        return [self._piece(event["text"], event.get("logprobs") or [])]

    def done(self, event: dict) -> list[dict]:
        self.finish = finish_reason(event["finish_reason"])
        return [self._piece("", [], self.finish)]

    def whole(self) -> dict:
        return {"index": self.index, "text": self.text, "finish_reason": self.finish,
                "logprobs": self.logprobs if self.want_logprobs else None}
