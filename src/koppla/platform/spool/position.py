"""Spool positions: a segment number and a byte offset packed into one ordered integer."""

from __future__ import annotations

from typing import NamedTuple

_OFFSET_BITS = 40
_OFFSET_MASK = (1 << _OFFSET_BITS) - 1


class Position(NamedTuple):
    """Where in a stream: `segment` number and byte `offset` within it."""

    segment: int
    offset: int

    def pack(self) -> int:
        """One integer that orders like the position (fits a signed 64-bit Delta version)."""
        return (self.segment << _OFFSET_BITS) | self.offset

    @classmethod
    def unpack(cls, packed: int) -> Position:
        """The inverse of `pack`."""
        return cls(packed >> _OFFSET_BITS, packed & _OFFSET_MASK)


START = Position(0, 0)


def segment_name(number: int) -> str:
    """The file name of segment `number`."""
    return f"{number:012d}.seg"


def segment_number(name: str) -> int | None:
    """The number in a segment file name, or None for other files."""
    if not name.endswith(".seg"):
        return None
    stem = name[:-4]
    return int(stem) if stem.isdigit() else None
