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
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from koppla.core import clock, codec, ids
from koppla.core.errors import NotFound
from koppla.core.layout import Layout
from koppla.platform.batches import manifest, parts
from koppla.platform.batches.errors import ErrorLog, RowError
from koppla.platform.batches.files import BatchFiles
from koppla.platform.batches.journal import JOURNAL, Journal, Progress, SliceOutcome
from koppla.platform.batches.manifest import FileReport
from koppla.platform.batches.reader import Cursor, FileUnreadable, Format, RawRow, RowReader
from koppla.platform.catalog.models import FINAL_STATUSES, Batch, BatchError, Dataset
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.dedupe import DAY_MS, DedupeIndex
from koppla.platform.datasets.storage import DeltaStore
from koppla.platform.datasets.tables import dataset_arrow_schema
from koppla.xdm.event_types import validate_event
from koppla.xdm.registry import SchemaRegistry
from koppla.xdm.types import Schema

log = logging.getLogger(__name__)

SOURCE = "batch-ingestion"
"""The `source` of batches created through the batch ingestion API."""

COMMIT_COST = 5
"""Rows committed per row of a step's budget: appending is far cheaper than validating."""

DedupeFor = Callable[[str], DedupeIndex]
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


@dataclass
class _Checked:
    """One slice, checked: the table to stage, its ids, the refused rows and the counts."""

    table: pa.Table | None = None
    staged_ids: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0
    codes: dict[str, tuple[int, str]] = field(default_factory=dict)

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
    ) -> None:
        self._layout, self._catalog, self._registry = layout, catalog, registry
        self._store, self._dedupe = store, dedupe
        self._options = options or BatchOptions()
        self._files = BatchFiles(layout)
        self._reader = RowReader(self._options.max_depth)
        self._journals: dict[str, Journal] = {}
        self._swept_at: int | None = None
        self.busy = False
        """True when the last `advance` stopped at its budget with work left."""

    def advance(self) -> int:
        """Move completed batches on by up to `rows_per_step` rows' worth of work.

        Returns that work in rows (0 when no batch waits). Raises when the machinery fails
        (disk, SQLite, Delta); a batch whose contents break something unforeseen fails alone.
        """
        self._sweep_when_due()
        budget = self._options.rows_per_step
        spent = 0
        while spent < budget:
            batch = self._next()
            if batch is None:
                self.busy = False
                return spent
            spent += self._advance_one(batch, budget - spent)
        self.busy = True
        return spent

    def close(self) -> None:
        """Close the open journals."""
        for journal in self._journals.values():
            journal.close()
        self._journals.clear()

    def _next(self) -> Batch | None:
        waiting = [b for b in self._catalog.batches(status="processing", limit=1000) if b.ingested]
        return min(waiting, key=lambda b: (b.started_ms or b.created_ms, b.id), default=None)

    def _advance_one(self, batch: Batch, budget: int) -> int:
        try:
            dataset = self._catalog.dataset(batch.dataset_id)
            schema = self._registry.get(dataset.schema_id)
        except NotFound as error:
            self._fail(batch, self._journals.get(batch.id), "dataset", str(error))
            return 1
        journal = self._journal(batch, dataset, schema)
        progress = journal.progress()
        if progress.phase == "committing":
            return self._commit(batch, dataset, journal, progress)
        if progress.phase == "failing":
            verdict = self._verdict(journal) or ("batchFailed", "the batch was refused")
            self._fail(batch, journal, *verdict)
            return 1
        try:
            return self._stage(batch, schema, journal, progress, budget)
        except (OSError, sqlite3.Error):
            raise
        except Exception as error:  # something about this batch no one foresaw: it fails alone
            log.exception("batch %s failed while it was read", batch.id)
            self._fail(batch, journal, "internal", f"{type(error).__name__}: {error}")
            return 1

    def _journal(self, batch: Batch, dataset: Dataset, schema: Schema) -> Journal:
        """The batch's journal, begun (input files fixed) or recovered after a restart."""
        journal = self._journals.get(batch.id)
        if journal is not None:
            return journal
        directory = self._files.directory(batch.id)
        journal = Journal(directory)
        table = self._layout.dataset(dataset.id)
        self._store.ensure(table, dataset_arrow_schema(schema))
        if not journal.begin(self._files.inputs(batch.id), _table_version(table)):
            progress = journal.progress()
            if progress.phase == "staging":  # drop what a slice left behind before a crash
                ErrorLog(directory).cut(progress.file, journal.errors_bytes(progress.file))
                for stale in (directory / parts.PARTS).glob("*"):
                    if stale.suffix == ".tmp" or _part_number(stale) >= progress.parts:
                        stale.unlink()
        self._journals[batch.id] = journal
        return journal

    def _stage(
        self, batch: Batch, schema: Schema, journal: Journal, progress: Progress, budget: int
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
                journal.file_failed(report.index, f"{report.name}: {error}")
                return 1
            checked = self._check(batch, schema, report, read.rows, journal)
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
        if read.done:
            self._reader.forget(path)
        return max(1, len(read.rows))

    def _check(
        self, batch: Batch, schema: Schema, report: FileReport, rows: list[RawRow], journal: Journal
    ) -> _Checked:
        """Name, dedupe and validate the rows of one slice."""
        checked = _Checked()
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
        held = journal.seen(named)
        held |= self._dedupe(batch.dataset_id).seen(e for e in named if e not in held)
        accepted: list[tuple[RawRow, dict[str, Any], str]] = []
        for raw, value, event_id in candidates:
            if event_id is not None and event_id in held:
                checked.skipped += 1
                continue
            row = self._validated(batch, schema, report, raw, value, checked)
            if row is None:
                continue
            if event_id is None:  # the schema let a non-string `_id` through: still unusable
                problem = ("_id", "type", "the record id must be a string")
                checked.refuse(RowError(report.name, raw.number, (problem,), raw.sent()))
                continue
            held.add(event_id)
            accepted.append((raw, row, event_id))
        table, good, bad = parts.to_table(schema, [row for _, row, _ in accepted])
        for index, reason in bad:
            raw = accepted[index][0]
            problem = ("", "storage", f"the row could not be stored: {reason}")
            checked.refuse(RowError(report.name, raw.number, (problem,), raw.sent()))
        checked.table = table
        checked.staged_ids = [accepted[index][2] for index in good]
        checked.errors.sort(key=lambda error: error.row)
        return checked

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
            outcome = validate_event(schema, value)
            if outcome.issues:
                problems = tuple((i.path, i.code, i.message) for i in outcome.issues)
                checked.refuse(RowError(report.name, raw.number, problems, raw.sent()))
                return None
            row = dict(outcome.record)
            row["_batch_id"] = batch.id
            row["_unknown"] = codec.dumps(outcome.unknown).decode() if outcome.unknown else None
            row["_datetimes"] = outcome.datetimes or None
        except Exception as error:  # one row must never stop the batch
            problem = ("", "internal", f"{type(error).__name__}: {error}")
            checked.refuse(RowError(report.name, raw.number, (problem,), raw.sent()))
            return None
        return row

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

    def _commit(self, batch: Batch, dataset: Dataset, journal: Journal, progress: Progress) -> int:
        """Append the next parts to the dataset (or record a commit a crash left unrecorded)."""
        table_path = self._layout.dataset(dataset.id)
        app_id = f"koppla-batch/{batch.id}"
        directory = self._files.directory(batch.id)
        dedupe = self._dedupe(dataset.id)
        staged = journal.parts()
        done = self._store.committed_version(table_path, app_id)
        if done > progress.handled:  # committed before a crash, not yet counted
            numbers = [n for n, _ in staged if progress.handled < n <= done]
            dedupe.add(parts.ids(directory, numbers))
            rows = sum(count for n, count in staged if progress.handled < n <= done)
            dropped = progress.pending_duplicates if progress.pending_end == done else 0
            journal.handled(done, rows - dropped, dropped, _table_version(table_path))
            return 1
        group: list[int] = []
        total = 0
        for number, count in staged:
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
        if _table_version(table_path) != progress.seen_version:  # others wrote since the check
            stored = dedupe.seen(event_ids)
            if stored:
                keep = pc.invert(pc.is_in(table.column("_id"), pa.array(sorted(stored))))
                table = table.filter(keep)
                dropped = len(event_ids) - table.num_rows
        journal.pending(group[-1], dropped)
        if table.num_rows:
            metadata = {"koppla.batchId": batch.id, "koppla.source": SOURCE}
            self._store.append(
                table_path, table, app_id=app_id, version=group[-1], metadata=metadata
            )
        dedupe.add(event_ids)
        journal.handled(group[-1], table.num_rows, dropped, _table_version(table_path))
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
        directory = self._files.directory(batch_id)
        shutil.rmtree(directory / parts.PARTS, ignore_errors=True)
        for suffix in ("", "-wal", "-shm"):
            (directory / f"{JOURNAL}{suffix}").unlink(missing_ok=True)

    def _sweep_when_due(self) -> None:
        now = clock.now_ms()
        if self._swept_at is None or now - self._swept_at >= self._options.sweep_every_ms:
            self._swept_at = now
            self.sweep(now)

    def sweep(self, now_ms: int) -> int:
        """Delete what finished batches no longer need; returns how many batches expired.

        A finished batch's diagnostics go once `diagnostics_ms` have passed; before that, what
        a crash may have left (staged parts, the journal, a successful batch's inputs) goes.
        A batch left `loading` (never completed) for as long is aborted, its files deleted, and
        counted as expired.
        """
        root = self._layout.batches
        if not root.is_dir():
            return 0
        expired = 0
        for entry in os.scandir(root):
            if not entry.is_dir() or entry.name in self._journals:
                continue
            try:
                batch = self._catalog.batch(entry.name)
            except NotFound:
                continue
            if batch.status == "loading":
                expired += self._abandon(batch, now_ms)
                continue
            if batch.status not in FINAL_STATUSES:
                continue
            finished = batch.completed_ms or batch.updated_ms or batch.created_ms
            if now_ms - finished >= self._options.diagnostics_ms:
                self._files.remove(batch.id)
                expired += 1
                continue
            self._drop_work(batch.id)
            if batch.status != "failed":
                self._files.remove_inputs(batch.id)
        return expired

    def _abandon(self, batch: Batch, now_ms: int) -> int:
        """Abort a batch left loading past `diagnostics_ms`; 1 if it was, else 0."""
        if now_ms - (batch.updated_ms or batch.created_ms) < self._options.diagnostics_ms:
            return 0
        with self._files.locked(batch.id):  # an upload taking its place waits, then is refused
            aborted = dataclasses.replace(
                batch, status="aborted", completed_ms=now_ms, updated_ms=now_ms
            )
            if not self._catalog.change_batch(aborted, expect=("loading",)):
                return 0
            self._files.remove_inputs(batch.id)
        log.info("batch %s was never completed; aborted and its files deleted", batch.id)
        return 1


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


def _table_version(path: Path) -> int:
    """The newest version of the Delta table at `path`, read from its log's file names."""
    newest = -1
    try:
        with os.scandir(path / "_delta_log") as entries:
            for entry in entries:
                name = entry.name
                if len(name) == 25 and name.endswith(".json") and name[:20].isdigit():
                    newest = max(newest, int(name[:20]))
    except FileNotFoundError:
        return -1
    return newest
