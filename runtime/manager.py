"""Which variants are loaded in this runtime process, and who may generate with them right now.

- A variant is loaded on first use, if its estimated bytes (runtime/memory.py) fit the memory
  budget after evicting least recently used models that nobody is generating with.
- Each variant admits `max_concurrent` generations and keeps up to `queue` more waiting; past that
  `acquire` raises Busy (the dashboard answers 429 with Retry-After).
- A reaper thread unloads models idle for `idle_seconds`.
- The evaluated prompts engines keep for conversations (engines/prefix_cache.py) count
  in the budget and go first: the least recently used of them, across models, are dropped before
  any model is unloaded, and after each generation until everything fits.
- After a generation, a model nobody else is using runs `engine.settle()` in a background thread
  (the next turn of that conversation then finds the reply cached); a request for the model
  interrupts it between batches, and a settling model is neither evicted nor unloaded.
Engines that aren't `parallel` run one generation at a time behind a per-model lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from engines import Engine, EngineError, engine_for, gpu_available
from quantdash import node
from runtime.memory import estimate_bytes

log = logging.getLogger(__name__)


class Busy(EngineError):
    def __init__(self, *, variant_id: str, retry_after: int):
        super().__init__(f"model {variant_id} is busy: every generation slot and queue place is "
                         "taken; try again shortly", code="model_busy", status=429)
        self.retry_after = retry_after


@dataclass(frozen=True)
class LoadSpec:
    variant_id: str
    format: str
    files: tuple[Path, ...]
    n_ctx: int
    config: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Loaded:
    spec: LoadSpec
    engine: Engine
    estimate: int
    loaded_at: float
    last_used: float
    run_lock: threading.Lock = field(default_factory=threading.Lock)
    settling: bool = False  # engine.settle() is running in the background
    node_jobs: list[int] = field(default_factory=list)  # jobs running on this node at the last acquire


@dataclass
class Slots:
    active: int = 0
    waiting: int = 0


class ModelManager:
    def __init__(self, *, memory_budget_bytes: int, max_concurrent: int = 1, queue: int = 2,
                 queue_timeout: float = 60.0, idle_seconds: float = 600.0, threads: int = 2,
                 retry_after: int = 2, busy_threads: int | None = None,
                 engine_factory: Callable[[str], type[Engine]] = engine_for):
        self.memory_budget_bytes = memory_budget_bytes
        self.max_concurrent, self.queue, self.queue_timeout = max_concurrent, queue, queue_timeout
        self.idle_seconds, self.threads, self.retry_after = idle_seconds, threads, retry_after
        # threads while a job runs on this node (quantdash.node): half, so chat and the job (at a
        # low priority) don't fight over every core
        self.busy_threads = busy_threads or max(1, threads // 2)
        self._engine_factory = engine_factory
        self._cond = threading.Condition()
        self._models: OrderedDict[str, Loaded] = OrderedDict()  # least recently used first
        self._loading: dict[str, int] = {}  # variant id -> bytes reserved while it loads
        self._slots: dict[str, Slots] = {}
        self._stopping = threading.Event()

    # --- generation slots ---------------------------------------------------------------------
    @contextmanager
    def acquire(self, spec: LoadSpec) -> Iterator[Loaded]:
        """Holds a generation slot on the variant, loaded; raises Busy or EngineError."""
        self._enter(spec.variant_id)
        loaded = None
        try:
            loaded = self._ensure_loaded(spec)
            lock = None if loaded.engine.parallel else loaded.run_lock
            if lock:
                lock.acquire()
            try:
                loaded.node_jobs = node.running_jobs()
                threads = self.busy_threads if loaded.node_jobs else self.threads
                if loaded.engine.threads != threads:
                    loaded.engine.set_threads(threads)
                yield loaded
            finally:
                if lock:
                    lock.release()
                loaded.last_used = time.monotonic()
                with self._cond:
                    self._drop_prefixes(self.used_bytes() - self.memory_budget_bytes)
        finally:
            self._leave(spec.variant_id)
        if loaded is not None and not loaded.engine.parallel and loaded.engine.settle_pending():
            self._settle_later(loaded)

    def _settle_later(self, loaded: Loaded) -> None:
        variant_id = loaded.spec.variant_id

        def wanted() -> bool:  # a request for this model, or the server stopping
            slots = self._slots.get(variant_id)
            return bool(slots and (slots.active or slots.waiting)) or self._stopping.is_set()

        def run() -> None:
            with self._cond:
                if self._models.get(variant_id) is not loaded or loaded.settling or wanted():
                    return
                loaded.settling = True
            try:
                with loaded.run_lock:
                    loaded.engine.settle(wanted)
            except Exception:  # the next request evaluates the reply itself
                log.exception("settling %s failed", variant_id)
            finally:
                with self._cond:
                    loaded.settling = False
                    self._cond.notify_all()

        threading.Thread(target=run, name=f"settle-{variant_id}", daemon=True).start()

    def _enter(self, variant_id: str) -> None:
        with self._cond:
            slots = self._slots.setdefault(variant_id, Slots())
            if slots.active < self.max_concurrent:
                slots.active += 1
                return
            if slots.waiting >= self.queue:
                raise Busy(variant_id=variant_id, retry_after=self.retry_after)
            slots.waiting += 1
            try:
                admitted = self._cond.wait_for(lambda: slots.active < self.max_concurrent,
                                               timeout=self.queue_timeout)
            finally:
                slots.waiting -= 1
            if not admitted:
                raise Busy(variant_id=variant_id, retry_after=self.retry_after)
            slots.active += 1

    def _leave(self, variant_id: str) -> None:
        with self._cond:
            self._slots[variant_id].active -= 1
            self._cond.notify_all()

    # --- loading and eviction -----------------------------------------------------------------
    def _in_use(self, variant_id: str) -> bool:
        slots, loaded = self._slots.get(variant_id), self._models.get(variant_id)
        return bool(slots and slots.active) or bool(loaded and loaded.settling)

    def used_bytes(self) -> int:
        return (sum(m.estimate + m.engine.prefix_cache.bytes() for m in self._models.values())
                + sum(self._loading.values()))

    def _drop_prefixes(self, excess: int) -> int:
        """Drops saved prefixes, least recently used first across models, until `excess` bytes
        are freed or none is left; returns the bytes freed. Called under the lock."""
        freed = 0
        caches = [m.engine.prefix_cache for m in self._models.values()]
        while freed < excess:
            dated = [(c.oldest(), i) for i, c in enumerate(caches)]
            dated = [(t, i) for t, i in dated if t is not None]
            if not dated:
                break
            freed += caches[min(dated)[1]].drop_oldest()
        return freed

    def _ensure_loaded(self, spec: LoadSpec) -> Loaded:
        with self._cond:
            self._cond.wait_for(lambda: spec.variant_id not in self._loading)
            if (loaded := self._models.get(spec.variant_id)) is not None:
                self._models.move_to_end(spec.variant_id)
                loaded.last_used = time.monotonic()
                return loaded
            need = estimate_bytes(files=list(spec.files), config=spec.config, n_ctx=spec.n_ctx,
                                  format=spec.format,
                                  gpu=spec.format != "gguf" and gpu_available())
            evict = self._make_room(need, exclude=spec.variant_id)
            self._loading[spec.variant_id] = need
        try:
            for victim in evict:
                victim.engine.unload()
            engine = self._engine_factory(spec.format)(files=list(spec.files), n_ctx=spec.n_ctx,
                                                       threads=self.threads)
            engine.load()
        except BaseException:
            with self._cond:
                del self._loading[spec.variant_id]
                self._cond.notify_all()
            raise
        now = time.monotonic()
        loaded = Loaded(spec=spec, engine=engine, estimate=need, loaded_at=now, last_used=now)
        with self._cond:
            del self._loading[spec.variant_id]
            self._models[spec.variant_id] = loaded
            self._cond.notify_all()
        return loaded

    def _make_room(self, need: int, *, exclude: str) -> list[Loaded]:
        """Picks LRU idle models to unload so `need` more bytes fit; called under the lock."""
        if need > self.memory_budget_bytes:
            raise EngineError(
                f"the model needs about {need / 2**30:.2f} GiB but the runtime's memory budget is "
                f"{self.memory_budget_bytes / 2**30:.2f} GiB", code="insufficient_memory", status=507)
        free = self.memory_budget_bytes - self.used_bytes()
        if free < need:
            free += self._drop_prefixes(need - free)
        victims = []
        for variant_id, loaded in list(self._models.items()):
            if free >= need:
                break
            if variant_id == exclude or self._in_use(variant_id):
                continue
            victims.append(self._models.pop(variant_id))
            free += loaded.estimate
        if free < need:
            self._models.update((v.spec.variant_id, v) for v in victims)  # put them back
            raise EngineError("not enough free memory: the loaded models are all generating; "
                              "try again shortly", code="insufficient_memory", status=503)
        return victims

    def unload_idle(self, *, now: float | None = None) -> list[str]:
        now = time.monotonic() if now is None else now
        with self._cond:
            idle = [v for v, m in self._models.items()
                    if not self._in_use(v) and now - m.last_used >= self.idle_seconds]
            victims = [self._models.pop(v) for v in idle]
        for victim in victims:
            victim.engine.unload()
        return idle

    def start_reaper(self, interval: float = 5.0) -> None:
        def loop() -> None:
            while not self._stopping.wait(interval):
                self.unload_idle()

        threading.Thread(target=loop, name="idle-reaper", daemon=True).start()

    def shutdown(self) -> None:
        self._stopping.set()  # a settle() running stops after its batch; none starts after this
        with self._cond:
            self._cond.wait_for(lambda: not any(m.settling for m in self._models.values()))
            victims = list(self._models.values())
            self._models.clear()
        for victim in victims:
            victim.engine.unload()

    def status(self) -> dict:
        now = time.monotonic()
        with self._cond:
            models = [{
                "variant_id": v, "format": m.spec.format, "engine": m.engine.name,
                "engine_info": m.engine.info,
                "n_ctx": m.spec.n_ctx, "estimated_bytes": m.estimate,
                "memory_bytes": m.engine.memory_bytes(), "idle_seconds": round(now - m.last_used, 1),
                "cached_prefixes": len(m.engine.prefix_cache),
                "cached_prefix_bytes": m.engine.prefix_cache.bytes(), "settling": m.settling,
            } for v, m in self._models.items()]
            queues = {v: {"active": s.active, "waiting": s.waiting}
                      for v, s in self._slots.items() if s.active or s.waiting}
            return {
                "models": models, "loading": list(self._loading), "queues": queues,
                "memory_budget_bytes": self.memory_budget_bytes, "memory_used_bytes": self.used_bytes(),
                "max_concurrent": self.max_concurrent, "queue": self.queue,
            }
