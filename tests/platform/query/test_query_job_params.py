"""`$name` parameters become literals, and only where SQL text (not quoted text) names them."""

from __future__ import annotations

import duckdb
import pytest

from koppla.core.errors import InvalidInput
from koppla.platform.query.jobs.params import placeholders, substitute


def _value(sql: str) -> object:
    with duckdb.connect() as db:
        ((value, *_),) = db.execute(sql).fetchall()
    return value


@pytest.mark.parametrize(
    "value", ["x' OR '1'='1", "'); DROP TABLE t; --", "a''b", "line\nbreak", "$other", "é 🦆"]
)
def test_a_string_value_reads_back_exactly(value: str) -> None:
    assert _value(substitute("SELECT $v", {"v": value})) == value


@pytest.mark.parametrize("value", [0, 7, -3, 2.5, -0.25, 1e300, True, None])
def test_a_number_boolean_or_null_value_reads_back_exactly(value: object) -> None:
    assert _value(substitute("SELECT $v", {"v": value})) == value


def test_a_negative_number_after_a_minus_stays_a_number() -> None:
    assert _value(substitute("SELECT 1-$v", {"v": -3})) == 4


def test_quoted_text_comments_and_dollar_quotes_are_left_alone() -> None:
    sql = "SELECT '$a', \"$b\", $$ $c $$, $t$ $d $t$, $1 -- $e\n, e$f /* $g */, $h"
    assert placeholders(sql) == ["h"]
    assert substitute(sql, {"h": "x"}).endswith(", 'x'")


def test_a_literal_never_runs_into_a_quoted_neighbour() -> None:
    sql = substitute("SELECT 'a'$v'b'", {"v": "x"})
    assert sql == "SELECT 'a' 'x' 'b'"  # not 'a''x''b', one literal with quotes in it
    with pytest.raises(duckdb.ParserException):
        _value(sql)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"a": 1}, "nul\x00", "x" * 10_001])
def test_a_value_that_cannot_be_a_literal_is_refused_by_name(value: object) -> None:
    with pytest.raises(InvalidInput, match="v ") as refused:
        substitute("SELECT $v", {"v": value})
    assert refused.value.field == "queryParameters"


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("SELECT 1-$v AS x, 'kept' AS y", -0.0),
        ("SELECT 'kept' AS y, 1 AS x /* outer /* inner */ $w */ WHERE y <> $v", "*/ 1 --"),
        ("SELECT E'a\\'b $w c' AS y, $v AS x", "' || 42 || '"),
        ("SELECT $é$ $w $é$ AS y, $v AS x", "$é$ || 42 || $é$"),
    ],
)
def test_no_value_escapes_its_literal_where_duckdb_reads_strings_and_comments(
    template: str, value: object
) -> None:
    assert placeholders(template) == ["v"]  # `$w` inside a string or comment is no parameter
    rows = duckdb.connect().execute(substitute(template, {"v": value})).fetchall()
    names = [d for d in rows[0]] if rows else []
    assert len(rows) <= 1 and 42 not in names
