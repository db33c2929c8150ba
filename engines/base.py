"""The small interface every inference engine implements, and the errors they raise.

An engine holds one loaded variant. Two callers share it, so that what is measured is what is
served: the runtime server (runtime/server.py) owns engines for chat and /v1 and calls them from
request threads; the evaluation jobs (jobs/methods/evaluate.py) load one in their child process and
read its plain tokenization, logits and timed runs. An engine never sees HTTP, a job or the
database. Adding a backend means one module here plus one line in `engines/__init__.py`.

Token log-probabilities travel in OpenAI's chat shape, one dict per generated (or scored) token:
  {"token": "<its text>", "logprob": <natural log>, "bytes": [<utf-8 bytes>],
   "top_logprobs": [{"token", "logprob", "bytes"}, ...]}   (the `logprobs` most likely, best first)
They come from the model's own distribution at that step (log-softmax of the logits after
penalties and logit_bias, before temperature and truncation), whatever token was then sampled.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from engines.prefix_cache import PrefixCache

MAX_TOP_LOGPROBS = 20


def package_version(name: str) -> str:
    """The installed version of a distribution, as pip knows it ("?" when it isn't installed)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def omp_env() -> dict:
    """OpenMP settings the process was started with ({} is libgomp's default: spin, then sleep).
    llama.cpp's CPU threads wait for each other at OpenMP barriers; with other work on the node a
    spinning thread holds the core the thread it waits for needs, so a measured speed depends on
    OMP_WAIT_POLICY / GOMP_SPINCOUNT and is recorded with them."""
    return {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_"))}


class EngineError(Exception):
    """A model could not be loaded or run; the message is shown to the user as is."""

    def __init__(self, message: str, *, code: str = "engine_error", status: int = 500,
                 param: str | None = None):
        super().__init__(message)
        self.message, self.code, self.status, self.param = message, code, status, param


class ContextTooLong(EngineError):
    def __init__(self, *, prompt_tokens: int, n_ctx: int):
        super().__init__(
            f"the prompt is {prompt_tokens} tokens but the model's context window is {n_ctx} tokens",
            code="context_length_exceeded", status=400,
        )
        self.prompt_tokens, self.n_ctx = prompt_tokens, n_ctx


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    # OpenAI's: subtracted from a token's logit once if it already occurs in the completion
    # (presence), and once per occurrence (frequency).
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias added to its logit)
    max_tokens: int = 256
    seed: int | None = None
    stop: tuple[str, ...] = field(default=())
    logprobs: int | None = None  # None: off; N: each token's logprob and its N best alternatives
    json_schema: str | None = None  # JSON text of a JSON Schema the whole reply must match

    @classmethod
    def from_dict(cls, data: dict) -> SamplingParams:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and v is not None}
        if "stop" in known:
            known["stop"] = tuple(known["stop"])
        if "logit_bias" in known:
            known["logit_bias"] = tuple((int(t), float(b)) for t, b in known["logit_bias"])
        return cls(**known)


@dataclass
class Prepared:
    """A request turned into tokens: what `stream` runs, and what admission checks. `stream`
    sets `finish_reason` ("stop" or "length") and `completion_tokens` when it ends, and
    `cached_tokens` when it starts."""

    tokens: list[int]
    stop: tuple[str, ...]
    max_tokens: int
    finish_reason: str | None = None
    completion_tokens: int = 0
    cached_tokens: int = 0  # leading prompt tokens `stream` took from the prefix cache, not evaluated


@dataclass
class Piece:
    """Text to append to the reply, and the tokens it came from (empty unless logprobs asked)."""

    text: str
    logprobs: list[dict] = field(default_factory=list)


class Engine(ABC):
    """One loaded model. Not thread-safe: the caller runs one generation at a time per engine
    unless `parallel` says otherwise."""

    name: str = ""
    parallel: bool = False
    can_embed: bool = False  # serves embed(); the runtime refuses the others before loading them
    # False: every request evaluates its whole prompt (the reference the prefix cache is tested against)
    reuse_prefixes: bool = True

    def __init__(self, *, files: list[Path], n_ctx: int, threads: int = 2,
                 device: str | None = None, node: str = "", placement: dict | None = None):
        self.files, self.n_ctx, self.threads = files, n_ctx, threads
        # Where the model goes: "cuda" (the node declared a GPU: load() fails naming the node when
        # it has none, never falling back to the CPU), "cpu", or None for whatever is visible
        # (the runtime server, which doesn't say yet).
        self.device, self.node = device, node
        # On "cuda", how the caller planned to split the model between GPU and RAM
        # ({"options": engine load arguments, "info": what to record}); the engines don't plan
        # it themselves, the planner being a layer they don't import.
        self.placement = placement
        self.prefix_cache = PrefixCache()  # evaluated prompts of conversations not running now
        # Set by load(): the logits' width, the BOS id a text prompt starts with (None when the
        # tokenizer adds none), and what ran (engine, versions, threads, device), recorded beside
        # every number measured through this engine.
        self.vocab = 0
        self.bos_id: int | None = None
        # The tokenizer's own (bos, eos) ids whether or not a prompt gets the BOS: lm-eval
        # conditions an empty context on one of them.
        self.special_ids: tuple[int | None, int | None] = (None, None)
        self.info: dict = {}
        self.tokenizer_info: dict = {}

    @abstractmethod
    def load(self) -> None:
        """Loads weights; raises EngineError with a readable message on failure."""

    @abstractmethod
    def unload(self) -> None: ...

    @abstractmethod
    def memory_bytes(self) -> int:
        """Bytes the loaded model holds (weights + KV cache for n_ctx)."""

    @abstractmethod
    def prepare(self, *, messages: list[dict] | None, prompt: str | None,
                params: SamplingParams, prompt_tokens: list[int] | None = None,
                tools: list[dict] | None = None) -> Prepared:
        """Applies the model's own chat template (for messages, with `tools` when given) and
        tokenizes; a text prompt gets the model's BOS, `prompt_tokens` are taken as they are."""

    @abstractmethod
    def stream(self, *, prepared: Prepared, params: SamplingParams,
               cancelled: Callable[[], bool]) -> Iterator[Piece]:
        """Yields pieces as tokens are generated; checks `cancelled()` before each token. Stop
        strings are cut (never yielded, not even in part); `params.json_schema` constrains every
        token so the reply parses and validates."""

    @abstractmethod
    def score(self, *, tokens: list[int], top: int) -> list[dict | None]:
        """The logprob dict of every token given its prefix (None for the first, which has no
        prefix), with `top` alternatives each: prompt scoring for echo."""

    @abstractmethod
    def count_tokens(self, text: str) -> int: ...

    @abstractmethod
    def detokenize(self, tokens: list[int]) -> str: ...

    # ---- measurement (evaluation jobs) ----

    @classmethod
    def class_path(cls) -> str:
        """The engine class as module.Class, recorded in `info`: which code loaded and ran a
        measured variant (chat loads the same class for the same format)."""
        return f"{cls.__module__}.{cls.__qualname__}"

    @abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """`text` as plain text: no BOS, and special-token names written in it ("<|im_end|>") are
        their characters' tokens, not the control token."""

    @abstractmethod
    def logits(self, tokens: list[int]) -> np.ndarray:
        """float32 [len(tokens), vocab]: every position's logits, from an empty cache."""

    @abstractmethod
    def speed_runner(self, prompt: list[int], gen_tokens: int) -> AbstractContextManager[
            Callable[[], tuple[float, float]]]:
        """A context manager yielding `run() -> (prefill_seconds, decode_seconds)`: one prefill of
        `prompt` from an empty cache, then `gen_tokens` greedy single-token steps with the KV
        cache, on the loaded model (the evaluation repeats it to stable medians)."""

    def peak_device_bytes(self) -> int | None:
        """The GPU's peak allocated bytes since load, None on CPU."""
        return None

    def set_threads(self, threads: int) -> None:
        """The CPU threads the next generation runs with (the runtime lowers them while a job
        runs on the node)."""
        self.threads = threads

    def settle_pending(self) -> bool:
        """Whether settle() has work to do."""
        return False

    def settle(self, interrupted: Callable[[], bool] = lambda: False) -> int:
        """Idle-time work that makes the next turn of the latest conversation cheaper (the prefix
        cache); returns the tokens it evaluated. Stops soon after `interrupted()` turns true."""
        return 0

    def embed(self, inputs: list[str] | list[list[int]]) -> tuple[list[list[float]], int]:
        """One vector per input and the tokens counted; engines that can't raise embed_refusal()."""
        raise self.embed_refusal()

    @classmethod
    def embed_refusal(cls) -> EngineError:
        return EngineError(f"the {cls.name} engine can't make embeddings: /v1/embeddings serves GGUF "
                           "variants only", code="model_cannot_embed", status=400, param="model")

    def prepare_checked(self, *, messages: list[dict] | None, prompt: str | None,
                        params: SamplingParams, prompt_tokens: list[int] | None = None,
                        tools: list[dict] | None = None, min_new: int = 1) -> Prepared:
        """`prepare`, then ContextTooLong when the prompt leaves no room to generate `min_new`
        tokens (0 for scoring only); max_tokens is capped so prompt + completion fit the context."""
        prepared = self.prepare(messages=messages, prompt=prompt, params=params,
                                prompt_tokens=prompt_tokens, tools=tools)
        if not prepared.tokens:
            raise EngineError("the prompt is empty (no tokens): write something to complete",
                              code="bad_request", status=400, param="prompt")
        room = self.n_ctx - len(prepared.tokens)
        if room < min_new:
            raise ContextTooLong(prompt_tokens=len(prepared.tokens), n_ctx=self.n_ctx)
        prepared.max_tokens = max(min_new, min(params.max_tokens, room))
        return prepared


class StopScanner:
    """Cuts a reply at the first stop string, holding back any tail that could still become one,
    so a stop string is never streamed, not even its first characters."""

    def __init__(self, stop: tuple[str, ...]):
        self.stop = tuple(s for s in stop if s)
        self.text = ""  # everything generated so far
        self.sent = 0  # characters of `text` already released
        self.stopped = False

    def feed(self, piece: str) -> str:
        """Adds generated text; returns what may be released now ("" while holding back)."""
        self.text += piece
        cut = min((i for i in (self.text.find(s, max(0, self.sent - len(s) + 1)) for s in self.stop)
                   if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            out, self.sent = self.text[self.sent:cut], cut
            return out
        hold = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, len(self.text)), 0, -1):
                if self.text.endswith(s[:n]):
                    hold = max(hold, n)
                    break
        end = max(self.sent, len(self.text) - hold)
        out, self.sent = self.text[self.sent:end], end
        return out

    def flush(self) -> str:
        """At the end of generation: the held-back tail that never became a stop string."""
        if self.stopped:
            return ""
        out, self.sent = self.text[self.sent:], len(self.text)
        return out


def tools_system_prompt(tools: list[dict]) -> str:
    """How tools are offered to a model whose chat template has no tool support: the convention
    of Hermes/Qwen templates, one JSON call per <tool_call> tag."""
    import json

    lines = ["You may call one or more functions to assist with the user query.",
             "You are provided with function signatures within <tools></tools> XML tags:", "<tools>"]
    lines += [json.dumps(t.get("function", t)) for t in tools]
    lines += ["</tools>", "For each function call, return a json object with function name and "
              "arguments within <tool_call></tool_call> XML tags:",
              '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>']
    return "\n".join(lines)


def messages_with_tools(messages: list[dict], tools: list[dict] | None) -> list[dict]:
    """For a template without tool support: the tool description merged into the system message,
    assistant tool calls written out as <tool_call> text and tool results as user turns."""
    import json

    out = []
    for m in messages:
        if m.get("role") == "tool":
            out.append({"role": "user", "content": f"<tool_response>\n{m.get('content', '')}\n</tool_response>"})
        elif m.get("role") == "assistant" and m.get("tool_calls"):
            calls = "\n".join(
                "<tool_call>\n" + json.dumps({"name": c["function"]["name"],
                                              "arguments": json.loads(c["function"].get("arguments") or "{}")})
                + "\n</tool_call>" for c in m["tool_calls"])
            out.append({"role": "assistant", "content": ((m.get("content") or "") + "\n" + calls).strip()})
        else:
            out.append({"role": m["role"], "content": m.get("content") or ""})
    if tools:
        text = tools_system_prompt(tools)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + text}
        else:
            out.insert(0, {"role": "system", "content": text})
    return out
