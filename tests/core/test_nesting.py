"""Nesting depth: measured without recursion, exactly at the limit."""

from __future__ import annotations

from typing import Any

import pytest

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
        assert json_deeper_than(text, value, 32) == deeper_than(value, 32)
