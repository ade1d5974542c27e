"""Processing completed ingestion batches in the pipeline process, a bounded amount per step.

A batch its client completed (status `processing`) goes through three phases, each durable:

1. Staging, one slice of rows at a time: each row is read, given an `_id` when it has none
   (derived from the batch id, file name and row number, so a replay names it the same), skipped
   when the batch or the dataset already holds its `_id` (the streaming pipeline's own dedupe
   index of the dataset), validated with the streaming path's validator, and either staged (a
   Parquet part in the dataset's shape) or refused with every problem (the row errors). The
   slice's part and errors are on disk before the journal records the progress past it.
2. The verdict: a batch with an unreadable file, or more bad rows than `max_failed_ratio` of
   all rows, fails whole: nothing of it is stored, its errors and input files are kept.
3. Committing: consecutive parts, up to `commit_rows` rows at a time, are appended to the
   dataset's Delta table under the app transaction `koppla-batch/<id>` whose version is the last
   part's number, so after a crash the table itself says which parts it holds. Rows the dataset
   got from another path while the batch was staged are dropped before each commit.

Then the batch is marked `success` with its metrics and its input files are deleted. The caller
(the pipeline) is the only writer of the datasets, so streaming and batches never race. Failures
of the machinery (disk, SQLite, a Delta commit) raise and the pipeline restarts; a problem no one
foresaw with one batch's contents fails that batch only.

After a restart, `recover` records a commit the crash left unrecorded before streaming drains
anything. A batch that stops the pipeline `MAX_ATTEMPTS` times in a row without moving on is
given up: failed if none of it is stored yet, else set aside (left `processing`, skipped).
What finished batches keep, and for how long, is `retention`'s business.

The dataset and its schema are looked up again at every step, so a schema that grows while a
batch is processed takes effect from the next slice: its table gets the new fields before the
next commit (`DeltaStore.ensure_dataset`), and parts staged under the older shape are committed
with those fields null. The custom attributes of every row validated are counted per slice and
recorded (`AttributeLog`, best effort) once the slice's outcome is durable.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from koppla.core import clock, ids
from koppla.core.errors import NotFound
from koppla.core.layout import Layout
from koppla.platform.batches import manifest, parts
from koppla.platform.batches.errors import ErrorLog, RowError
from koppla.platform.batches.files import BatchFiles
from koppla.platform.batches.journal import JOURNAL, Journal, Progress, SliceOutcome
from koppla.platform.batches.manifest import FileReport
from koppla.platform.batches.reader import (
    MAX_DOCUMENT_BYTES,
    Cursor,
    FileUnreadable,
    Format,
    RawRow,
    RowReader,
)
from koppla.platform.batches.retention import Retention, drop_work
from koppla.platform.catalog.models import Batch, BatchError, Dataset
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.attribute_log import AttributeLog
from koppla.platform.datasets.dedupe import DAY_MS, IdIndex, id_key
from koppla.platform.datasets.location import TableLocation
from koppla.platform.datasets.storage import DeltaStore
from koppla.platform.datasets.tables import rows_table, stored_row
from koppla.platform.schemas.observed import Tally
from koppla.xdm.event_types import validate_event
from koppla.xdm.registry import SchemaRegistry
from koppla.xdm.types import Schema

log = logging.getLogger(__name__)

SOURCE = "batch-ingestion"
"""The `source` of batches created through the batch ingestion API."""

COMMIT_COST = 5
"""Rows committed per row of a step's budget: appending is far cheaper than validating."""

MAX_ATTEMPTS = 3
"""Processes in a row that may take a batch up without it moving on before it is given up."""

DedupeFor = Callable[[str], IdIndex]
"""The dedupe index of a dataset (by id): the one the streaming pipeline uses for it."""


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """How batches are processed (from the `batch_*` settings)."""

    rows_per_step: int = 10_000
    commit_rows: int = 50_000
    max_failed_ratio: float = 0.5
    max_depth: int = 32
    diagnostics_ms: int = 30 * DAY_MS
    sweep_every_ms: int = 3_600_000
    max_document_bytes: int = MAX_DOCUMENT_BYTES


@dataclass
class _Checked:
    """One slice, checked: the table to stage, its ids, the refused rows and the counts."""

    table: pa.Table | None = None
    staged_ids: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0
    codes: dict[str, tuple[int, str]] = field(default_factory=dict)
    tally: Tally = field(default_factory=lambda: Tally(""))

    def refuse(self, error: RowError) -> None:
        self.errors.append(error)
        path, code, message = error.problems[0]
        count, example = self.codes.get(code, (0, ""))
        where = f"{path}: " if path else ""
        example = example or f"{error.file} row {error.row}: {where}{message}"
        self.codes[code] = (count + 1, example)


class BatchIngestor:
    """Moves completed batches on; `advance` is called by the pipeline once per step."""

    def __init__(
        self,
        layout: Layout,
        catalog: Catalog,
        registry: SchemaRegistry,
        *,
        store: DeltaStore,
        dedupe: DedupeFor,
        options: BatchOptions | None = None,
        attributes: AttributeLog | None = None,
        location: TableLocation | None = None,
    ) -> None:
        """Batches' files under `layout`; the datasets' tables at `location` (by default under
        `layout`'s home), written through `store` (which holds their storage options)."""
        self._layout, self._catalog, self._registry = layout, catalog, registry
        self._tables = location or TableLocation.local(layout.datasets)
        self._own_attributes = attributes is None
        self._attributes = attributes or AttributeLog(layout.attributes)
        self._store, self._dedupe = store, dedupe
        self._options = options or BatchOptions()
        self._files = BatchFiles(layout)
        self._reader = RowReader(
            self._options.max_depth, max_document_bytes=self._options.max_document_bytes
        )
        self._journals: dict[str, Journal] = {}
        self._prepared: set[str] = set()
        """Batches whose table and journal this process has made ready."""
        self._attempted: set[str] = set()
        """Batches this process took up (and counted an attempt for)."""
        self._aside: set[str] = set()
        """Batches set aside: they can neither finish nor fail, and are skipped."""
        self._retention = Retention(
            layout,
            catalog,
            diagnostics_ms=self._options.diagnostics_ms,
            every_ms=self._options.sweep_every_ms,
        )
        self.busy = False
        """True when the last `advance` stopped at its budget with work left."""

    @property
    def reader(self) -> RowReader:
        """The reader of the batches' files (what it keeps open is bounded and dropped)."""
        return self._reader

    def recover(self) -> int:
        """Record every batch commit a crash left unrecorded; call it before streaming drains.

        A kill between a batch's Delta commit and the update of the dataset's dedupe index
        would otherwise let streaming store again an `_id` the batch just stored. Returns how
        many commits were recorded. A batch whose recovery fails is logged and left to
        `advance` (which counts the attempt).
        """
        root = self._layout.batches
        if not root.is_dir():
            return 0
        recorded = 0
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if not (Path(entry.path) / JOURNAL).is_file():
                continue
            try:
                recorded += self._recover_one(entry.name)
            except Exception:  # advance meets it again and counts the attempt
                log.exception("batch %s: its last commit could not be checked", entry.name)
        return recorded

    def _recover_one(self, batch_id: str) -> int:
        try:
            batch = self._catalog.batch(batch_id)
            dataset = self._catalog.dataset(batch.dataset_id)
            schema = self._registry.get(dataset.schema_id)
        except NotFound:
            return 0
        if batch.status != "processing" or not batch.ingested:
            return 0
        journal = self._journal(batch)
        if journal.progress().phase != "committing" or journal.aside() is not None:
            return 0
        self._prepare(batch, dataset, schema, journal)
        return int(self._record_commit(batch, dataset, journal, journal.progress()))

    def advance(self) -> int:
        """Move completed batches on by up to `rows_per_step` rows' worth of work.

        Returns that work in rows (0 when no batch waits). Raises when the machinery fails
        (disk, SQLite, Delta); a batch whose contents break something unforeseen fails alone,
        and a batch that stopped the pipeline `MAX_ATTEMPTS` times in a row is given up.
        """
        self._retention.sweep_when_due(active=self._journals.keys())
        budget = self._options.rows_per_step
        spent = 0
        while spent < budget:
            batch = self._catalog.next_ingestion_batch(skip=self._aside)
            if batch is None:
                self.busy = False
                return spent
            spent += self._advance_one(batch, budget - spent)
        self.busy = True
        return spent

    def close(self) -> None:
        """Close the open journals (and the record of attributes, unless it was given)."""
        for journal in self._journals.values():
            journal.close()
        self._journals.clear()
        self._prepared.clear()
        if self._own_attributes:
            self._attributes.close()

    def _advance_one(self, batch: Batch, budget: int) -> int:
        try:
            dataset = self._catalog.dataset(batch.dataset_id)
            schema = self._registry.get(dataset.schema_id)
        except NotFound as error:
            self._fail(batch, self._journals.get(batch.id), "dataset", str(error))
            return 1
        journal = self._journal(batch)
        if batch.id not in self._attempted:
            self._attempted.add(batch.id)
            if journal.aside() is not None:
                self._aside.add(batch.id)
                return 1
            if journal.attempt() > MAX_ATTEMPTS:
                self._give_up(batch, journal)
                return 1
        try:
            return self._work(batch, dataset, schema, journal, budget)
        except BaseException as error:  # kept for the message if the batch is given up
            with suppress(Exception):
                journal.note_error(f"{type(error).__name__}: {error}")
            raise

    def _work(
        self, batch: Batch, dataset: Dataset, schema: Schema, journal: Journal, budget: int
    ) -> int:
        self._prepare(batch, dataset, schema, journal)
        self._store.ensure_dataset(self._tables.table(dataset.id), schema)
        progress = journal.progress()
        if progress.phase == "committing":
            return self._commit(batch, dataset, journal, progress)
        if progress.phase == "failing":
            verdict = self._verdict(journal) or ("batchFailed", "the batch was refused")
            self._fail(batch, journal, *verdict)
            return 1
        try:
            return self._stage(batch, dataset, schema, journal, progress, budget)
        except (OSError, sqlite3.Error):
            raise
        except Exception as error:  # something about this batch no one foresaw: it fails alone
            log.exception("batch %s failed while it was read", batch.id)
            self._fail(batch, journal, "internal", f"{type(error).__name__}: {error}")
            return 1

    def _journal(self, batch: Batch) -> Journal:
        """The batch's journal file, open (kept open while the batch is processed)."""
        journal = self._journals.get(batch.id)
        if journal is None:
            journal = Journal(self._files.directory(batch.id))
            self._journals[batch.id] = journal
        return journal

    def _prepare(self, batch: Batch, dataset: Dataset, schema: Schema, journal: Journal) -> None:
        """Once per process: the dataset's table ready, the journal begun (input files fixed)
        or, after a restart, what a half-recorded slice left behind dropped."""
        if batch.id in self._prepared:
            return
        directory = self._files.directory(batch.id)
        table = self._tables.table(dataset.id)
        self._store.ensure_dataset(table, schema)
        if not journal.begin(self._files.inputs(batch.id), self._store.version(table)):
            progress = journal.progress()
            if progress.phase == "staging":  # drop what a slice left behind before a crash
                ErrorLog(directory).cut(progress.file, journal.errors_bytes(progress.file))
                for stale in (directory / parts.PARTS).glob("*"):
                    if stale.suffix == ".tmp" or _part_number(stale) >= progress.parts:
                        stale.unlink()
        self._prepared.add(batch.id)

    def _give_up(self, batch: Batch, journal: Journal) -> None:
        """Fail a batch that stopped the pipeline on every attempt, or, when some of it is
        already in the dataset, set it aside (it stays `processing`, with the reason)."""
        error = journal.last_error() or "none recorded (the process was killed?)"
        description = (
            f"processing this batch stopped the pipeline {MAX_ATTEMPTS} times in a row; "
            f"last error: {error}"
        )[:500]
        if journal.progress().pending_end < 0:  # no part of it can be in the dataset yet
            self._fail(batch, journal, "stuck", description)
            return
        journal.set_aside(description)
        self._aside.add(batch.id)
        noted = dataclasses.replace(
            batch,
            errors=(BatchError("stuck", f"set aside: {description}"[:500], 0), *batch.errors),
            updated_ms=clock.now_ms(),
        )
        self._catalog.change_batch(noted, expect=("processing",))
        log.error("batch %s set aside, partly stored: %s", batch.id, description)

    def _stage(
        self,
        batch: Batch,
        dataset: Dataset,
        schema: Schema,
        journal: Journal,
        progress: Progress,
        budget: int,
    ) -> int:
        files = journal.files()
        if progress.file >= len(files):
            journal.set_phase("committing" if self._verdict(journal) is None else "failing")
            return 1
        report = files[progress.file]
        path = self._files.path(batch.id, report.name)
        kind: Format = "parquet" if batch.input_format == "parquet" else "json"
        cursor = Cursor(progress.offset, progress.row)
        with _collector_paused():
            try:
                read = self._reader.read(path, kind, batch.multiline_json, cursor, budget)
            except FileUnreadable as error:
                log.warning("batch %s: file %s cannot be read: %s", batch.id, report.name, error)
                self._reader.forget(path)
                journal.file_failed(report.index, f"{report.name}: {error}")
                return 1
            checked = _Checked(tally=self._attributes.tally(dataset))
            self._check(batch, schema, report, read.rows, journal, checked)
        directory = self._files.directory(batch.id)
        if checked.table is not None:
            parts.write(directory, progress.parts, checked.table)
        errors_bytes = ErrorLog(directory).append(report.index, checked.errors)
        journal.record_slice(
            SliceOutcome(
                file=report.index,
                offset=read.next.offset,
                row=read.next.row,
                file_done=read.done,
                rows=len(read.rows),
                failed=len(checked.errors),
                skipped=checked.skipped,
                errors_bytes=errors_bytes,
                staged_ids=checked.staged_ids,
                part_rows=0 if checked.table is None else checked.table.num_rows,
                codes=checked.codes,
            )
        )
        self._attributes.record(dataset.id, checked.tally)
        if read.done:
            self._reader.forget(path)
        return max(1, len(read.rows))

    def _check(
        self,
        batch: Batch,
        schema: Schema,
        report: FileReport,
        rows: list[RawRow],
        journal: Journal,
        checked: _Checked,
    ) -> None:
        """Name, dedupe and validate the rows of one slice, into `checked`.

        Ids are compared by `id_key`, so two spellings of one UUID (upper and lower case) are
        one id: the second is skipped as a duplicate. The custom attributes of each row
        validated are counted into `checked.tally`.
        """
        candidates: list[tuple[RawRow, dict[str, Any], str | None]] = []
        for raw in rows:
            if raw.value is None or raw.problem is not None:
                problem = raw.problem or ("", "internal", "the row could not be read")
                checked.refuse(RowError(report.name, raw.number, (problem,), raw.sent()))
                continue
            value = raw.value
            event_id = value.get("_id")
            if event_id is None or event_id == "":
                event_id = ids.derived_uuid("batch", batch.id, report.name, str(raw.number))
                value = {**value, "_id": event_id}
            candidates.append((raw, value, event_id if isinstance(event_id, str) else None))
        named = [event_id for _, _, event_id in candidates if event_id is not None]
        held = {id_key(e) for e in journal.seen(named)}
        rest = [e for e in named if id_key(e) not in held]
        held |= {id_key(e) for e in self._dedupe(batch.dataset_id).seen(rest)}
        accepted: list[tuple[RawRow, dict[str, Any], str]] = []
        for raw, value, event_id in candidates:
            key = None if event_id is None else id_key(event_id)
            if key is not None and key in held:
                checked.skipped += 1
                continue
            row = self._validated(batch, schema, report, raw, value, checked)
            if row is None:
                continue
            if event_id is None or key is None:  # the schema let a non-string `_id` through
                problem = ("_id", "type", "the record id must be a string")
                checked.refuse(RowError(report.name, raw.number, (problem,), raw.sent()))
                continue
            held.add(key)
            accepted.append((raw, row, event_id))
        table, good, bad = rows_table(schema, [row for _, row, _ in accepted])
        for index, reason in bad:
            raw = accepted[index][0]
            problem = ("", "storage", f"the row could not be stored: {reason}")
            checked.refuse(RowError(report.name, raw.number, (problem,), raw.sent()))
        checked.table = table
        checked.staged_ids = [accepted[index][2] for index in good]
        checked.errors.sort(key=lambda error: error.row)

    @staticmethod
    def _validated(
        batch: Batch,
        schema: Schema,
        report: FileReport,
        raw: RawRow,
        value: dict[str, Any],
        checked: _Checked,
    ) -> dict[str, Any] | None:
        """The row to store, or None when it is refused (then recorded in `checked`)."""
        try:
            checked.tally.add(value)
            outcome = validate_event(schema, value)
            if outcome.issues:
                problems = tuple((i.path, i.code, i.message) for i in outcome.issues)
                checked.refuse(RowError(report.name, raw.number, problems, raw.sent()))
                return None
            return stored_row(outcome, batch.id)
        except Exception as error:  # one row must never stop the batch
            problem = ("", "internal", f"{type(error).__name__}: {error}")
            checked.refuse(RowError(report.name, raw.number, (problem,), raw.sent()))
            return None

    def _verdict(self, journal: Journal) -> tuple[str, str] | None:
        """Why the staged batch must fail whole (code, description), or None when it lands."""
        files = journal.files()
        unreadable = [f for f in files if f.error]
        if unreadable:
            names = ", ".join(f.name for f in unreadable[:5])
            return (
                "unreadableFiles",
                f"{len(unreadable)} file(s) cannot be read ({names}): nothing stored",
            )
        read = sum(f.rows for f in files)
        failed = sum(f.failed for f in files)
        ratio = self._options.max_failed_ratio
        if read and failed > ratio * read:
            return (
                "tooManyFailedRows",
                f"{failed} of {read} rows failed, more than the allowed share {ratio:g} "
                "(batch_max_failed_ratio): nothing stored",
            )
        return None

    def _record_commit(
        self, batch: Batch, dataset: Dataset, journal: Journal, progress: Progress
    ) -> bool:
        """Record a commit of the batch that a crash left unrecorded; True if there was one.

        Its ids go into the dedupe index and its rows are counted. The version of the table
        whose ids were last checked stays as it was: what streaming wrote since must still be
        checked against the parts not yet committed.
        """
        table_path = self._tables.table(dataset.id)
        done = self._store.committed_version(table_path, f"koppla-batch/{batch.id}")
        if done <= progress.handled:
            return False
        staged = journal.parts()
        numbers = [n for n, _ in staged if progress.handled < n <= done]
        self._dedupe(dataset.id).add(parts.ids(self._files.directory(batch.id), numbers))
        rows = sum(count for n, count in staged if progress.handled < n <= done)
        dropped = progress.pending_duplicates if progress.pending_end == done else 0
        journal.handled(done, rows - dropped, dropped, progress.seen_version)
        return True

    def _commit(self, batch: Batch, dataset: Dataset, journal: Journal, progress: Progress) -> int:
        """Append the next parts to the dataset (or record a commit a crash left unrecorded).

        Rows some other path stored since the dataset's ids were last checked are dropped
        first. The checked version moves on only when nobody else wrote since the last check,
        so every later group is checked too once another writer was seen.
        """
        if self._record_commit(batch, dataset, journal, progress):
            return 1
        table_path = self._tables.table(dataset.id)
        directory = self._files.directory(batch.id)
        dedupe = self._dedupe(dataset.id)
        group: list[int] = []
        total = 0
        for number, count in journal.parts():
            if number <= progress.handled:
                continue
            if group and total + count > self._options.commit_rows:
                break
            group.append(number)
            total += count
        if not group:
            self._succeed(batch, journal, progress)
            return 1
        table = parts.read(directory, group)
        event_ids = [str(e) for e in table.column("_id").to_pylist()]
        dropped = 0
        app_id = f"koppla-batch/{batch.id}"
        before = self._store.version(table_path)
        stored: set[str] = set()
        if dedupe.claims:  # pipeline workers share the dataset: claim, as they do
            items = [(event_id, group[-1]) for event_id in event_ids]
            stored = dedupe.taken(items, owner=app_id, done=progress.handled)
        elif before != progress.seen_version:  # others wrote since the last check
            stored = dedupe.seen(event_ids)
        if stored:
            keep = pc.invert(pc.is_in(table.column("_id"), pa.array(sorted(stored))))
            table = table.filter(keep)
            dropped = len(event_ids) - table.num_rows
        journal.pending(group[-1], dropped)
        if table.num_rows:
            metadata = {"koppla.batchId": batch.id, "koppla.source": SOURCE}
            self._store.append(
                table_path,
                table,
                app_id=app_id,
                version=group[-1],
                metadata=metadata,
            )
        dedupe.add(event_ids)
        unseen = before == progress.seen_version
        checked = self._store.version(table_path) if unseen else progress.seen_version
        journal.handled(group[-1], table.num_rows, dropped, checked)
        return max(1, total // COMMIT_COST)

    def _succeed(self, batch: Batch, journal: Journal, progress: Progress) -> None:
        files = journal.files()
        directory = self._files.directory(batch.id)
        manifest.write(directory, files)
        now = clock.now_ms()
        done = dataclasses.replace(
            batch,
            status="success",
            records=progress.written,
            failed_records=sum(f.failed for f in files),
            duplicates=sum(f.skipped for f in files) + progress.late_duplicates,
            records_read=sum(f.rows for f in files),
            errors=_summary(journal),
            completed_ms=now,
            updated_ms=now,
        )
        if not self._catalog.change_batch(done, expect=("processing",)):
            log.warning("batch %s changed status while it was being finished", batch.id)
        log.info(
            "batch %s: %d rows written, %d failed, %d skipped as duplicates",
            batch.id,
            done.records,
            done.failed_records,
            done.duplicates,
        )
        self._drop_work(batch.id)
        self._files.remove_inputs(batch.id)

    def _fail(self, batch: Batch, journal: Journal | None, code: str, description: str) -> None:
        """Mark the batch `failed` (nothing of it stored); keep its errors and input files."""
        files = journal.files() if journal is not None else []
        for report in files:  # what the reader keeps of its files goes with the batch
            self._reader.forget(self._files.path(batch.id, report.name))
        directory = self._files.directory(batch.id)
        if journal is not None:
            manifest.write(directory, files)
        now = clock.now_ms()
        failed = sum(f.failed for f in files)
        summary = (BatchError(code, description, failed), *_summary(journal))
        done = dataclasses.replace(
            batch,
            status="failed",
            records=0,
            failed_records=failed,
            duplicates=sum(f.skipped for f in files),
            records_read=sum(f.rows for f in files),
            errors=summary,
            completed_ms=now,
            updated_ms=now,
        )
        if not self._catalog.change_batch(done, expect=("processing",)):
            log.warning("batch %s changed status while it was being failed", batch.id)
        log.warning("batch %s failed: %s", batch.id, description)
        self._drop_work(batch.id)

    def _drop_work(self, batch_id: str) -> None:
        """Close and delete the batch's journal and staged parts."""
        journal = self._journals.pop(batch_id, None)
        if journal is not None:
            journal.close()
        self._prepared.discard(batch_id)
        self._attempted.discard(batch_id)
        drop_work(self._files.directory(batch_id))

    def sweep(self, now_ms: int) -> int:
        """Delete what finished batches no longer need (see `retention`); how many expired."""
        return self._retention.sweep(now_ms, active=self._journals.keys())


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block.

    Reading and validating a slice allocates hundreds of thousands of small dicts and lists
    that live until the slice is staged; each automatic collection would walk them all again,
    which more than doubles the cost of parsing and validating. They hold no cycles, so
    reference counting frees them; the collector resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _summary(journal: Journal | None) -> tuple[BatchError, ...]:
    """The batch's problems by code: how many rows each, with an example."""
    if journal is None:
        return ()
    return tuple(
        BatchError(code, f"{count} row(s); e.g. {example}"[:500], count)
        for code, count, example in journal.codes()
    )


def _part_number(path: Path) -> int:
    try:
        return int(path.stem.removeprefix("part-"))
    except ValueError:
        return -1
