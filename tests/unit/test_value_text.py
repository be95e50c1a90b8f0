"""Values as text: params that tell ``None`` from ``'None'``, reprs without memory addresses."""

from __future__ import annotations

import pytest

from pytest_mlflow_tree.model.values import describe, param_text


class Opaque:
    pass


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "None"),
        ("None", "'None'"),
        (True, "True"),
        ("True", "'True'"),
        (1, "1"),
        ("1", "'1'"),
        (0.5, "0.5"),
        ("0.5", "'0.5'"),
        ("-3", "'-3'"),
        (float("nan"), "nan"),
        ("nan", "'nan'"),
        ("inf", "'inf'"),
        ("", "''"),
        ([1, 2], "[1, 2]"),
        ("[1, 2]", "'[1, 2]'"),
        ("'x'", "\"'x'\""),
        (b"ab", "b'ab'"),
        ("b'ab'", "\"b'ab'\""),
    ],
)
def test_a_param_that_would_read_as_another_value_is_quoted(value: object, text: str) -> None:
    assert param_text(value) == text


@pytest.mark.parametrize(
    "value", ["adam", "knn", "data/train.csv", "a b", "none", "x=1", "f(x)", "café ✓", "1 2"]
)
def test_a_string_param_that_reads_as_itself_is_shown_as_it_is(value: str) -> None:
    assert param_text(value) == value


def test_distinct_values_have_distinct_params() -> None:
    values: list[object] = [None, "None", True, "True", 1, "1", 1.0, "", "''", "'None'"]
    assert len({param_text(v) for v in values}) == len(values)


def test_a_string_nested_too_deep_to_parse_is_shown_as_it_is() -> None:
    deep = "(" * 10_000
    assert param_text(deep) == deep


def test_a_params_repr_has_no_memory_address() -> None:
    text = param_text(Opaque())
    assert "0x" not in text
    assert text.endswith("Opaque object>")


def test_a_repr_pytest_handed_over_as_text_loses_its_memory_address() -> None:
    # pytest 9 hands a subtest's kwargs over as reprs, already strings.
    assert describe(repr(iter(range(3)))) == "<range_iterator object>"
