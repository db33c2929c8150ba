"""Sampling parameters: blanks keep defaults, each bad field is named in its error."""

import pytest

from runtime.errors import RuntimeRequestError
from runtime.params import parse_sampling


def test_blank_fields_keep_defaults():
    params = parse_sampling({"temperature": "", "seed": None, "max_tokens": "32"})
    assert params.temperature == 0.7 and params.seed is None and params.max_tokens == 32


def test_stop_from_lines_or_list():
    assert parse_sampling({"stop": "END\n###"}).stop == ("END", "###")
    assert parse_sampling({"stop": ["x"]}).stop == ("x",)


@pytest.mark.parametrize("field,value", [
    ("temperature", 3), ("top_p", -0.1), ("top_k", 1.5), ("max_tokens", 0), ("seed", "abc"),
    ("repeat_penalty", True), ("stop", [1]), ("stop", ["a", "b", "c", "d", "e"]),
])
def test_bad_values_name_the_field(field, value):
    with pytest.raises(RuntimeRequestError) as info:
        parse_sampling({field: value})
    assert info.value.param == field and info.value.status == 400
