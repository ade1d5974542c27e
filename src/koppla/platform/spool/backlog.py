"""How far the pipeline is behind the edge: bytes accepted but not yet stored, and the age of the
oldest of them.

Both are read from the spool's files and the pipeline's cursors (`cursor_of(stream)`), so any
process can ask: the edge to hold back, status and health to tell.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from koppla.core import envelope
from koppla.platform.spool.position import Position, segment_name
from koppla.platform.spool.reader import SpoolReader, list_streams
from koppla.platform.spool.writer import stream_segments

CursorOf = Callable[[str], Position]
"""The position up to which the pipeline has stored a stream."""


def waiting_bytes(spool_dir: Path, cursor_of: CursorOf) -> dict[str, int]:
    """Per stream: the bytes written after the pipeline's cursor."""
    found: dict[str, int] = {}
    for stream in list_streams(spool_dir):
        directory = spool_dir / stream
        at = cursor_of(stream)
        waiting = 0
        for number in stream_segments(directory):
            try:
                size = (directory / segment_name(number)).stat().st_size
            except FileNotFoundError:  # released by the pipeline a moment ago
                continue
            if number > at.segment:
                waiting += size
            elif number == at.segment:
                waiting += max(0, size - at.offset)
        found[stream] = waiting
    return found


def oldest_waiting_ms(spool_dir: Path, stream: str, after: Position) -> int | None:
    """When the oldest record of `stream` after `after` was received (epoch ms); None when
    nothing waits (or the record cannot be read)."""
    try:
        result = SpoolReader(spool_dir, stream).read(after, max_bytes=256 * 1024)
    except (OSError, ValueError):
        return None
    for record in result.records:
        try:
            return envelope.decode(record.payload).received_ms
        except Exception:  # a record the pipeline will quarantine: no age to tell
            return None
    return None
