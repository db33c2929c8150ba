"""How job pages word a job (jobs/presentation.py): title, parameters, timing, log tail."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from jobs import presentation as p

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def test_a_gguf_to_hf_conversion_is_titled_as_one():
    assert p.job_title(SimpleNamespace(method="hf-from-gguf")) == "Convert GGUF → HF safetensors"
    assert p.job_title(SimpleNamespace(method="gguf")) == "Quantize to GGUF"
    assert p.job_title(SimpleNamespace(method="some-new-method")) == "some-new-method"


def test_parameters_read_as_text_not_python():
    params = {"types": ["Q6_K", "Q3_K_M"], "double_quant": True, "staged": "/tmp/x", "warning": "w"}
    assert p.params_text(params) == "types Q6_K, Q3_K_M · double quant yes"
    assert p.params_rows({"dtype": "float16", "dataset": None}) == [("dtype", "float16"), ("dataset", "—")]
    assert "[" not in p.params_text({"types": ["Q8_0"]})


def test_durations():
    assert [p.duration_text(s) for s in (0.4, 45, 60, 65, 7380)] == ["0 s", "45 s", "1 min", "1 min 5 s",
                                                                      "2 h 3 min"]


def test_an_eta_only_when_the_runner_measured_one_else_the_elapsed_time():
    running = dict(status="running", started_at=T0, finished_at=None, now=T0 + timedelta(seconds=30))
    assert p.timing_text(eta_seconds=None, **running) == "running for 30 s"
    assert p.timing_text(eta_seconds=75, **running) == "about 1 min 15 s left"


def test_a_finished_job_shows_how_long_it_took():
    for status in ("succeeded", "failed", "cancelled"):
        assert p.timing_text(status=status, eta_seconds=0, started_at=T0, finished_at=T0 + timedelta(seconds=31),
                             now=T0 + timedelta(hours=1)) == "took 31 s"
    assert p.timing_text(status="queued", eta_seconds=None, started_at=None, finished_at=None, now=T0) == ""


# Lines as they appear in the log tail of a bnb-nf4 job and an hf-from-gguf job on CPU (transformers
# 5.x, torch, bitsandbytes), with the job's own lines between them.
LOG = """\
Loading weights:  54%|█████▍    | 147/272 [00:01<00:00, 98.1it/s]
/work/main/.venv/lib/python3.11/site-packages/bitsandbytes/backends/cpu/ops.py:12: UserWarning: bitsandbytes on CPU is slow
  warnings.warn(
/work/main/.venv/lib/python3.11/site-packages/transformers/modeling_utils.py:88: FutureWarning: `torch_dtype` is deprecated! Use `dtype` instead!
W1202 07:41:12.123000 4711 torch/_dynamo/convert_frame.py:1016] torch._dynamo hit config.recompile_limit (8)
Saving the quantized model to hf
"""


def test_library_warnings_are_set_apart_from_the_jobs_own_lines():
    own, warnings = p.split_log(LOG)
    assert own == ["Loading weights:  54%|█████▍    | 147/272 [00:01<00:00, 98.1it/s]",
                   "Saving the quantized model to hf"]
    assert len(warnings) == 4 and "UserWarning" in warnings[0] and warnings[1].strip() == "warnings.warn("
    assert p.warning_count(warnings) == 3
