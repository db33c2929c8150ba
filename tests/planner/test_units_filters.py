"""The size and parameter-count filters every page uses (planner/templatetags/units.py)."""

import pytest

from planner.templatetags.units import binary_size, param_count

NBSP = "\xa0"


@pytest.mark.parametrize("n, text", [
    (98_362_432, "93.8 MiB"),         # the demo GGUF (SmolLM2-135M-Instruct Q4_1), `ls -l`: 98,362,432 bytes
    (24 * 2**30, "24.0 GiB"),         # a worker declaring WORKER_MEMORY_GB=24
    (1536, "1.5 KiB"),
    (512, "512 bytes"),
    (1, "1 byte"),
    (2**20 - 1, "1.0 MiB"),           # 1023.999 KiB rounds up a unit, never "1024.0 KiB"
    (3 * 2**40, "3.0 TiB"),
])
def test_sizes_are_binary_and_say_so(n, text):
    assert binary_size(n) == text.replace(" ", NBSP)


def test_missing_sizes_show_a_dash():
    assert binary_size(None) == binary_size("") == binary_size("n/a") == "—"


@pytest.mark.parametrize("n, text", [
    (134_515_008, "135M"),            # SmolLM2-135M: transformers counts 134,515,008; the model card says 135M
    (7_241_732_096, "7.24B"),         # Mistral-7B-v0.1 (transformers' count)
    (1.5e12, "1.5T"),                 # was shown as "~1.5e+03B"
])
def test_parameter_counts_are_short(n, text):
    assert param_count(n) == text


def test_an_unknown_parameter_count_is_a_question_mark():
    assert param_count(None) == param_count(0) == "?"
