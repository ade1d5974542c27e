"""A query's result is capped in bytes as well as rows: a huge answer fails, naming the setting."""

from __future__ import annotations

from typing import Any

import pytest

from koppla.core.settings import Settings
from koppla.platform.query.engine import DEFAULT_MAX_RESULT_BYTES, QueryEngine
from koppla.platform.query.errors import QueryFailed
from koppla.platform.query.fetch import fetch_rows, value_bytes

MIB = 2**20


class Rows:
    """A result of `count` rows of one `width`-character string; counts what was fetched."""

    def __init__(self, count: int, width: int) -> None:
        self.left = count
        self.width = width
        self.fetched = 0
        self.asked: list[int] = []

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        self.asked.append(size)
        taken = min(size, self.left)
        self.left -= taken
        self.fetched += taken
        return [("x" * self.width,)] * taken


def test_the_default_cap_is_the_settings_default() -> None:
    assert Settings.model_fields["query_max_result_bytes"].default == DEFAULT_MAX_RESULT_BYTES
    assert DEFAULT_MAX_RESULT_BYTES == 64 * MIB


def test_a_result_of_huge_values_fails_naming_the_setting() -> None:
    """Each row is half a megabyte: the default cap (64 MiB) is passed within 135 rows, and the
    query fails instead of answering 100 MB."""
    with QueryEngine(dict, timeout_s=30) as engine, pytest.raises(QueryFailed) as refused:
        engine.run("SELECT repeat('x', 500000) AS s FROM range(200)")

    message = str(refused.value)
    assert "larger than query_max_result_bytes (64 MiB)" in message
    assert "within its first 135 rows" in message
    assert "LIMIT" in message


def test_a_result_under_the_byte_cap_is_whole_and_the_row_cap_still_truncates() -> None:
    with QueryEngine(dict, timeout_s=30, max_rows=50, max_result_bytes=MIB) as engine:
        small = engine.run("SELECT repeat('x', 1000) AS s FROM range(40)")
        many = engine.run("SELECT i FROM range(100000) t(i)")
        with pytest.raises(QueryFailed, match=r"query_max_result_bytes \(1 MiB\)"):
            engine.run("SELECT repeat('x', 100000) AS s FROM range(40)")

    assert len(small.rows) == 40 and not small.truncated
    assert small.rows[0] == ("x" * 1000,)
    assert [r[0] for r in many.rows] == list(range(50)) and many.truncated


def test_rows_are_fetched_only_while_they_fit() -> None:
    """Rows of 1 MB against a 10 MiB cap: fetching stops at the row that passes it, never
    asking for more rows than the room left holds."""
    source = Rows(count=1000, width=MIB)

    with pytest.raises(QueryFailed, match="within its first 10 rows"):
        fetch_rows(source, max_rows=10_000, max_bytes=10 * MIB)

    assert source.fetched == 10
    assert sum(source.asked) == 10  # no row was asked for beyond the one that passed the cap


def test_small_rows_are_fetched_in_growing_chunks_up_to_the_row_cap() -> None:
    source = Rows(count=5000, width=10)

    rows = fetch_rows(source, max_rows=1000, max_bytes=64 * MIB)

    assert len(rows) == 1001  # one more than the cap: the caller marks the result truncated
    assert source.asked[:4] == [1, 2, 4, 8] and max(source.asked) == 256
    assert source.fetched == 1001


def test_nested_values_count_their_items() -> None:
    nested = {"ids": ["a" * 1000, "b" * 1000], "n": 1}
    assert value_bytes(nested) > 2000
    assert value_bytes((nested, nested)) > 2 * value_bytes(nested)
