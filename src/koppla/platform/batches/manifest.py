"""A finished batch's manifest: what each input file held, kept with the batch's diagnostics.

Written once (atomically) when the batch finishes, before its input files are deleted, so the
diagnostics can still say which files a batch had, how big, how many rows each gave and why a
file could not be read, for as long as they are kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from koppla.core import codec
from koppla.platform.batches.durable import write_durably

MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class FileReport:
    """One input file of a batch and what came of it.

    `index` numbers the file in name order (its row-error file is `errors/<index>.jsonl`);
    `rows` counts the rows read, `failed` the refused ones, `skipped` those whose `_id` the
    dataset (or the batch) already held; `error` says why the whole file could not be read.
    """

    index: int
    name: str
    size: int
    rows: int = 0
    failed: int = 0
    skipped: int = 0
    error: str | None = None


def write(batch_directory: Path, files: list[FileReport]) -> None:
    """Write the manifest of a batch (replacing an earlier one), durably."""
    write_durably(batch_directory / MANIFEST, codec.dumps([asdict(f) for f in files]))


def read(batch_directory: Path) -> list[FileReport] | None:
    """The manifest of a batch, or None before the batch finished (or after it expired)."""
    try:
        entries = codec.loads((batch_directory / MANIFEST).read_bytes())
    except FileNotFoundError:
        return None
    return [FileReport(**entry) for entry in entries]
