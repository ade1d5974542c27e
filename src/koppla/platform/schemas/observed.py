"""The custom order attributes seen in each dataset's records: name, kind, first and last seen,
how many records carried it.

Whatever a record carries in the tenant namespace is counted, whether its schema defines the
attribute or not (an attribute the schema lacks is kept in the record's `_unknown` column, and
counted here), and whether the record passed validation or not. The Data Customization tab
compares these names with the schema's.

`Tally` counts one commit's worth of records in memory; `ObservedAttributes.record` adds a tally
to the SQLite file in one transaction. A dataset keeps at most `MAX_NAMES` distinct attributes;
names past that are counted together under `OVERFLOW`, so a hostile stream cannot grow the
file without end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from koppla.core.sqlite import SqliteFile
from koppla.platform.schemas.custom_fields import Kind, Level, carried, kind_of

MAX_NAMES = 1000
"""Distinct (level, name, kind) triples kept per dataset."""
MAX_NAME_CHARS = 256
"""Longer names are kept by their first characters and `…`."""
OVERFLOW = "…"
"""The name under which attributes past `MAX_NAMES` are counted."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
  dataset_id TEXT NOT NULL, level TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
  first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY (dataset_id, level, name, kind));
"""


@dataclass(frozen=True, slots=True)
class Seen:
    """One custom attribute seen in a dataset's records."""

    dataset_id: str
    level: Level
    name: str
    kind: Kind
    first_ms: int
    last_ms: int
    count: int


@dataclass
class Tally:
    """Custom attributes counted in records, before they are recorded."""

    namespace: str
    counts: dict[tuple[Level, str, Kind], int] = field(default_factory=dict)

    def add(self, document: Any) -> None:
        """Count the custom attributes of one record as sent (anything but an object has none)."""
        if not isinstance(document, Mapping):
            return
        seen_here: set[tuple[Level, str, Kind]] = set()
        for level, name, value in carried(document, self.namespace):
            if len(name) > MAX_NAME_CHARS:
                name = name[:MAX_NAME_CHARS] + "…"
            seen_here.add((level, name, kind_of(value)))
        for key in seen_here:
            self.counts[key] = self.counts.get(key, 0) + 1

    def __bool__(self) -> bool:
        return bool(self.counts)


class ObservedAttributes:
    """The custom attributes seen per dataset, in one SQLite file shared by processes."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteFile(path, _SCHEMA)

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def record(self, dataset_id: str, tally: Tally, now_ms: int) -> None:
        """Add `tally`, seen at `now_ms`, to `dataset_id`'s attributes."""
        if not tally:
            return
        with self._db.transaction() as db:
            known = {
                (str(level), str(name), str(kind))
                for level, name, kind in db.execute(
                    "SELECT level, name, kind FROM seen WHERE dataset_id = ?", (dataset_id,)
                )
            }
            room = MAX_NAMES - len(known)
            for (level, name, kind), count in sorted(tally.counts.items()):
                key: tuple[str, str, str] = (level, name, kind)
                if key not in known:
                    if room <= 0:
                        key = (level, OVERFLOW, "overflow")
                    else:
                        room -= 1
                        known.add(key)
                db.execute(
                    "INSERT INTO seen VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (dataset_id, level, name, kind) DO UPDATE SET "
                    "last_ms = max(last_ms, excluded.last_ms), count = count + excluded.count",
                    (dataset_id, *key, now_ms, now_ms, count),
                )

    def seen(self, dataset_id: str) -> list[Seen]:
        """What `dataset_id`'s records carried, most recently seen first."""
        rows = self._db.all(
            "SELECT level, name, kind, first_ms, last_ms, count FROM seen WHERE dataset_id = ? "
            "ORDER BY last_ms DESC, level, name, kind",
            (dataset_id,),
        )
        return [
            Seen(dataset_id, level, name, kind, int(first), int(last), int(count))
            for level, name, kind, first, last, count in rows
        ]
