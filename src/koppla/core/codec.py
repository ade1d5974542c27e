"""The one JSON codec: every module encodes and decodes JSON through here (orjson underneath)."""

from __future__ import annotations

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON text; raises `JSONDecodeError` (a `ValueError`) on malformed input."""
    return orjson.loads(data)


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """Serialize to compact UTF-8 JSON; datetimes become RFC 3339 strings."""
    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    if sort_keys:
        option |= orjson.OPT_SORT_KEYS
    return orjson.dumps(value, option=option)


def dumps_pretty(value: Any) -> str:
    """Serialize to indented JSON text, for people to read."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
