"""Stored rows back to XDM documents: what the profile stage reads out of a dataset's table.

Pure. A Delta row (as `pyarrow` gives it with maps as dicts) becomes the JSON document that was
sent: nulls left out, date-times in the canonical `YYYY-MM-DDTHH:MM:SS.sssZ` unless `_datetimes`
kept the exact text sent, dates as `YYYY-MM-DD`, and the fields the schema does not define
(`_unknown`) put back where they were.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from koppla.core import codec
from koppla.platform.datasets.tables import SYSTEM_COLUMNS as DATASET_SYSTEM_COLUMNS

SYSTEM_COLUMNS = frozenset(name for name, _ in DATASET_SYSTEM_COLUMNS)
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def document(row: Mapping[str, Any]) -> dict[str, Any]:
    """The XDM document a stored row holds (system columns folded back in, then dropped)."""
    doc: dict[str, Any] = {}
    for key, value in row.items():
        if key in SYSTEM_COLUMNS:
            continue
        plain = _plain(value)
        if plain is not None:
            doc[key] = plain
    texts = row.get("_datetimes")
    if isinstance(texts, Mapping):
        for path, text in texts.items():
            _put(doc, str(path), text, replace_only=True)
    unknown = row.get("_unknown")
    if isinstance(unknown, str) and unknown:
        try:
            extra = codec.loads(unknown)
        except codec.JSONDecodeError:
            extra = None
        if isinstance(extra, Mapping):
            for path, value in extra.items():
                _put(doc, str(path), value, replace_only=False)
    return doc


def _plain(value: Any) -> Any:
    """`value` as JSON: nulls dropped from objects, date-times and dates as text."""
    if isinstance(value, dict):
        out = {str(k): _plain(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None} or None
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        text = stamp.astimezone(UTC).isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _put(doc: dict[str, Any], path: str, value: Any, *, replace_only: bool) -> None:
    """Set `value` at a dotted path with `[i]` indexes; quietly skip a path that does not fit."""
    steps = [(m.group(1), m.group(2)) for m in _STEP.finditer(path)]
    node: Any = doc
    for n, (key, index) in enumerate(steps):
        last = n == len(steps) - 1
        if index is not None:
            if not isinstance(node, list) or int(index) >= len(node):
                return
            if last:
                node[int(index)] = value
                return
            node = node[int(index)]
            continue
        if not isinstance(node, dict):
            return
        if last:
            if replace_only and key not in node:
                return
            node[key] = value
            return
        if key not in node:
            if replace_only:
                return
            node[key] = {}
        node = node[key]
