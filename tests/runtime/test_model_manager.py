"""Loading, eviction, idle unload and generation slots, with the real llama.cpp engine."""

import threading
import time

import pytest

from engines import EngineError
from runtime.manager import Busy, LoadSpec, ModelManager
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow
MB = 1024**2


def spec(path, variant_id: str) -> LoadSpec:
    # No config: admission uses the fallback estimate, file size × 1.2 (about 118 MB here).
    return LoadSpec(variant_id=variant_id, format="gguf", files=(path,), n_ctx=256)


def test_least_recently_used_idle_model_is_evicted_to_fit_the_budget(demo_gguf):
    manager = ModelManager(memory_budget_bytes=300 * MB)
    with manager.acquire(spec(demo_gguf, "a")):
        pass
    with manager.acquire(spec(demo_gguf, "b")):
        pass
    with manager.acquire(spec(demo_gguf, "a")):  # a is now the most recently used
        pass
    with manager.acquire(spec(demo_gguf, "c")):
        loaded = [m["variant_id"] for m in manager.status()["models"]]
    assert loaded == ["a", "c"]
    assert manager.status()["memory_used_bytes"] <= 300 * MB
    manager.shutdown()


def test_a_model_in_use_is_not_evicted(demo_gguf):
    manager = ModelManager(memory_budget_bytes=150 * MB)
    with manager.acquire(spec(demo_gguf, "a")):
        with pytest.raises(EngineError) as info:
            with manager.acquire(spec(demo_gguf, "b")):
                pass
    assert info.value.code == "insufficient_memory" and info.value.status == 503
    with manager.acquire(spec(demo_gguf, "b")):  # a is idle now, so it makes room
        pass
    manager.shutdown()


def test_a_model_larger_than_the_budget_is_refused(demo_gguf):
    manager = ModelManager(memory_budget_bytes=50 * MB)
    with pytest.raises(EngineError, match="memory budget"):
        with manager.acquire(spec(demo_gguf, "a")):
            pass


def test_idle_models_are_unloaded(demo_gguf):
    manager = ModelManager(memory_budget_bytes=1024 * MB, idle_seconds=60)
    with manager.acquire(spec(demo_gguf, "a")):
        pass
    assert manager.unload_idle() == []
    assert manager.unload_idle(now=time.monotonic() + 61) == ["a"]
    assert manager.status()["models"] == [] and manager.used_bytes() == 0


def test_load_failure_leaves_the_manager_usable(demo_gguf, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf")
    manager = ModelManager(memory_budget_bytes=1024 * MB)
    with pytest.raises(EngineError, match="could not load"):
        with manager.acquire(spec(bad, "bad")):
            pass
    with manager.acquire(spec(demo_gguf, "a")) as loaded:
        assert loaded.engine.memory_bytes() > 90 * MB
    assert manager.status()["loading"] == []
    manager.shutdown()


def test_past_the_cap_and_queue_requests_are_busy(demo_gguf):
    manager = ModelManager(memory_budget_bytes=1024 * MB, max_concurrent=1, queue=1, retry_after=3)
    queued_done = threading.Event()

    def queued() -> None:
        with manager.acquire(spec(demo_gguf, "a")):
            queued_done.set()

    with manager.acquire(spec(demo_gguf, "a")):
        thread = threading.Thread(target=queued)
        thread.start()
        wait_until(lambda: manager.status()["queues"].get("a", {}).get("waiting") == 1, 5,
                   what="the second request to queue")
        started = time.monotonic()
        with pytest.raises(Busy) as info:
            with manager.acquire(spec(demo_gguf, "a")):
                pass
        assert time.monotonic() - started < 0.5
        assert info.value.status == 429 and info.value.retry_after == 3
        assert not queued_done.is_set()
    thread.join(5)
    assert not thread.is_alive(), "the queued request did not finish within 5 s of the slot freeing"
    assert queued_done.is_set()  # the queued request ran once the slot was free
    manager.shutdown()


def test_while_a_job_runs_on_the_node_chat_generates_with_fewer_threads(demo_gguf, tmp_path, monkeypatch):
    """quantdash.node: the runner marks its job's process; the manager reads the marks at every
    acquire and sets llama.cpp's threads for the context (llama_n_threads reads them back)."""
    import subprocess
    import sys

    import llama_cpp

    from quantdash import node

    monkeypatch.setenv("NODE_STATE_DIR", str(tmp_path))
    manager = ModelManager(memory_budget_bytes=1000 * MB, threads=2)
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with manager.acquire(spec(demo_gguf, "a")) as loaded:
            assert loaded.node_jobs == [] and llama_cpp.llama_n_threads(loaded.engine._llm.ctx) == 2
        with node.job_marked(5, job.pid), manager.acquire(spec(demo_gguf, "a")) as loaded:
            assert loaded.node_jobs == [5] and loaded.engine.threads == manager.busy_threads == 1
            assert llama_cpp.llama_n_threads(loaded.engine._llm.ctx) == 1
            assert llama_cpp.llama_n_threads_batch(loaded.engine._llm.ctx) == 1
        with manager.acquire(spec(demo_gguf, "a")) as loaded:   # the job ended: all threads again
            assert llama_cpp.llama_n_threads(loaded.engine._llm.ctx) == 2
    finally:
        job.kill()
        manager.shutdown()
