"""The one JSON codec: every module encodes and decodes JSON through here (orjson underneath)."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError
INT64 = range(-(2**63), 2**63)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON text; raises `JSONDecodeError` (a `ValueError`) on malformed input."""
    return orjson.loads(data)


def loads_exact(text: str) -> Any:
    """Parse JSON text, keeping each number as its text where a 64-bit integer or a finite
    double cannot hold it exactly (`123456789012345678901234567890`, `1e400`, and the
    non-standard `NaN` and `Infinity`); raises `JSONDecodeError` (a `ValueError`) on malformed
    input. Slower than `loads`: for small documents whose values must stay as sent."""
    try:
        return json.loads(  # noqa: TID251 - orjson turns such numbers into floats or refuses them
            text, parse_int=_int_or_text, parse_float=_float_or_text, parse_constant=str
        )
    except json.JSONDecodeError as error:
        raise JSONDecodeError(str(error), error.doc, error.pos) from None


def _int_or_text(text: str) -> int | str:
    number = int(text)
    return number if number in INT64 else text


def _float_or_text(text: str) -> float | str:
    number = float(text)
    return number if math.isfinite(number) else text


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """Serialize to compact UTF-8 JSON; datetimes become RFC 3339 strings."""
    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    if sort_keys:
        option |= orjson.OPT_SORT_KEYS
    return orjson.dumps(value, option=option)


def dumps_pretty(value: Any) -> str:
    """Serialize to indented JSON text, for people to read."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
