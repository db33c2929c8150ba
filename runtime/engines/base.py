"""The small interface every inference engine implements, and the errors they raise.

An engine holds one loaded variant. The runtime server (runtime/server.py) owns the engines and
calls them from request threads; an engine never sees HTTP, and the dashboard never sees an engine.
Adding a backend means one module here plus one line in `runtime/engines/__init__.py`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


class EngineError(Exception):
    """A model could not be loaded or run; the message is shown to the user as is."""

    def __init__(self, message: str, *, code: str = "engine_error", status: int = 500):
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


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
    max_tokens: int = 256
    seed: int | None = None
    stop: tuple[str, ...] = field(default=())

    @classmethod
    def from_dict(cls, data: dict) -> SamplingParams:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and v is not None}
        if "stop" in known:
            known["stop"] = tuple(known["stop"])
        return cls(**known)


@dataclass
class Prepared:
    """A request turned into tokens: what `stream` runs, and what admission checks."""

    tokens: list[int]
    stop: tuple[str, ...]
    max_tokens: int


class Engine(ABC):
    """One loaded model. Not thread-safe: the caller runs one generation at a time per engine
    unless `parallel` says otherwise."""

    name: str = ""
    parallel: bool = False

    def __init__(self, *, files: list[Path], n_ctx: int, threads: int = 2):
        self.files, self.n_ctx, self.threads = files, n_ctx, threads

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
                params: SamplingParams) -> Prepared:
        """Applies the model's own chat template (for messages) and tokenizes."""

    @abstractmethod
    def stream(self, *, prepared: Prepared, params: SamplingParams,
               cancelled: Callable[[], bool]) -> Iterator[str]:
        """Yields text pieces as tokens are generated; checks `cancelled()` before each token."""

    @abstractmethod
    def count_tokens(self, text: str) -> int: ...

    def prepare_checked(self, *, messages: list[dict] | None, prompt: str | None,
                        params: SamplingParams) -> Prepared:
        """`prepare`, then ContextTooLong when the prompt leaves no room to generate; max_tokens
        is capped so prompt + completion fit the context."""
        prepared = self.prepare(messages=messages, prompt=prompt, params=params)
        room = self.n_ctx - len(prepared.tokens)
        if room < 1:
            raise ContextTooLong(prompt_tokens=len(prepared.tokens), n_ctx=self.n_ctx)
        prepared.max_tokens = max(1, min(params.max_tokens, room))
        return prepared
