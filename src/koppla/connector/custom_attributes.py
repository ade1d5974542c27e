"""Custom order attributes (domain.md §8.1): what a merchant adds to orders and order items.

Two sources, as Adobe's orders feed reads them, plus columns the merchant names:

- a JSON object in a text column: `sales_order_payment.additional_information` (order level) and
  `sales_order_item.additional_data` (item level), one attribute per key (`from_json`). A value
  that is not a JSON object (NULL, empty, PHP-serialized text of old Magento, garbage) gives no
  attributes; `ProblemLog` says so once per column and kind of problem, never per row.
- extra columns of `sales_order` / `sales_order_item` (settings `custom_order_columns`,
  `custom_item_columns`), typed by the column's SQL type (`column_kind`, `typed`).

Attribute values are JSON-ready and of the four kinds XDM custom fields take: string, boolean,
number, date (a `YYYY-MM-DD` string); a date-time column gives RFC 3339 UTC text with a `Z`, as
the events' other timestamps. A column and a JSON key of the same name: the column wins
(`merged`). Pure, except `ProblemLog`, which logs.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy.types import Boolean, Date, DateTime, Float, Integer, Numeric, TypeEngine

from koppla.connector.snapshot import is_zero_date, stamp
from koppla.core import codec

Value = str | bool | int | float
"""One attribute's value: string (dates as `YYYY-MM-DD`), boolean or number."""
Attributes = dict[str, Value]

Kind = Literal["string", "boolean", "integer", "decimal", "float", "date", "datetime"]
"""How a column's values are typed (`column_kind`)."""
Problem = Literal["php_serialized", "not_json", "not_object"]
"""Why a JSON column's value gave no attributes."""

COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
"""A merchant-named column: an unquoted SQL identifier (MySQL allows 64 characters)."""
ORDER_JSON = ("sales_order_payment", "additional_information")
ITEM_JSON = ("sales_order_item", "additional_data")
_PHP_SERIALIZED = re.compile(r"(?:[aOCs]:\d+:|[idb]:-?[\d.]+;|N;)")

log = logging.getLogger("koppla.connector.custom_attributes")


@dataclass(frozen=True, slots=True)
class CustomColumns:
    """The extra columns a merchant names (settings `custom_order_columns`,
    `custom_item_columns`): each becomes an attribute of its name."""

    order: tuple[str, ...] = ()
    item: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.order or self.item)


@dataclass(frozen=True, slots=True)
class TypedColumn:
    """A merchant-named column found in the shop's table, with how its values are typed.

    `name` is the attribute's name, as the merchant wrote it; `column` the column's name as the
    database spells it (MySQL matches names regardless of case)."""

    name: str
    kind: Kind
    column: str

    @property
    def key(self) -> str:
        """The key the column's value has in a row read by the store source."""
        return row_key(self.name)


def row_key(name: str) -> str:
    """The key of merchant column `name` in a row read by the store source (apart from the
    columns the snapshot reads, so `coupon_code` may be both)."""
    return "custom__" + name


def from_json(raw: object) -> tuple[Attributes, Problem | None]:
    """The attributes of a JSON-object column's value, and why there are none when the value
    is not an object (None for NULL, empty and `{}`).

    One attribute per key: a JSON boolean stays boolean, a number a number, a string the string
    as sent (dates in JSON are strings already); arrays and objects become their JSON text (as
    Adobe's provider JSON-encodes non-string values); null and empty keys are left out.
    """
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if isinstance(raw, dict):  # a JSON-typed column, already parsed
        return _attributes(raw), None
    if not isinstance(raw, str) or not raw.strip():
        return {}, None
    text = raw.strip()
    if not text.startswith("{") and _PHP_SERIALIZED.match(text):
        return {}, "php_serialized"
    try:
        parsed = codec.loads_exact(text)
    except (codec.JSONDecodeError, RecursionError):
        return {}, "not_json"
    if not isinstance(parsed, dict):
        return {}, "not_object"
    return _attributes(parsed), None


def _attributes(parsed: Mapping[Any, Any]) -> Attributes:
    out: Attributes = {}
    for key, value in parsed.items():
        if not isinstance(key, str) or not key or value is None:
            continue
        if isinstance(value, bool | int | float | str):
            out[key] = value
        else:
            out[key] = codec.dumps(value).decode()
    return out


def column_kind(sql_type: TypeEngine[Any]) -> Kind:
    """How the values of a column of `sql_type` (as the database reflects it) are typed:
    BOOLEAN and TINYINT(1) boolean, DATE date, DATETIME/TIMESTAMP date-time, integers,
    decimals and floats numbers, anything else string."""
    if isinstance(sql_type, Boolean) or (
        isinstance(sql_type, Integer) and getattr(sql_type, "display_width", None) == 1
    ):
        return "boolean"
    if isinstance(sql_type, DateTime):
        return "datetime"
    if isinstance(sql_type, Date):
        return "date"
    if isinstance(sql_type, Integer):
        return "integer"
    if isinstance(sql_type, Float):
        return "float"
    if isinstance(sql_type, Numeric):
        return "decimal"
    return "string"


def typed(value: object, kind: Kind) -> Value | None:
    """A column's value as an attribute value of `kind`; None for NULL, MySQL's zero date, or
    a value the kind cannot read (text in a DATE column of SQLite, say).

    The value is what the driver gives or what `JSON_OBJECT` gives (the store source reads
    both ways): a date-time may come as text, a DECIMAL as a float; both give the same result.
    """
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    try:
        found: Value | None = _TYPERS[kind](value)
    except (TypeError, ValueError, ArithmeticError):
        return None
    return found


def _string(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _boolean(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def _integer(value: object) -> int | str:
    if isinstance(value, bool | int):
        return _whole(int(value))
    return _whole(int(Decimal(str(value))))


def _decimal(value: object) -> int | float | str:
    number = Decimal(str(value))
    if not number.is_finite():
        raise ValueError("not a finite number")
    if number == number.to_integral_value():
        return _whole(int(number))
    return float(number)


def _whole(number: int) -> int | str:
    """`number`, or its digits where JSON's 64-bit integers cannot hold it (an unsigned
    BIGINT or a wide DECIMAL), so it travels exactly."""
    return number if number in codec.INT64 else str(number)


def _float(value: object) -> float:
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number) or math.isinf(number):
        raise ValueError("not a finite number")
    return number


def _date(value: object) -> str | None:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    if not text or is_zero_date(text):
        return None
    return date.fromisoformat(text[:10]).isoformat()


def _datetime(value: object) -> str | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, str) and not value.strip():
        return None
    return stamp(value.strip() if isinstance(value, str) else value)


_TYPERS: dict[Kind, Callable[[Any], Value | None]] = {
    "string": _string,
    "boolean": _boolean,
    "integer": _integer,
    "decimal": _decimal,
    "float": _float,
    "date": _date,
    "datetime": _datetime,
}


def from_columns(row: Mapping[str, Any], columns: tuple[TypedColumn, ...]) -> Attributes:
    """The attributes of the merchant-named `columns` in `row` (NULLs left out)."""
    out: Attributes = {}
    for column in columns:
        value = typed(row.get(column.key), column.kind)
        if value is not None:
            out[column.name] = value
    return out


def merged(from_json_column: Attributes, from_named_columns: Attributes) -> Attributes:
    """Both sources' attributes; a named column wins over a JSON key of the same name."""
    if not from_named_columns:
        return from_json_column
    return {**from_json_column, **from_named_columns}


PROBLEMS: dict[Problem, str] = {
    "php_serialized": "holds PHP-serialized data (older Magento), not a JSON object",
    "not_json": "is not JSON",
    "not_object": "is JSON but not an object",
}


@dataclass
class ProblemLog:
    """Says once per column and kind of problem that values gave no attributes (the first
    order it was seen on as an example), so a shop full of old rows logs a line, not a flood."""

    seen: set[tuple[str, Problem]] = field(default_factory=set)

    def note(self, where: tuple[str, str], problem: Problem, example: object) -> None:
        """Log `problem` of column `where` (`(table, column)`) unless already logged."""
        column = ".".join(where)
        if (column, problem) in self.seen:
            return
        self.seen.add((column, problem))
        log.warning(
            "custom attributes: %s %s (e.g. order %s); such values give no attributes "
            "(logged once)",
            column,
            PROBLEMS[problem],
            example,
        )
