"""The pipeline: drains the spool, validates, routes to datasets, stores, records batches.

For each chunk of a spool stream it commits, per dataset, the valid new events (dedupe by `_id`)
and, to the quarantine, the invalid ones with every problem found. Each commit carries the chunk's
spool position as a Delta app-transaction version, so a crash at any point replays into exactly
what was missing. The stream cursor moves only after every commit of the chunk.

Each step also moves completed ingestion batches on by a bounded amount (`BatchIngestor`), with
the same Delta store and the same dedupe index of each dataset, so the pipeline stays the one
writer of every dataset and streaming and batches never race on an `_id`.

No record can stop the stream: whatever goes wrong with one record (unreadable, wrong shape, too
deep to serialize, invalid, unconvertible, its dataset's schema gone, code `schema`, or an
exception nobody foresaw, code `internal`) sends that record to the quarantine with the reason,
and the rest of the chunk lands. Only a failure of the stream itself (the spool, a Delta commit,
the catalog) raises out of `step`; the pipeline process then records it in its heartbeat and
exits non-zero, and its supervisor restarts it with backoff. A restart replays the chunk exactly
once.

Schemas are looked up in the registry for every chunk, and the datasets in the catalog at every
step, so a schema that grows (or a dataset moved onto another schema) takes effect within a
step: the pipeline, the one writer of every dataset, adds the new fields to the dataset's table
(`DeltaStore.ensure_dataset`) before it appends, even when no record is waiting, so SQL shows
the new columns at once. Older rows read them as null.

The custom attributes of each record that reaches validation are counted and, after the
commits that store or quarantine the record, recorded (`AttributeLog`), best effort.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from koppla.core import clock, codec, envelope, ids
from koppla.core.errors import NotFound
from koppla.core.layout import Layout
from koppla.platform.batches.ingest import BatchIngestor, BatchOptions
from koppla.platform.catalog.models import Batch, BatchStatus, Dataset, Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets import quarantine
from koppla.platform.datasets.attribute_log import AttributeLog
from koppla.platform.datasets.dedupe import DAY_MS, DedupeIndex, IdIndex
from koppla.platform.datasets.location import TableLocation
from koppla.platform.datasets.storage import DeltaStore
from koppla.platform.datasets.tables import rows_table, stored_row
from koppla.platform.pipeline.cursor import Cursors
from koppla.platform.pipeline.gc_pause import paused_gc
from koppla.platform.pipeline.incoming import Incoming, Problem, unpack, unreadable
from koppla.platform.pipeline.shared import SharedCursors, SharedState
from koppla.platform.schemas.observed import Tally
from koppla.platform.spool.ports import LocalSpoolSource, SpoolSource
from koppla.platform.spool.position import Position
from koppla.xdm.event_types import validate_event
from koppla.xdm.registry import SchemaRegistry
from koppla.xdm.types import Schema
from koppla.xdm.validation import Validated

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Marks:
    """How far a dataset's share of a chunk is already committed, and its tally of attributes.

    `done` is the last version the dataset's table holds of the chunk's stream, `q_done` the
    quarantine's: a replayed record at or below them was counted before.
    """

    done: int
    q_done: int
    tally: Tally
    owner: str
    """Who claims the records' ids: the app transaction id of the chunk's stream."""


@dataclass
class _Routed:
    """Events of one chunk headed to one dataset, each with its spool position."""

    dataset: Dataset | None
    items: list[tuple[int, Incoming]] = field(default_factory=list)


class Pipeline:
    """Moves spooled requests into datasets; one instance per process."""

    def __init__(
        self,
        layout: Layout,
        catalog: Catalog,
        registry: SchemaRegistry,
        *,
        max_events: int = 20_000,
        flush_ms: int = 200,
        compact_every: int = 200,
        dedupe_window_days: float = 7.0,
        source: SpoolSource | None = None,
        batch_options: BatchOptions | None = None,
        shared: SharedState | None = None,
        location: TableLocation | None = None,
        retention_hours: int = 1,
    ) -> None:
        self._layout = layout
        self._catalog = catalog
        self._registry = registry
        self._max_events = max_events
        self._flush_s = flush_ms / 1000
        self._tables = location or TableLocation.local(layout.datasets)
        self._store = DeltaStore(
            compact_every=compact_every,
            storage_options=self._tables.storage_options(),
            retention_hours=retention_hours,
            # one worker of several compacts (the others would only redo its work)
            may_upkeep=lambda _table: shared is None or shared.leases.maintenance,
        )
        self._shared = shared
        self._cursors: Cursors | SharedCursors = (
            shared.cursors if shared else Cursors(layout.pipeline_state / "cursors.json")
        )
        self._source = source or LocalSpoolSource(layout.spool)
        self._dedupe: dict[str, IdIndex] = {}
        self._dedupe_window_ms = round(dedupe_window_days * DAY_MS)
        self._store.ensure(self._tables.quarantine(), quarantine.SCHEMA)
        self._recovered = False
        self._attributes = AttributeLog(layout.attributes)
        self._unfollowed: dict[str, Schema] = {}
        """Datasets whose table could not take their schema's new fields: the schema tried."""
        self._batches = BatchIngestor(
            layout,
            catalog,
            registry,
            store=self._store,
            dedupe=self._dedupe_index,
            options=batch_options,
            attributes=self._attributes,
            location=self._tables,
        )

    @property
    def batches(self) -> BatchIngestor:
        """The pipeline's batch ingestion (its `sweep` runs hourly from `step`)."""
        return self._batches

    def run(self, stop: threading.Event, on_progress: Callable[[], None] | None = None) -> None:
        """Drain the spool until `stop` is set, committing at most every `flush_ms`.

        `on_progress` is called after every step that finished (it stored what was waiting, or
        found nothing); a failure of the stream itself raises.
        """
        while not stop.is_set():
            began = clock.monotonic()
            processed = self.step()
            if on_progress is not None:
                on_progress()
            if processed < self._max_events and not self._batches.busy:
                stop.wait(max(0.0, self._flush_s - (clock.monotonic() - began)))

    def step(self) -> int:
        """One pass over every spool stream, then a bounded share of batch ingestion work.

        Returns the number of events and batch rows handled. The first step records, before
        anything is drained, the batch commits a crash left unrecorded (`BatchIngestor.recover`).
        The cyclic garbage collector is held off meanwhile: a step's objects die by reference
        count (`gc_pause`).
        """
        with paused_gc():
            return self._step()

    def _step(self) -> int:
        if self._shared is not None:  # a worker among several: only the partitions it holds
            self._shared.leases.refresh()
        maintains = self._shared is None or self._shared.leases.maintenance
        if not self._recovered and maintains:
            self._batches.recover()
            self._recovered = True
        datastreams = {s.id: s for s in self._catalog.datastreams()}
        datasets = {d.id: d for d in self._catalog.datasets()}
        self._registry.refresh()  # a schema changed a moment ago applies to this step's records
        self._follow_schemas(datasets.values())
        total = 0
        for stream in self._source.streams():
            total += self._drain(stream, datastreams, datasets)
        if not maintains:
            return total  # another worker moves the ingestion batches on
        return total + self._batches.advance()

    def _follow_schemas(self, datasets: Iterable[Dataset]) -> None:
        """Give each dataset's table the fields its schema gained (a dictionary lookup per
        dataset while nothing changed).

        A table that cannot take them is logged once per schema version and left as it is;
        its records then meet the same problem when they are stored.
        """
        for dataset in datasets:
            try:
                schema = self._registry.get(dataset.schema_id)
            except NotFound:
                continue  # its records are quarantined (`_store_group`)
            if self._unfollowed.get(dataset.id) is schema:
                continue
            try:
                added = self._store.ensure_dataset(self._tables.table(dataset.id), schema)
            except Exception:  # this dataset's trouble; the others go on
                log.exception("dataset %s: its table could not follow its schema", dataset.id)
                self._unfollowed[dataset.id] = schema
                continue
            if added:
                log.info("dataset %s: columns %s added", dataset.name, ", ".join(added))

    def _drain(
        self, stream: str, datastreams: dict[str, Datastream], datasets: dict[str, Dataset]
    ) -> int:
        cursor = self._cursors.get(stream)
        result = self._source.read(stream, cursor)
        chunk: list[tuple[Position, list[Incoming]]] = []
        count = 0
        for record in result.records:
            chunk.append((record.end, self._unpack(stream, record.payload)))
            count += len(chunk[-1][1])
            if count >= self._max_events:
                break
        if chunk and self._shared is not None and not self._shared.leases.confirm(stream):
            return 0  # the partition is no longer this worker's: its new holder stores it
        if chunk:
            self._commit(stream, chunk, datastreams, datasets)
        done = len(chunk) == len(result.records)
        next_position = result.next if done else chunk[-1][0]
        self._cursors.set(stream, next_position)
        self._source.release(stream, next_position)
        return count

    @staticmethod
    def _unpack(stream: str, payload: bytes) -> list[Incoming]:
        """The events of one spooled record; an unreadable one becomes one for the quarantine."""
        try:
            return unpack(envelope.decode(payload))
        except Exception as error:  # garbage in the spool must not stop it
            log.error("spool %s: unreadable record quarantined: %s", stream, error)
            return [unreadable(payload, f"{type(error).__name__}: {error}", clock.now())]

    def _commit(
        self,
        stream: str,
        chunk: list[tuple[Position, list[Incoming]]],
        datastreams: dict[str, Datastream],
        datasets: dict[str, Dataset],
    ) -> None:
        app_id = f"koppla-pipeline/{stream}"
        version = chunk[-1][0].pack()
        routed = self._route(chunk, datastreams, datasets)
        q_path = self._tables.quarantine()
        q_done = self._store.committed_version(q_path, app_id)
        quarantined: list[tuple[int, quarantine.QuarantinedRecord]] = []
        tallies: list[tuple[str, Tally]] = []
        for dataset_id, group in routed.items():
            tally = None if group.dataset is None else self._attributes.tally(group.dataset)
            held = self._store_group(dataset_id, group, app_id, version, stream, q_done, tally)
            quarantined.extend(held)
            if tally:
                tallies.append((dataset_id, tally))
        fresh = [record for position, record in quarantined if position > q_done]
        if fresh:
            self._store.append(
                q_path,
                quarantine.to_arrow(fresh),
                app_id=app_id,
                version=version,
                metadata={"koppla.source": stream},
                expected=q_done,
            )
            self._count_quarantined(fresh)
        for dataset_id, tally in tallies:
            self._attributes.record(dataset_id, tally)

    def _count_quarantined(self, records: list[quarantine.QuarantinedRecord]) -> None:
        """Add newly quarantined records to their datastreams' `quarantined` counters.

        Called right after the quarantine commit and only for records that commit added (the
        app-transaction version says which), so a replay never counts a record twice; a crash
        between the commit and this call undercounts by at most one chunk.
        """
        per_stream = Counter(r.datastream_id for r in records if r.datastream_id)
        for datastream_id, count in per_stream.items():
            self._catalog.add_to_counter(datastream_id, "quarantined", count)

    def _route(
        self,
        chunk: list[tuple[Position, list[Incoming]]],
        datastreams: dict[str, Datastream],
        datasets: dict[str, Dataset],
    ) -> dict[str, _Routed]:
        routed: dict[str, _Routed] = defaultdict(lambda: _Routed(None))
        by_name = {d.name: d for d in datasets.values()}
        for position, events in chunk:
            for event in events:
                stream = datastreams.get(event.datastream_id)
                target: Dataset | None = None
                if stream is not None:
                    target = _target(event, stream, datasets, by_name)
                dataset_id = target.id if target else ""
                group = routed[dataset_id]
                group.dataset = target
                group.items.append((position.pack(), event))
        return routed

    def _ensure(self, path: str, schema: Schema) -> str | None:
        """None once the table at `path` has the columns of `schema`; else why it cannot.

        Tried twice (another writer's commit may get in the way once). Disk trouble
        (`OSError`) is raised: the step fails and is tried again. Anything else the table
        refuses twice is this dataset's alone, and must not hold up the other datasets.
        """
        for attempt in (1, 2):
            try:
                self._store.ensure_dataset(path, schema)
                return None
            except OSError:
                raise
            except Exception as error:
                if attempt == 2:
                    log.exception("the table at %s cannot take schema %s", path, schema.id)
                    reason = str(error)
                    return reason if len(reason) <= 300 else reason[:300] + "…"
        return None

    def _store_group(
        self,
        dataset_id: str,
        group: _Routed,
        app_id: str,
        version: int,
        source: str,
        q_done: int,
        tally: Tally | None,
    ) -> list[tuple[int, quarantine.QuarantinedRecord]]:
        """Store one dataset's share of a chunk; returns what goes to the quarantine.

        The custom attributes of the records this commit (or the quarantine commit after it,
        whose last version was `q_done`) adds are counted into `tally`.
        """
        batch_id = ids.derived_uuid("batch", dataset_id, app_id, str(version)).replace("-", "")
        dataset = group.dataset
        if dataset is None:
            gone = [("", "routing", "the datastream or its dataset no longer exists")]
            return [
                (p, _quarantined(e, "", batch_id, list(e.problems) or gone)) for p, e in group.items
            ]
        try:
            schema = self._registry.get(dataset.schema_id)
        except NotFound:
            lost = [("", "schema", f"the dataset's schema {dataset.schema_id} does not exist")]
            return [
                (p, _quarantined(e, dataset.id, batch_id, list(e.problems) or lost))
                for p, e in group.items
            ]
        path = self._tables.table(dataset.id)
        refused = self._ensure(path, schema)
        if refused is not None:  # this dataset's trouble: its records are kept, the rest go on
            problem = [("", "storage", f"the dataset's table cannot take its schema: {refused}")]
            return [
                (p, _quarantined(e, dataset.id, batch_id, list(e.problems) or problem))
                for p, e in group.items
            ]
        dedupe = self._dedupe_index(dataset.id)
        done = self._store.committed_version(path, app_id)
        replayed = [event.event_id for position, event in group.items if position <= done]
        if replayed:  # a crash came between the Delta commit and what follows it
            dedupe.add(replayed)
            self._finish_batch(batch_id)
        marks = _Marks(done, q_done, Tally("") if tally is None else tally, app_id)
        accepted, rejected = self._check(schema, dataset, group, batch_id, marks, dedupe)
        table, rows, unstorable = _to_table(schema, accepted)
        dedupe.release([event.event_id for _, event, _ in unstorable], owner=app_id)
        for position, event, reason in unstorable:
            problem = [("", "storage", f"the record could not be stored: {reason}")]
            rejected.append((position, _quarantined(event, dataset.id, batch_id, problem)))
        failed = sum(1 for position, _ in rejected if position > done)
        if not rows and not failed:
            return rejected
        batch = Batch(
            id=batch_id,
            dataset_id=dataset.id,
            status="loading",
            records=len(rows),
            failed_records=failed,
            created_ms=clock.now_ms(),
            completed_ms=None,
            source=source,
        )
        self._catalog.record_batch(batch)
        if table is not None and rows:
            metadata = {"koppla.batchId": batch_id, "koppla.source": source}
            self._store.append(
                path, table, app_id=app_id, version=version, metadata=metadata, expected=done
            )
            dedupe.add(row["_id"] for row in rows)
        self._finish_batch(batch_id)
        return rejected

    def _check(
        self,
        schema: Schema,
        dataset: Dataset,
        group: _Routed,
        batch_id: str,
        marks: _Marks,
        dedupe: IdIndex,
    ) -> tuple[
        list[tuple[int, Incoming, dict[str, Any]]], list[tuple[int, quarantine.QuarantinedRecord]]
    ]:
        """Validate every event: the new, unseen valid ones as rows, the invalid ones held.

        The custom attributes of each event validated are counted into `marks.tally` when its
        commit is still to come (not a replay, not a duplicate).
        """
        valid: list[tuple[int, Incoming, Validated]] = []
        rejected: list[tuple[int, quarantine.QuarantinedRecord]] = []
        done, tally = marks.done, marks.tally
        for position, event in group.items:
            if event.problems:
                held = _quarantined(event, dataset.id, batch_id, list(event.problems))
                rejected.append((position, held))
                continue
            try:
                outcome = validate_event(schema, event.xdm)
                if outcome.issues:
                    problems = [(i.path, i.code, i.message) for i in outcome.issues]
                    event_type = outcome.record.get("eventType", event.xdm.get("eventType"))
                    held = _quarantined(event, dataset.id, batch_id, problems, event_type)
                    rejected.append((position, held))
                    if position > marks.q_done:
                        tally.add(event.xdm)
                    continue
            except Exception as error:  # one record must never stop the stream
                rejected.append((position, _internal(event, dataset.id, batch_id, error)))
                continue
            if position > done:
                valid.append((position, event, outcome))
        accepted: list[tuple[int, Incoming, dict[str, Any]]] = []
        seen = dedupe.taken([(e.event_id, p) for p, e, _ in valid], owner=marks.owner, done=done)
        for position, event, outcome in valid:
            if event.event_id in seen:
                continue
            try:
                tally.add(event.xdm)
                row = stored_row(outcome, batch_id)
            except Exception as error:  # one record must never stop the stream
                rejected.append((position, _internal(event, dataset.id, batch_id, error)))
                dedupe.release([event.event_id], owner=marks.owner)  # claimed, not stored
                continue
            seen.add(event.event_id)
            accepted.append((position, event, row))
        return accepted, rejected

    def _finish_batch(self, batch_id: str) -> None:
        """Mark a `loading` batch as done: `success` if any record landed, else `failed`."""
        try:
            batch = self._catalog.batch(batch_id)
        except NotFound:
            return
        if batch.status == "loading":
            status: BatchStatus = (
                "success" if batch.records or not batch.failed_records else "failed"
            )
            self._catalog.record_batch(
                dataclasses.replace(batch, status=status, completed_ms=clock.now_ms())
            )

    def _dedupe_index(self, dataset_id: str) -> IdIndex:
        index = self._dedupe.get(dataset_id)
        if index is None and self._shared is not None:
            index = self._dedupe[dataset_id] = self._shared.dedupe(dataset_id)
        if index is None:
            table = self._tables.table(dataset_id)
            index = DedupeIndex(
                self._layout.pipeline_state / "dedupe" / f"{dataset_id}.sqlite",
                lookup=lambda event_ids: self._store.existing_ids(table, event_ids),
                window_ms=self._dedupe_window_ms,
            )
            self._dedupe[dataset_id] = index
        return index

    def close(self) -> None:
        """Close the batch journals, the dedupe indexes and the record of attributes."""
        self._batches.close()
        self._attributes.close()
        for index in self._dedupe.values():
            index.close()


def _target(
    event: Incoming, stream: Datastream, datasets: dict[str, Dataset], by_name: dict[str, Dataset]
) -> Dataset | None:
    """The dataset an event goes to: an override where allowed, else the datastream's dataset.

    Authenticated (streaming-ingestion) requests may name any dataset of the datastream's
    organization and sandbox; the public edge may only switch between the datastream's own
    event and profile datasets.
    """
    default = datasets.get(stream.event_dataset_id)
    if not event.dataset_override:
        return default
    chosen = datasets.get(event.dataset_override) or by_name.get(event.dataset_override)
    if chosen is None:
        return None
    own = {stream.event_dataset_id, stream.profile_dataset_id}
    same_org = chosen.org_id == stream.org_id and chosen.sandbox == stream.sandbox
    return chosen if (event.authenticated and same_org) or chosen.id in own else default


def _to_table(
    schema: Schema, accepted: list[tuple[int, Incoming, dict[str, Any]]]
) -> tuple[pa.Table | None, list[dict[str, Any]], list[tuple[int, Incoming, str]]]:
    """The Arrow table of the accepted rows, the rows in it, and the rows that cannot be converted.

    A row that cannot be converted is handed back for the quarantine (see `rows_table`), so
    one bad record never stops the valid ones (nor, by crashing the pipeline on every retry,
    everything after it).
    """
    table, good, bad = rows_table(schema, [row for _, _, row in accepted])
    unstorable = [(accepted[i][0], accepted[i][1], reason) for i, reason in bad]
    return table, [accepted[i][2] for i in good], unstorable


def _internal(
    event: Incoming, dataset_id: str, batch_id: str, error: Exception
) -> quarantine.QuarantinedRecord:
    """A record whose handling raised something unforeseen, for the quarantine."""
    log.error("record %s quarantined after an internal error", event.event_id, exc_info=error)
    problem = ("", "internal", f"{type(error).__name__}: {error}")
    return _quarantined(event, dataset_id, batch_id, [problem])


def _quarantined(
    event: Incoming,
    dataset_id: str,
    batch_id: str,
    problems: list[Problem],
    event_type: Any = None,
) -> quarantine.QuarantinedRecord:
    """`event` for the quarantine: the record as sent (or as near as can be kept) and why."""
    event_type = event_type or event.xdm.get("eventType")
    record = event.raw
    if record is None:
        try:
            record = codec.dumps(event.xdm).decode()
        except TypeError as error:  # unserializable: keep the problems, say why the text is gone
            record = ""
            problems = [*problems, ("", "record", f"the record cannot be serialized: {error}")]
    return quarantine.QuarantinedRecord(
        dataset_id=dataset_id,
        batch_id=batch_id,
        datastream_id=event.datastream_id,
        request_id=event.request_id,
        event_id=event.event_id,
        event_type=event_type if isinstance(event_type, str) else None,
        received_at=event.received_at,
        errors=tuple(problems),
        record=record,
    )
