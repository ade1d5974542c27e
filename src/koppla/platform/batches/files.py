"""An ingestion batch's input files on disk: uploads land whole or not at all, under safe names.

Each batch has a directory (`Layout.batch`) holding its uploads under `input/`. An upload is
written to a hidden temporary file next to them, `fsync`ed, and renamed into place only then, so
a reader (or a crash) never sees half a file, and a second upload of the same name replaces the
first atomically. `locked` serializes the moments that must not interleave across processes: a
file taking its place versus the batch being completed or aborted.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from koppla.core import ids
from koppla.core.errors import Conflict, InvalidInput
from koppla.core.layout import Layout
from koppla.platform.batches.durable import fsync_directory, make_directory

SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=-]{0,254}")
"""One part of a file name: letters, digits and `_.=-`, not starting with `.` or `-`."""
MAX_NAME_CHARS = 1024
MAX_SEGMENTS = 8
UPLOAD_PREFIX = ".upload-"
INPUT = "input"


class FileTooLarge(Exception):
    """An upload passed its size limit; what was received of it is discarded."""


def check_file_name(name: str) -> str:
    """`name` if it is a safe batch file name, else `InvalidInput` naming the rule it breaks.

    A name is up to 8 `/`-separated parts (AEP keeps the folders of a file path), each made
    of letters, digits and `_.=-`, not starting with `.` or `-`: no `..`, no hidden files.
    """
    if not name or len(name) > MAX_NAME_CHARS:
        raise InvalidInput(
            f"the file name must hold 1 to {MAX_NAME_CHARS} characters", field="filePath"
        )
    parts = name.split("/")
    if len(parts) > MAX_SEGMENTS:
        raise InvalidInput(
            f"file name {name!r} has {len(parts)} parts; at most {MAX_SEGMENTS} are allowed",
            field="filePath",
        )
    for part in parts:
        if not SEGMENT.fullmatch(part):
            raise InvalidInput(
                f"file name {name!r}: each '/'-separated part must start with a letter, digit "
                "or '_' and hold only letters, digits and '_.=-' (no empty, '.' or '..' parts)",
                field="filePath",
            )
    return name


@dataclass(frozen=True, slots=True)
class InputFile:
    """One uploaded file of a batch: its name as sent and its size in bytes."""

    name: str
    size: int


class Upload:
    """One file being received: bytes go to a temporary file until `place` renames it."""

    def __init__(self, name: str, folder: Path, max_bytes: int) -> None:
        self.name = name
        self._folder, self._max_bytes = folder, max_bytes
        self._temporary = folder / f"{UPLOAD_PREFIX}{ids.new_hex_id()}"
        self._final = folder / name
        self._file: BinaryIO = self._temporary.open("xb")
        self.size = 0

    def write(self, chunk: bytes) -> None:
        """Append `chunk`; `FileTooLarge` once the file would pass its limit."""
        if self.size + len(chunk) > self._max_bytes:
            raise FileTooLarge(f"the file exceeds {self._max_bytes} bytes")
        self._file.write(chunk)
        self.size += len(chunk)

    def sync(self) -> None:
        """Flush and `fsync` what was written (do it before taking the batch's lock)."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def place(self) -> int:
        """Move the synced file into place (replacing a file of the same name); its size.

        `Conflict` when the name clashes with a folder of the batch (or a folder in it with a
        file). The rename is made durable by an `fsync` of the folder.
        """
        self._file.close()
        try:
            self._final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._temporary, self._final)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as error:
            raise Conflict(
                f"file name {self.name!r} clashes with a file or folder of the batch"
            ) from error
        folder = self._final.parent
        while True:  # the rename, and any folder made for it, survive a crash
            fsync_directory(folder)
            if folder == self._folder:
                break
            folder = folder.parent
        return self.size

    def discard(self) -> None:
        """Drop the temporary file (after a failure, or when the upload is refused)."""
        self._file.close()
        self._temporary.unlink(missing_ok=True)


class BatchFiles:
    """The input files of every batch of one Koppla home."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout

    def directory(self, batch_id: str) -> Path:
        """The batch's directory (its inputs, progress and diagnostics)."""
        return self._layout.batch(batch_id)

    def create(self, batch_id: str) -> None:
        """Make the batch's input folder."""
        make_directory(self.directory(batch_id) / INPUT)

    def path(self, batch_id: str, name: str) -> Path:
        """Where the input file `name` (checked with `check_file_name`) is kept."""
        return self.directory(batch_id) / INPUT / name

    def upload(self, batch_id: str, name: str, max_bytes: int) -> Upload:
        """Start receiving the file `name` of a batch, at most `max_bytes` of it."""
        folder = self.directory(batch_id) / INPUT
        make_directory(folder)
        return Upload(check_file_name(name), folder, max_bytes)

    def inputs(self, batch_id: str) -> list[InputFile]:
        """The batch's uploaded files, by name (uploads still arriving are not listed)."""
        root = self.directory(batch_id) / INPUT
        found: list[InputFile] = []
        for folder, folders, names in os.walk(root):
            folders[:] = [f for f in folders if not f.startswith(".")]
            for name in names:
                if name.startswith("."):
                    continue
                path = Path(folder) / name
                found.append(InputFile(path.relative_to(root).as_posix(), path.stat().st_size))
        return sorted(found, key=lambda f: f.name)

    @contextmanager
    def locked(self, batch_id: str) -> Iterator[None]:
        """Hold the batch's lock (across processes) for the block."""
        directory = self.directory(batch_id)
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def remove_inputs(self, batch_id: str) -> None:
        """Delete the batch's input files (its diagnostics stay)."""
        shutil.rmtree(self.directory(batch_id) / INPUT, ignore_errors=True)

    def remove(self, batch_id: str) -> None:
        """Delete everything kept for the batch."""
        shutil.rmtree(self.directory(batch_id), ignore_errors=True)
