"""Query results render as a terminal table with nested values as compact JSON."""

from __future__ import annotations

from rich.console import Console

from koppla.platform.query.engine import QueryEngine
from koppla.platform.query.render import caption, cell, render_table
from koppla.platform.query.result import Column, QueryResult


def rendered(result: QueryResult) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(render_table(result))
    return console.export_text()


def test_nested_values_render_as_compact_json(engine: QueryEngine) -> None:
    result = engine.run(
        "SELECT eventType, commerce, identityMap, NULL AS missing FROM demo_events "
        "ORDER BY timestamp DESC LIMIT 1"
    )
    text = rendered(result)
    assert "eventType" in text
    assert '{"productViews":{"value":3.0}}' in text
    assert '{"ECID":[{"id":"ecid-3","primary":true}]}' in text
    assert "null" in text
    assert "1 row in " in text


def test_null_is_dim() -> None:
    assert cell(None).plain == "null"
    assert str(cell(None).style) == "dim"


def test_markup_in_data_is_literal() -> None:
    assert cell("[bold]x[/bold]").plain == "[bold]x[/bold]"


def test_caption_says_when_rows_were_cut_off() -> None:
    result = QueryResult((Column("a", "INTEGER"),), [(1,), (2,)], True, 12.34)
    assert caption(result) == "2 rows (truncated: more rows exist) in 12.3 ms"
