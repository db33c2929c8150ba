"""The runner's ETA (jobs/runner.py Watch.eta) comes from progress that moved, never from a first
milestone followed by one long call (hf-from-gguf sat at 5 % while "about 43 s left" climbed to
"about 579 s left")."""

import pytest

from jobs import runner
from jobs.runner import Watch


def _clock(monkeypatch, start: float = 1000.0):
    now = [start]
    monkeypatch.setattr(runner.time, "monotonic", lambda: now[0])
    return now


def test_no_eta_while_progress_stands_still_at_its_first_milestone(monkeypatch):
    now = _clock(monkeypatch)
    watch = Watch(started=now[0])
    watch.progress = 5.0  # hf-from-gguf's ctx.progress(0.05, "load"), then dequantize_gguf() runs
    etas = []
    for _ in range(30):
        etas.append(watch.eta())
        now[0] += 1
    assert etas == [None] * 30


def test_the_eta_is_the_rate_since_progress_was_first_seen(monkeypatch):
    now = _clock(monkeypatch)
    watch = Watch(started=now[0])
    now[0] += 3                       # three seconds at 0 % (the child starting) don't count
    assert watch.eta() is None
    watch.progress = 10.0
    assert watch.eta() is None        # first sighting: nothing to measure a rate from yet
    now[0] += 10
    watch.progress = 40.0             # 30 points in 10 s: 60 points left take 20 s
    assert watch.eta() == 20.0


def _layers(monkeypatch, seconds_per_layer: list[float]) -> list[tuple[float, float | None]]:
    """(elapsed s, ETA) read once a second (the heartbeat) while a method reports progress a
    layer at a time, each layer taking the given seconds (GPTQ over a 30-layer model)."""
    now = _clock(monkeypatch, start=0.0)
    watch = Watch(started=0.0)
    readings, ends, t = [], [], 0.0
    for s in seconds_per_layer:
        t += s
        ends.append(t)
    while now[0] < ends[-1]:
        done = sum(1 for end in ends if end <= now[0])
        watch.progress = 100 * done / len(ends)
        readings.append((now[0], watch.eta()))
        now[0] += 1
    return readings


def test_the_eta_never_rises_between_steps_taken_on_schedule(monkeypatch):
    readings = _layers(monkeypatch, [12.0] * 30)  # 30 layers of 12 s: 360 s in all
    etas = [eta for _, eta in readings if eta is not None]
    assert len(etas) > 300
    assert all(later <= earlier for earlier, later in zip(etas, etas[1:]))
    # Half way (15 layers done at 180 s), 15 layers of 12 s are left.
    assert dict(readings)[180.0] == pytest.approx(180.0, abs=1)


def test_the_eta_rises_only_when_the_job_falls_behind_it(monkeypatch):
    readings = _layers(monkeypatch, [10.0] * 10 + [60.0] + [10.0] * 9)  # one slow layer, the 11th
    etas = dict(readings)
    assert etas[100.0] == pytest.approx(100.0)   # 10 of 20 layers in 100 s: 10 × 10 s left
    falling = [etas[t] for t in range(100, 160)]
    assert all(later < earlier for earlier, later in zip(falling, falling[1:]))
    assert etas[160.0] > etas[159.0]             # the 11th layer came 50 s late: projected again
    assert etas[170.0] < etas[160.0]


def test_a_projection_that_ran_out_gives_the_whole_runs_rate_as_of_now(monkeypatch):
    readings = dict(_layers(monkeypatch, [10.0] * 4 + [200.0] + [10.0] * 5))
    # 4 of 10 layers took 40 s (first seen at 10 s): 60 s projected at 40 s, run out at 100 s.
    assert readings[99.0] == pytest.approx(1.0)
    assert readings[130.0] == pytest.approx(240.0)  # still 40 %: 30 points took 120 s, 60 are left
