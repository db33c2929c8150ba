"""Evaluated prompt prefixes an engine keeps for the conversations it is not running right now.

An engine keeps the prefix of its latest prompt live in its context (llama.cpp's KV cache); when
another conversation comes in, the live one is saved here (its KV state as bytes) and the incoming
prompt restores the saved state that shares the longest prefix with it, the way llama-server's
prompt cache and llama-cpp-python's LlamaRAMCache pick one. Each cache has a byte limit and drops
its least recently used states first; the runtime's ModelManager also drops them, oldest first
across every loaded model, before it unloads a model to make room (their bytes count in its budget).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_MAX_BYTES = 256 * 1024**2


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens `a` and `b` share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differ = np.flatnonzero(np.asarray(a[:n], dtype=np.int64) != np.asarray(b[:n], dtype=np.int64))
    return int(differ[0]) if len(differ) else n


@dataclass
class SavedPrefix:
    tokens: tuple[int, ...]
    state: object  # the engine's own: llama.cpp sequence bytes, transformers past key values
    nbytes: int
    last_used: float


class PrefixCache:
    """Saved states keyed by the tokens they hold, least recently used first; thread-safe (the
    manager trims it from other threads while the engine generates)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._saved: OrderedDict[tuple[int, ...], SavedPrefix] = OrderedDict()

    def __len__(self) -> int:
        return len(self._saved)

    def bytes(self) -> int:
        with self._lock:
            return sum(s.nbytes for s in self._saved.values())

    def oldest(self) -> float | None:
        """When the least recently used state was last used (time.monotonic), None when empty."""
        with self._lock:
            return next(iter(self._saved.values())).last_used if self._saved else None

    def put(self, tokens: Sequence[int], state: object, nbytes: int) -> None:
        """Keeps `state` unless it alone exceeds the limit; then drops the oldest to fit."""
        key = tuple(tokens)
        with self._lock:
            self._saved.pop(key, None)
            if not key or nbytes > self.max_bytes:
                return
            self._saved[key] = SavedPrefix(key, state, nbytes, time.monotonic())
            total = sum(s.nbytes for s in self._saved.values())
            while total > self.max_bytes:
                total -= self._saved.popitem(last=False)[1].nbytes

    def take(self, tokens: Sequence[int], *, longer_than: int = 0) -> tuple[SavedPrefix, int] | None:
        """Removes and returns the state sharing the longest prefix with `tokens` and that length,
        when it is more than `longer_than` tokens."""
        with self._lock:
            best, best_n = None, longer_than
            for saved in self._saved.values():
                n = common_prefix(saved.tokens, tokens)
                if n > best_n:
                    best, best_n = saved, n
            if best is None:
                return None
            del self._saved[best.tokens]
            return best, best_n

    def drop_oldest(self) -> int:
        """Drops the least recently used state; the bytes freed (0 when empty)."""
        with self._lock:
            return self._saved.popitem(last=False)[1].nbytes if self._saved else 0

    def clear(self) -> None:
        with self._lock:
            self._saved.clear()
