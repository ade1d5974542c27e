"""The row errors of an ingestion batch: every refused row, why, and the row as sent.

One JSON-lines file per input file (`errors/<n>.jsonl`), appended slice by slice and `fsync`ed
before the batch's progress moves past the slice; its length is part of that progress, so a
replay after a crash cuts it back to what the progress covers and never lists a row twice.
Each line: `{"file": name, "row": n, "errors": [{"path", "code", "message"}], "record": text}`.
Downloads stream the lines as they are (failed rows), or without `record` (row errors).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from koppla.core import codec
from koppla.platform.batches.durable import fsync_directory, make_directory
from koppla.platform.batches.reader import Problem

ERRORS = "errors"
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class RowError:
    """One refused row: its file, its number there, every problem, and the row as sent."""

    file: str
    row: int
    problems: tuple[Problem, ...]
    record: str

    def line(self) -> bytes:
        """The row error as one line of JSON."""
        errors = [{"path": p, "code": c, "message": m} for p, c, m in self.problems]
        body = {"file": self.file, "row": self.row, "errors": errors, "record": self.record}
        return codec.dumps(body) + b"\n"


class ErrorLog:
    """The row-error files of one batch."""

    def __init__(self, batch_directory: Path) -> None:
        self._directory = batch_directory / ERRORS

    def path(self, file_index: int) -> Path:
        """The row-error file of the batch's input file number `file_index`."""
        return self._directory / f"{file_index:05d}.jsonl"

    def append(self, file_index: int, errors: list[RowError]) -> int:
        """Append `errors` durably to the file's row errors; the file's new length in bytes."""
        path = self.path(file_index)
        if not errors:
            return path.stat().st_size if path.exists() else 0
        make_directory(self._directory)
        created = not path.exists()
        with path.open("ab") as file:
            file.write(b"".join(error.line() for error in errors))
            file.flush()
            os.fsync(file.fileno())
            size = file.tell()
        if created:  # the new file's name survives a power loss too
            fsync_directory(self._directory)
        return size

    def cut(self, file_index: int, size: int) -> None:
        """Cut the file's row errors back to `size` bytes (what the durable progress covers)."""
        path = self.path(file_index)
        if path.exists() and path.stat().st_size > size:
            with path.open("r+b") as file:
                file.truncate(size)
                os.fsync(file.fileno())

    def size(self, file_index: int) -> int:
        """The length in bytes of the file's row errors (0 when it has none)."""
        path = self.path(file_index)
        return path.stat().st_size if path.exists() else 0


def stream_lines(path: Path, *, with_records: bool = True) -> Iterator[bytes]:
    """The lines of a row-error file, a chunk at a time; without `record` if asked."""
    if with_records:
        with path.open("rb") as file:
            while chunk := file.read(_CHUNK):
                yield chunk
        return
    with path.open("rb") as file:
        pending: list[bytes] = []
        size = 0
        for line in file:
            entry = codec.loads(line)
            entry.pop("record", None)
            pending.append(codec.dumps(entry) + b"\n")
            size += len(pending[-1])
            if size >= _CHUNK:
                yield b"".join(pending)
                pending, size = [], 0
        if pending:
            yield b"".join(pending)


def first_errors(batch_directory: Path, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """Up to `limit` row errors of a batch, file by file, and whether more were left out."""
    found: list[dict[str, Any]] = []
    for path in sorted((batch_directory / ERRORS).glob("*.jsonl")):
        with path.open("rb") as file:
            for line in file:
                if len(found) == limit:
                    return found, True
                found.append(codec.loads(line))
    return found, False
