"""Query results as a rich table for the terminal."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from koppla.core import codec
from koppla.platform.query.result import QueryResult, json_value


def render_table(result: QueryResult) -> Table:
    """A rich `Table` of `result`: nested values as compact JSON, NULL as a dim `null`.

    The caption gives the row count, whether rows were cut off by the cap, and the time taken.
    """
    table = Table(caption=caption(result), header_style="bold")
    for column in result.columns:
        table.add_column(Text(column.name), overflow="fold")
    for row in result.rows:
        table.add_row(*(cell(value) for value in row))
    return table


def caption(result: QueryResult) -> str:
    """`"3 rows in 1.2 ms"`, with `", truncated"` when more rows existed than were kept."""
    noun = "row" if len(result.rows) == 1 else "rows"
    cut = " (truncated: more rows exist)" if result.truncated else ""
    return f"{len(result.rows)} {noun}{cut} in {result.elapsed_ms:.1f} ms"


def cell(value: Any) -> Text:
    """One value as terminal text; markup in data is shown literally, never interpreted."""
    if value is None:
        return Text("null", style="dim")
    plain = json_value(value)
    if isinstance(plain, dict | list):
        return Text(codec.dumps(plain).decode())
    if isinstance(plain, bool):
        return Text("true" if plain else "false")
    return Text(str(plain))
