"""Adobe's list parameters, read once: `property` filters, `orderby`, `start`, `limit`.

`property` is comma-separated `name<op>value` filters (`created>=2024-01-01T00:00:00Z`,
`state==SUCCESS`, `sql~SELECT`); each property allows the operators Adobe documents for it.
Every filter becomes a parameterised SQL condition on a known column, so no text from the
request ever becomes SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from koppla.core.errors import InvalidInput
from koppla.core.sqlite import SqliteFile

Kind = Literal["time", "text"]
ALL_OPS = (">=", "<=", "==", "!=", ">", "<", "~")
EQUALITY = ("==",)
CONTAINS = ("~",)
_SQL_OPS = {">=": ">=", "<=": "<=", "==": "=", "!=": "!=", ">": ">", "<": "<"}
_SPLIT = re.compile(r"(>=|<=|==|!=|>|<|~|=)")
MAX_LIMIT = 1000
DEFAULT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Rule:
    """How one property filters: the column it reads, its operators, and its values' kind."""

    column: str | None
    """None: a property Koppla knows but never sets (`scheduleId`), which matches nothing."""
    ops: tuple[str, ...]
    kind: Kind = "text"


@dataclass(frozen=True, slots=True)
class Where:
    """SQL conditions joined by AND, with their arguments in order."""

    sql: str
    args: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Listing:
    """One page request: filters, order column and direction, start key and size."""

    where: Where
    order_column: str
    descending: bool
    start_ms: int | None
    limit: int
    orderby: str
    property: str


T = TypeVar("T")


def keyset_page(
    file: SqliteFile,
    select: str,
    args: Sequence[object],
    asked: Listing,
    convert: Callable[[tuple[Any, ...]], T],
    key: Callable[[T], int],
) -> tuple[list[T], int | None]:
    """One page of `select` (a `SELECT ... WHERE ...` with `args`) in the listing's order from
    its start key, and the order key of the first item of the next page (None at the end)."""
    column, where = asked.order_column, asked.where
    direction, compare = ("DESC", "<=") if asked.descending else ("ASC", ">=")
    sql = f"{select} AND ({where.sql})"
    values: list[Any] = [*args, *where.args]
    if asked.start_ms is not None:
        sql += f" AND {column} {compare} ?"
        values.append(asked.start_ms)
    sql += f" ORDER BY {column} {direction}, id {direction} LIMIT ?"
    values.append(asked.limit + 1)
    found = [convert(row) for row in file.all(sql, values)]
    if len(found) <= asked.limit:
        return found, None
    return found[: asked.limit], key(found[asked.limit])


def listing(
    rules: Mapping[str, Rule],
    orders: Mapping[str, str],
    *,
    property: str | None,
    orderby: str | None,
    start: str | None,
    limit: int | None,
) -> Listing:
    """Read Adobe's list parameters; `InvalidInput` naming the parameter that breaks a rule."""
    where = filters(property or "", rules)
    column, descending, text = order(orderby, orders)
    start_ms = None if start is None or not start.strip() else timestamp_ms(start, "start")
    size = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= size <= MAX_LIMIT:
        raise InvalidInput(f"limit must be from 1 to {MAX_LIMIT}, got {size}", field="limit")
    return Listing(where, column, descending, start_ms, size, text, property or "")


def filters(text: str, rules: Mapping[str, Rule]) -> Where:
    """The conditions of a `property` parameter."""
    conditions: list[str] = []
    args: list[object] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        pieces = _SPLIT.split(part, maxsplit=1)
        if len(pieces) != 3:
            raise InvalidInput(f"property: {part!r} has no operator", field="property")
        name, op, value = pieces[0].strip(), pieces[1], pieces[2].strip()
        op = "==" if op == "=" else op  # Adobe's own example writes `templateId=...`
        rule = rules.get(name)
        if rule is None:
            known = ", ".join(sorted(rules))
            message = f"property: cannot filter on {name!r}; filter on {known}"
            raise InvalidInput(message, field="property")
        if op not in rule.ops:
            allowed = " ".join(rule.ops)
            message = f"property: {name} allows only the operators {allowed}, not {op}"
            raise InvalidInput(message, field="property")
        condition, arg = _condition(rule, op, value)
        conditions.append(condition)
        args.extend(arg)
    return Where(" AND ".join(conditions) or "1=1", tuple(args))


def order(orderby: str | None, orders: Mapping[str, str]) -> tuple[str, bool, str]:
    """The column, direction and normal text (`-created`) of an `orderby` parameter."""
    text = (orderby or "-created").strip() or "-created"
    descending = text.startswith("-")
    name = text.lstrip("+-").strip()  # an unescaped `+` arrives as a space, stripped above
    column = orders.get(name)
    if column is None:
        message = f"orderby must be one of {', '.join(orders)} with + or -, got {orderby!r}"
        raise InvalidInput(message, field="orderby")
    return column, descending, ("-" if descending else "+") + name


def timestamp_ms(text: str, field: str) -> int:
    """An RFC 3339 time (`2024-04-05T13:30:00Z`) as epoch milliseconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        message = f"{field} must be a time such as 2024-04-05T13:30:00Z, got {text!r}"
        raise InvalidInput(message, field=field) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _condition(rule: Rule, op: str, value: str) -> tuple[str, tuple[object, ...]]:
    if rule.column is None:
        return "0=1", ()
    if op == "~":
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"{rule.column} LIKE ? ESCAPE '\\'", (f"%{escaped}%",)
    arg: object = timestamp_ms(value, "property") if rule.kind == "time" else value
    return f"{rule.column} {_SQL_OPS[op]} ?", (arg,)
