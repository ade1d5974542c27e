"""Query parameters as Adobe's Query Service takes them: `$name` in the SQL, values in JSON.

A value always enters the SQL as one literal, never as SQL text: a string becomes a quoted
string (single quotes doubled), a number a validated numeric literal (negative ones in
parentheses, so `x-$n` cannot turn into a `--` comment), `true`/`false`/`null` the keywords.
So a parameter can stand where a value stands (`WHERE sku = $sku`, `LIMIT $n`) but never name a
table or a column. `$name` inside quoted text, quoted identifiers, comments and dollar-quoted
strings is left alone, as are DuckDB's positional `$1`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import duckdb

from koppla.core.errors import InvalidInput

Params = Mapping[str, Any]
"""Parameter values by name (without the `$`), as JSON gave them."""

MAX_PARAMS = 100
MAX_VALUE_CHARS = 10_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME_BYTES = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?![\x80-\xff])")
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")
_QUOTES = frozenset("'\"")


def check_params(params: Params, field: str = "queryParameters") -> dict[str, Any]:
    """`params` as a plain dict when every name and value can be substituted, else
    `InvalidInput` naming the parameter."""
    if len(params) > MAX_PARAMS:
        raise InvalidInput(f"{field}: at most {MAX_PARAMS} parameters", field=field)
    for name, value in params.items():
        if not _NAME.fullmatch(name):
            message = f"{field}: {name!r} is no parameter name (letters, digits and _)"
            raise InvalidInput(message, field=field)
        literal(name, value, field)
    return dict(params)


def placeholders(sql: str) -> list[str]:
    """The parameter names `sql` uses, in order of first use."""
    seen: dict[str, None] = {}
    for piece, is_name in _pieces(sql):
        if is_name:
            seen.setdefault(piece, None)
    return list(seen)


def substitute(sql: str, params: Params, field: str = "queryParameters") -> str:
    """`sql` with every `$name` replaced by the literal of `params[name]`.

    Raises `InvalidInput` naming the parameter when `sql` uses one `params` lacks, when
    `params` has one `sql` does not use, or when a value cannot be a literal.
    """
    used = placeholders(sql)
    missing = [name for name in used if name not in params]
    if missing:
        message = f"{field}: no value for parameter ${missing[0]} used in the SQL"
        raise InvalidInput(message, field=field)
    unused = sorted(set(params) - set(used))
    if unused:
        message = f"{field}: parameter {unused[0]!r} is not used in the SQL (as ${unused[0]})"
        raise InvalidInput(message, field=field)
    pieces = list(_pieces(sql))
    out: list[str] = []
    for index, (piece, is_name) in enumerate(pieces):
        if not is_name:
            out.append(piece)
            continue
        text = literal(piece, params[piece], field)
        before = out[-1][-1:] if out and out[-1] else ""
        after = pieces[index + 1][0][:1]  # a name is always followed by a (maybe empty) text
        out.append(_apart(before) + text + _apart(after))
    return "".join(out)


def literal(name: str, value: Any, field: str = "queryParameters") -> str:
    """One parameter value as a SQL literal; `InvalidInput` naming `name` when it cannot be."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return f"({value})" if value < 0 else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{field}: {name} must be a finite number", field=field)
        text = repr(value)
        return f"({text})" if math.copysign(1.0, value) < 0 else text
    if isinstance(value, str):
        if len(value) > MAX_VALUE_CHARS:
            message = f"{field}: {name} must be at most {MAX_VALUE_CHARS} characters"
            raise InvalidInput(message, field=field)
        if "\x00" in value:
            raise InvalidInput(f"{field}: {name} must not contain NUL", field=field)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(f"{field}: {name} is not valid text", field=field) from None
        return "'" + value.replace("'", "''") + "'"
    message = f"{field}: {name} must be a string, number, boolean or null"
    raise InvalidInput(message, field=field)


def _pieces(sql: str) -> Iterator[tuple[str, bool]]:
    """`sql` cut into SQL text (False) and parameter names (True), in order.

    DuckDB's own tokenizer finds them: a `$` operator token directly followed by an identifier
    token. So whatever DuckDB reads as a string (quoted, `E'...'`, dollar-quoted with any tag),
    a comment (nested ones too) or an identifier (`é$v`) never holds a parameter.
    """
    try:
        tokens = duckdb.tokenize(sql)
    except (duckdb.Error, RuntimeError) as exc:
        raise InvalidInput(f"the SQL could not be read: {exc}", field="sql") from exc
    data = sql.encode("utf-8")  # the tokenizer's offsets count bytes
    start = 0
    for (offset, kind), (following, following_kind) in itertools.pairwise(tokens):
        if kind != duckdb.token_type.operator or data[offset : offset + 1] != b"$":
            continue
        if following != offset + 1 or following_kind != duckdb.token_type.identifier:
            continue
        match = _NAME_BYTES.match(data, following)
        if match is None:
            continue
        yield data[start:offset].decode("utf-8"), False
        yield match.group().decode("ascii"), True
        start = match.end()
    yield data[start:].decode("utf-8"), False


def _apart(neighbour: str) -> str:
    """A space when `neighbour` would run into a literal (a quote or a word character)."""
    return " " if neighbour in _QUOTES or (neighbour and neighbour in _WORD_CHARS) else ""
