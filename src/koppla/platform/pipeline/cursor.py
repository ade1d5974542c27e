"""The pipeline's read position in each spool stream, saved atomically after each commit."""

from __future__ import annotations

import os
from pathlib import Path

from koppla.core import codec
from koppla.platform.spool.position import START, Position


class Cursors:
    """Per-stream positions in one small JSON file, replaced atomically (write, fsync, rename)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._positions: dict[str, Position] = {}
        if path.exists():
            saved = codec.loads(path.read_bytes())
            self._positions = {name: Position.unpack(int(v)) for name, v in saved.items()}

    def get(self, stream: str) -> Position:
        """Where reading `stream` resumes."""
        return self._positions.get(stream, START)

    def set(self, stream: str, position: Position) -> None:
        """Move `stream`'s cursor to `position` and persist it."""
        if self._positions.get(stream) == position:
            return
        self._positions[stream] = position
        data = codec.dumps({name: p.pack() for name, p in self._positions.items()})
        tmp = self._path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self._path)
