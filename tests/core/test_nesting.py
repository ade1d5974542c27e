"""Nesting depth: measured without recursion, exactly at the limit."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from koppla.core import codec
from koppla.core.nesting import deeper_than, depth, json_deeper_than


def nested(levels: int) -> Any:
    value: Any = 1
    for level in range(levels):
        value = {"a": value} if level % 2 else [value]
    return value


def test_depth_counts_objects_and_arrays() -> None:
    assert not deeper_than(1, 0)
    assert not deeper_than({}, 1) and deeper_than({}, 0)
    assert not deeper_than({"a": [1]}, 2)
    assert deeper_than({"a": [1]}, 1)
    assert deeper_than({"x": 1, "y": {"z": [[]]}}, 3)


def test_the_limit_itself_passes_and_one_more_level_does_not() -> None:
    assert not deeper_than(nested(32), 32)
    assert deeper_than(nested(33), 32)


def test_a_value_far_deeper_than_python_recursion_allows_is_measured() -> None:
    assert deeper_than(nested(100_000), 200)


def test_a_deep_branch_beside_shallow_ones_is_found() -> None:
    body = {"events": [{"xdm": {"a": 1}}, {"xdm": {"b": nested(40)}}], "meta": {}}
    assert deeper_than(body, 32)
    assert not deeper_than(body, 44)


def test_depth_counts_levels_of_any_depth() -> None:
    assert depth(1) == 0
    assert depth({}) == 1
    assert depth({"a": [1, {"b": []}]}) == 4
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    assert depth(deep) == 5000


@pytest.mark.parametrize("levels", [0, 1, 31, 32, 33, 200])
def test_the_text_shortcut_agrees_with_the_walk(levels: int) -> None:
    for value in (nested(levels), {"wide": [nested(levels), {"a": "{[{[" * 40}]}):
        text = codec.dumps(value)
        assert json_deeper_than(text, 32) == deeper_than(value, 32)


_TRICKY_TEXT = st.text(alphabet='ab{}[]"\\\n\u00e9', max_size=8)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TRICKY_TEXT, inner, max_size=4),
    max_leaves=60,
)


@given(_JSON, st.integers(0, 12))
def test_reading_the_text_agrees_with_walking_the_value(value: Any, limit: int) -> None:
    text = codec.dumps(value)
    assert json_deeper_than(text, limit) == deeper_than(value, limit)
