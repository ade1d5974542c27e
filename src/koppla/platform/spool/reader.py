"""The spool reader: reads a stream's records in order from a position, and frees what is done.

A segment is finished once a later segment exists (a writer opens a new segment only after the
previous one is complete, or after a crash). An incomplete or corrupt tail of a finished segment is
what a crash left unacknowledged; it is skipped and logged.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from koppla.platform.spool import frame
from koppla.platform.spool.position import Position, segment_name
from koppla.platform.spool.writer import stream_is_live, stream_segments

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Record:
    """One spooled payload and the position just past it."""

    payload: bytes
    end: Position


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Records read, and the position the next read starts from."""

    records: list[Record]
    next: Position


class SpoolReader:
    """Reads the records of one stream in order."""

    def __init__(self, spool_dir: Path, stream: str) -> None:
        self.stream = stream
        self._dir = spool_dir / stream

    def read(self, after: Position, *, max_bytes: int = 16 * 1024 * 1024) -> ReadResult:
        """Records after `after`, about `max_bytes` of them at most, in order."""
        segments = stream_segments(self._dir)
        records: list[Record] = []
        position = after
        while segments:
            if position.segment not in segments:
                later = [n for n in segments if n > position.segment]
                if not later:
                    break
                position = Position(later[0], 0)
            wanted = max(max_bytes, frame.HEADER.size + frame.MAX_PAYLOAD)
            data = self._read_from(position, wanted)
            frames, stopped, corrupt = frame.decode_all(data)
            for item in frames:
                records.append(
                    Record(item.payload, Position(position.segment, position.offset + item.end))
                )
            if frames:
                position = records[-1].end
            max_bytes -= stopped
            finished = position.segment != segments[-1]
            hit_eof = len(data) < wanted
            if not finished or max_bytes <= 0 or not hit_eof:
                break
            if stopped < len(data):
                log.warning(
                    "spool %s segment %d: skipped %d bytes of %s tail (never acknowledged)",
                    self.stream,
                    position.segment,
                    len(data) - stopped,
                    "corrupt" if corrupt else "incomplete",
                )
            position = Position(position.segment + 1, 0)
        return ReadResult(records, position)

    def _read_from(self, position: Position, size: int) -> bytes:
        try:
            with (self._dir / segment_name(position.segment)).open("rb") as handle:
                handle.seek(position.offset)
                return handle.read(size)
        except FileNotFoundError:
            return b""

    def release(self, before: Position) -> int:
        """Delete the segments wholly before `before`; returns how many were deleted."""
        removed = 0
        for number in stream_segments(self._dir):
            if number >= before.segment:
                break
            os.unlink(self._dir / segment_name(number))
            removed += 1
        return removed

    def is_live(self) -> bool:
        """True while a writer holds this stream."""
        return stream_is_live(self._dir)


def list_streams(spool_dir: Path) -> list[str]:
    """The names of the streams under `spool_dir`."""
    if not spool_dir.exists():
        return []
    return sorted(p.name for p in spool_dir.iterdir() if p.is_dir())
