"""Writing batch files so that a power loss keeps them whole or leaves them out, never half.

`write_durably` is the one write-temporary, `fsync`, rename, `fsync`-the-folder sequence used for
staged parts and manifests; `make_directory` creates folders whose creation survives a crash;
`fsync_directory` makes a rename or a new file in a folder durable.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(path: Path) -> None:
    """`fsync` the folder at `path`, so the names created or renamed in it survive a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_directory(path: Path) -> None:
    """Create the folder at `path` (and its missing parents), each creation made durable."""
    if path.is_dir():
        return
    make_directory(path.parent)
    try:
        path.mkdir()
    except FileExistsError:
        return
    fsync_directory(path.parent)


def write_durably(path: Path, data: bytes) -> None:
    """Replace the file at `path` with `data` atomically and durably.

    The bytes go to a temporary file next to it (`<name>.tmp`), which is `fsync`ed and renamed
    into place; the folder is then `fsync`ed so the rename survives a power loss.
    """
    make_directory(path.parent)
    temporary = path.with_name(f"{path.name}.tmp")
    with temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)
