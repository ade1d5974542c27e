"""The Custom Order Attributes table: per dataset, the attribute names the store's events carry
beside the custom fields the dataset's schema defines, and whether they match.

Pure: it takes what was seen (`observed.Seen`) and what the schema defines
(`custom_fields.defined`) and returns rows. A name matches when the schema defines it at the
same level; the row notes when the kind sent cannot be stored in the schema's type (such records
go to the quarantine until one side changes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from koppla.platform.schemas.custom_fields import LEVELS, Kind, Level
from koppla.platform.schemas.observed import Seen

FITS: Mapping[Kind, frozenset[Kind]] = {
    "string": frozenset({"string"}),
    "boolean": frozenset({"boolean"}),
    "number": frozenset({"number", "integer"}),
    "date": frozenset({"date", "string"}),
    "date-time": frozenset({"date-time", "string"}),
}
"""For each kind sent, the schema types that can hold it (an integer field takes whole numbers
only; the note says so when a number was sent to one)."""


@dataclass(frozen=True, slots=True)
class DatasetUse:
    """A dataset the connector sends to, and for what (`live`, `historical` or both)."""

    id: str
    name: str
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AttributeRow:
    """One line of the table."""

    dataset_id: str
    dataset_name: str
    roles: tuple[str, ...]
    level: Level
    commerce: str
    """The name the store's events carry ("" when none carried it)."""
    commerce_kinds: tuple[Kind, ...]
    last_seen_ms: int | None
    count: int
    platform: str
    """The name the schema defines ("" when it defines none of that name)."""
    platform_kind: Kind
    match: bool
    note: str


def rows(
    uses: Sequence[DatasetUse],
    seen: Mapping[str, Sequence[Seen]],
    defined: Mapping[str, Mapping[Level, Mapping[str, Kind]]],
) -> list[AttributeRow]:
    """The table's rows: dataset by dataset (in `uses`' order), order level then item level,
    names seen most recently first, then the schema's names no event carried."""
    table: list[AttributeRow] = []
    for use in uses:
        for level in LEVELS:
            fields = defined.get(use.id, {}).get(level, {})
            table.extend(_level_rows(use, level, seen.get(use.id, ()), fields))
    return table


def _level_rows(
    use: DatasetUse, level: Level, seen: Iterable[Seen], fields: Mapping[str, Kind]
) -> list[AttributeRow]:
    by_name: dict[str, list[Seen]] = {}
    for item in seen:
        if item.level == level:
            by_name.setdefault(item.name, []).append(item)
    out: list[AttributeRow] = []
    for name, items in sorted(by_name.items(), key=lambda kv: -max(s.last_ms for s in kv[1])):
        kinds = tuple(sorted({s.kind for s in items}))
        platform_kind = fields.get(name, "")
        out.append(
            AttributeRow(
                use.id,
                use.name,
                use.roles,
                level,
                name,
                kinds,
                max(s.last_ms for s in items),
                sum(s.count for s in items),
                name if name in fields else "",
                platform_kind,
                name in fields,
                _note(name, kinds, platform_kind) if name in fields else "",
            )
        )
    for name, kind in fields.items():
        if name not in by_name:
            out.append(
                AttributeRow(
                    use.id, use.name, use.roles, level, "", (), None, 0, name, kind, False, ""
                )
            )
    return out


def _note(name: str, kinds: tuple[Kind, ...], platform_kind: Kind) -> str:
    """Why records carrying `name` may not be stored, or ""."""
    misfits = [k for k in kinds if k != "null" and platform_kind not in FITS.get(k, frozenset())]
    if not misfits:
        return ""
    sent = " and ".join(misfits)
    return (
        f"sent as {sent}, but {name} is {platform_kind} in the schema: "
        "such records go to the quarantine"
    )
