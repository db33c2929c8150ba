"""The runner's ETA (jobs/runner.py Watch.eta) comes from progress that moved, never from a first
milestone followed by one long call (hf-from-gguf sat at 5 % while "about 43 s left" climbed to
"about 579 s left")."""

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
