"""The durable progress of one batch's processing, in a small SQLite file of its own.

It holds the list of input files (fixed when processing starts), how far reading has got (file,
cursor), per-file counts, the `_id`s staged so far (to skip a row the batch already holds), the
staged parts and the problem codes met. Every slice moves it on in one transaction, after the
slice's part file and row errors are on disk, so a crash at any point resumes at the last slice
recorded: a part file written after it is overwritten, row errors past it are cut off.

Each process that takes the batch up counts an attempt (`attempt`), and every step forward resets
the count, so a batch that breaks the pipeline the same way on every restart can be told apart
(with the last error noted, when there was time to note it) and given up.

The commit phase records the last part whose rows are in the dataset and counted (`handled`),
and, before each Delta commit, the rows that commit drops as already stored (`pending_*`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from koppla.platform.batches.files import InputFile
from koppla.platform.batches.manifest import FileReport
from koppla.platform.datasets.dedupe import id_key, present

Phase = Literal["staging", "committing", "failing"]

JOURNAL = "work.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
  n INTEGER PRIMARY KEY, name TEXT NOT NULL, size INTEGER NOT NULL,
  rows INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
  skipped INTEGER NOT NULL DEFAULT 0, error TEXT, errors_bytes INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ids (k BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS parts (n INTEGER PRIMARY KEY, rows INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS codes (
  code TEXT PRIMARY KEY, rows INTEGER NOT NULL, example TEXT NOT NULL);
"""

_NUMBERS: dict[str, int] = {
    "file": 0,
    "offset": 0,
    "row": 0,
    "parts": 0,
    "handled": -1,
    "written": 0,
    "late_duplicates": 0,
    "pending_end": -1,
    "pending_duplicates": 0,
    "seen_version": -1,
    "attempts": 0,
}


@dataclass(frozen=True, slots=True)
class Progress:
    """Where processing of a batch stands.

    Staging: input file `file`, from byte/row `offset` after `row` rows. `parts`: part files
    staged. Committing: parts up to `handled` are in the dataset and counted; `written` rows
    were appended, `late_duplicates` dropped at commit time because the dataset got them while
    the batch was staged; `pending_end`/`pending_duplicates` describe the commit under way;
    `seen_version` is the dataset table's version when its ids were last checked.
    `attempts` counts the processes that took the batch up since it last moved on.
    """

    phase: Phase
    file: int
    offset: int
    row: int
    parts: int
    handled: int
    written: int
    late_duplicates: int
    pending_end: int
    pending_duplicates: int
    seen_version: int
    attempts: int


@dataclass(frozen=True, slots=True)
class SliceOutcome:
    """What one slice of a file gave, recorded together with the progress past it."""

    file: int
    offset: int
    row: int
    file_done: bool
    rows: int
    failed: int
    skipped: int
    errors_bytes: int
    staged_ids: list[str]
    part_rows: int
    codes: dict[str, tuple[int, str]]
    """Problem code → (rows, an example description)."""


class Journal:
    """The work file of one batch (`<batch>/work.sqlite`)."""

    def __init__(self, batch_directory: Path) -> None:
        batch_directory.mkdir(parents=True, exist_ok=True)
        self.path = batch_directory / JOURNAL
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def begin(self, files: list[InputFile], version: int) -> bool:
        """Fix the batch's input files and start staging, unless already begun; True if now.

        `version` is the dataset table's version before any row is checked against it.
        """
        if self._db.execute("SELECT 1 FROM state WHERE name = 'phase'").fetchone():
            return False
        with self._transaction():
            self._db.executemany(
                "INSERT INTO files (n, name, size) VALUES (?, ?, ?)",
                ((n, f.name, f.size) for n, f in enumerate(files)),
            )
            self._set("seen_version", version)
            self._set("phase", "staging")
        return True

    def progress(self) -> Progress:
        """Where processing stands."""
        values = {str(name): value for name, value in self._db.execute("SELECT * FROM state")}
        numbers = {name: int(values.get(name, default)) for name, default in _NUMBERS.items()}
        phase: Phase = "staging"
        if values.get("phase") == "committing":
            phase = "committing"
        elif values.get("phase") == "failing":
            phase = "failing"
        return Progress(phase=phase, **numbers)

    def files(self) -> list[FileReport]:
        """The batch's input files and what each gave so far."""
        rows = self._db.execute(
            "SELECT n, name, size, rows, failed, skipped, error FROM files ORDER BY n"
        ).fetchall()
        return [
            FileReport(int(n), str(name), int(size), int(r), int(f), int(s), e)
            for n, name, size, r, f, s, e in rows
        ]

    def errors_bytes(self, file: int) -> int:
        """How much of the file's row errors the progress covers."""
        row = self._db.execute("SELECT errors_bytes FROM files WHERE n = ?", (file,)).fetchone()
        return 0 if row is None else int(row[0])

    def seen(self, event_ids: Iterable[str]) -> set[str]:
        """The subset of `event_ids` this batch has staged already."""
        return present(self._db, event_ids)[0]

    def record_slice(self, outcome: SliceOutcome) -> None:
        """Record one slice: its counts, its staged ids and part, and the progress past it."""
        with self._transaction():
            db = self._db
            db.executemany(
                "INSERT OR IGNORE INTO ids VALUES (?)", ((id_key(e),) for e in outcome.staged_ids)
            )
            db.execute(
                "UPDATE files SET rows = rows + ?, failed = failed + ?, skipped = skipped + ?, "
                "errors_bytes = ? WHERE n = ?",
                (outcome.rows, outcome.failed, outcome.skipped, outcome.errors_bytes, outcome.file),
            )
            if outcome.part_rows:
                parts = self._value("parts")
                db.execute("INSERT OR REPLACE INTO parts VALUES (?, ?)", (parts, outcome.part_rows))
                self._set("parts", parts + 1)
            for code, (count, example) in outcome.codes.items():
                db.execute(
                    "INSERT INTO codes VALUES (?, ?, ?) ON CONFLICT(code) "
                    "DO UPDATE SET rows = rows + excluded.rows",
                    (code, count, example),
                )
            self._set("attempts", 0)
            if outcome.file_done:
                self._set("file", outcome.file + 1)
                self._set("offset", 0)
                self._set("row", 0)
            else:
                self._set("offset", outcome.offset)
                self._set("row", outcome.row)

    def file_failed(self, file: int, error: str) -> None:
        """Record that input file `file` cannot be read, and move on to the next."""
        with self._transaction():
            self._db.execute("UPDATE files SET error = ? WHERE n = ?", (error, file))
            self._db.execute(
                "INSERT INTO codes VALUES ('file', 1, ?) ON CONFLICT(code) "
                "DO UPDATE SET rows = rows + 1",
                (error,),
            )
            self._set("file", file + 1)
            self._set("offset", 0)
            self._set("row", 0)

    def set_phase(self, phase: Phase) -> None:
        """Move to `phase` (staging is over: `committing`, or `failing` for a rejected batch)."""
        with self._transaction():
            self._set("phase", phase)

    def parts(self) -> list[tuple[int, int]]:
        """`(part number, rows)` of every staged part, in order."""
        rows = self._db.execute("SELECT n, rows FROM parts ORDER BY n").fetchall()
        return [(int(n), int(count)) for n, count in rows]

    def codes(self) -> list[tuple[str, int, str]]:
        """`(code, rows, example)` of every problem code met, most frequent first."""
        rows = self._db.execute("SELECT code, rows, example FROM codes ORDER BY rows DESC, code")
        return [(str(code), int(count), str(example)) for code, count, example in rows]

    def pending(self, end: int, duplicates: int) -> None:
        """Record, before a commit of the parts up to `end`, the rows it drops as stored."""
        with self._transaction():
            self._set("pending_end", end)
            self._set("pending_duplicates", duplicates)

    def handled(self, end: int, written: int, duplicates: int, version: int) -> None:
        """Record that the parts up to `end` are in the dataset: rows written and dropped."""
        with self._transaction():
            self._set("handled", end)
            self._set("written", self._value("written") + written)
            self._set("late_duplicates", self._value("late_duplicates") + duplicates)
            self._set("seen_version", version)
            self._set("attempts", 0)

    def attempt(self) -> int:
        """Count one more process taking the batch up without it moving on; the new count."""
        with self._transaction():
            attempts = self._value("attempts") + 1
            self._set("attempts", attempts)
        return attempts

    def note_error(self, error: str) -> None:
        """Keep `error`, what stopped the last attempt, for the message when it is given up."""
        with self._transaction():
            self._set("last_error", error[:1000])

    def last_error(self) -> str | None:
        """What stopped the last attempt, when it was noted."""
        return self._text("last_error")

    def set_aside(self, reason: str) -> None:
        """Leave the batch alone from now on (it cannot finish and cannot fail any more)."""
        with self._transaction():
            self._set("aside", reason)

    def aside(self) -> str | None:
        """Why the batch was set aside, or None."""
        return self._text("aside")

    def _text(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def _value(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else _NUMBERS[name]

    def _set(self, name: str, value: object) -> None:
        self._db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (name, value))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """`with`: one immediate transaction, committed on success, rolled back on failure."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
