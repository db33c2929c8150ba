"""The speed model's measured error as the planner shows it (planner/speed_accuracy.py), from a record
shaped as bench/speed_accuracy.py writes it."""

from planner.speed_accuracy import speed_error_note

RECORD = {"date": "2026-12-07", "command": "python bench/speed_accuracy.py", "quiet": True, "rows": [
    {"model": "a", "metric": "decode", "error_pct": -8.2}, {"model": "a", "metric": "prefill", "error_pct": 3.0},
    {"model": "b", "metric": "decode", "error_pct": 2.6}, {"model": "b", "metric": "prefill", "error_pct": -15.4}]}


def test_note_gives_the_range_per_metric_and_the_conditions():
    note = speed_error_note(RECORD)
    assert note == ("speed model measured error (python bench/speed_accuracy.py, 2026-12-07, quiet): "
                    "decode −8…+3 %, prefill −15…+3 % over 2 models")


def test_a_busy_run_is_flagged_and_no_record_says_nothing():
    assert "NOT quiet" in speed_error_note({**RECORD, "quiet": False})
    assert speed_error_note({"rows": []}) == ""
