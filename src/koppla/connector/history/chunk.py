"""One chunk of a history sync: its orders read set-based, their events, one batch per dataset.

`ChunkWorker.handle(message)` is what a consumer does with a queue message. It is idempotent:

1. a chunk already `sent`, `done` or `failed` is skipped (a redelivered message);
2. the chunk's orders are read with a handful of queries for the whole chunk (`StoreSource.read`),
   each order's whole life is built as back-office events (`events.history`, ids derived from
   website, order, event type and sub-entity, so a re-sync or an overlapping range names every
   event as before and the platform stores it once);
3. per dataset, the batch id is recorded in the ledger before the file is uploaded, so a retry
   re-uses that batch (uploading the same file name replaces the file; COMPLETE may be repeated);
4. the chunk is marked `sent` once every batch was completed; only then is the message acked.

An order whose rows are malformed is recorded with the field and the reason and left out; the
others go on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from koppla.connector import schema as t
from koppla.connector.events import EventContext, history
from koppla.connector.history.batch_client import PlatformBatches
from koppla.connector.history.ledger import ChunkBatch, Ledger, SyncRequest
from koppla.connector.history.message import ChunkMessage
from koppla.connector.settings import ConnectorSettings, WebsiteSettings, reload_settings
from koppla.connector.snapshot import MalformedOrder, build_snapshot
from koppla.connector.source import StoreSource
from koppla.core import codec
from koppla.core.errors import InvalidInput
from koppla.core.memory import cyclic_gc_paused

log = logging.getLogger("koppla.connector.history")


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """What handling one message did."""

    skipped: bool
    orders: int = 0
    events: int = 0
    failed_orders: int = 0


class ChunkWorker:
    """Turns chunk messages into completed platform batches."""

    def __init__(
        self,
        settings: ConnectorSettings,
        ledger: Ledger,
        source: StoreSource,
        platform: PlatformBatches,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._source = source
        self._tenant = settings.tenant
        """The tenant id the custom attributes go under (updated with the settings)."""
        self._platform = platform

    def handle(self, message: ChunkMessage) -> ChunkResult:
        """Send one chunk; raises on trouble worth a retry (the platform, the shop database)."""
        chunk = self._ledger.chunk(message.request_id, message.no)
        if chunk.status != "queued":
            return ChunkResult(skipped=True)
        request = self._ledger.request(message.request_id)
        self._ledger.begin_attempt(chunk.request_id, chunk.no)
        ids = self.order_ids(request, chunk.first_id, chunk.last_id)
        with cyclic_gc_paused():  # thousands of acyclic rows and events: see koppla.core.memory
            by_dataset, errors = self._events(request, ids)
            files = {dataset: split_lines(events) for dataset, events in by_dataset.items()}
        if errors:
            self._ledger.order_errors(request.id, errors)
        made = self._ledger.batches_of(chunk.request_id, chunk.no)
        total = 0
        for dataset_id, events in sorted(by_dataset.items()):
            total += len(events)
            known = made.get(dataset_id)
            if known is not None and known.status != "loading":
                continue
            batch_id = self._batch_to_fill(chunk.request_id, chunk.no, dataset_id, known)
            if batch_id is not None:
                for part, body in enumerate(files[dataset_id]):
                    name = f"chunk-{chunk.no:06d}-{part:02d}.json"
                    self._platform.upload(batch_id, dataset_id, name, body)
                self._platform.complete(batch_id)
            self._ledger.mark_batch_completed(chunk.request_id, chunk.no, dataset_id, len(events))
        self._ledger.mark_sent(chunk.request_id, chunk.no, total, len(errors))
        return ChunkResult(False, len(ids), total, len(errors))

    def _batch_to_fill(
        self, request_id: str, no: int, dataset_id: str, known: ChunkBatch | None
    ) -> str | None:
        """The batch to upload the chunk's file to, or None when the batch recorded by an
        earlier attempt was already completed (that attempt stopped before noting it)."""
        if known is not None:
            status = self._platform.outcome(known.batch_id).status
            if status == "loading":
                return known.batch_id
            if status not in ("aborted", "abandoned"):
                return None  # processing or finished: nothing to send again
            self._ledger.forget_batch(known)  # the platform gave up on it: make a new one
        batch_id = self._platform.create(dataset_id)
        kept = self._ledger.add_batch(request_id, no, dataset_id, batch_id)
        if kept.batch_id == batch_id:
            return batch_id
        log.warning(  # another consumer took the chunk at the same time: fill its batch
            "history chunk %s/%d handled twice; using batch %s", request_id, no, kept.batch_id
        )
        self._platform.abort(batch_id)
        return kept.batch_id

    def order_ids(self, request: SyncRequest, first_id: int, last_id: int) -> list[int]:
        """The ids of the request's orders between `first_id` and `last_id` (one query)."""
        return order_ids_in(self._source, request, first_id, last_id)

    def _websites(self) -> tuple[WebsiteSettings, ...]:
        """The websites as the connector has them now: the settings it started with, updated
        with what it has since read (`connector.toml`, the platform's saved settings), so a
        website saved after the connector started is synced too. The custom attribute settings
        (tenant id, custom columns) are taken up the same way."""
        found = {site.website_code: site for site in self._settings.websites}
        try:
            reloaded = reload_settings(self._settings)
        except InvalidInput as error:
            log.warning("history: the connector settings cannot be read again: %s", error)
            return tuple(found.values())
        if reloaded.admin != self._settings.admin:
            self._tenant = reloaded.tenant
            self._source.use_custom_columns(reloaded.custom_columns)
        found.update((site.website_code, site) for site in reloaded.websites)
        return tuple(found.values())

    def _events(
        self, request: SyncRequest, ids: list[int]
    ) -> tuple[dict[str, list[dict[str, Any]]], list[tuple[int, str | None, str]]]:
        """Each dataset's events for the orders `ids`, and the orders that could not be read."""
        datasets = request.plan.datasets
        contexts = {
            site.website_code: EventContext(
                site.website_code,
                site.environment_id,
                self._settings.redact,
                self._tenant,
            )
            for site in self._websites()
            if site.website_code in datasets
        }
        by_dataset: dict[str, list[dict[str, Any]]] = defaultdict(list)
        errors: list[tuple[int, str | None, str]] = []
        for oid, rows in self._source.read(ids).items():
            ctx = contexts.get(rows.scope.website_code)
            if ctx is None:  # planned for a website this connector has no settings for
                reason = f"website {rows.scope.website_code!r} has no settings in this connector"
                errors.append((oid, "website_code", reason))
                continue
            try:
                events = history(build_snapshot(rows), ctx)
            except MalformedOrder as error:
                errors.append((oid, error.field, str(error)))
                continue
            except (TypeError, ValueError) as error:
                errors.append((oid, None, f"order {oid}: unreadable row: {error}"))
                continue
            by_dataset[datasets[ctx.website_code]].extend(events)
        if errors:
            log.error(
                "history sync %s: %d order(s) left out: %s", request.id, len(errors), errors[0][2]
            )
        return by_dataset, errors


FILE_BYTES = 64 * 1024 * 1024
"""The largest file a chunk uploads (well under the platform's per-file limit); more events
make more files in the same batch."""


def split_lines(events: list[dict[str, Any]], limit: int = FILE_BYTES) -> list[bytes]:
    """`events` as JSON lines, in files of at most `limit` bytes (one event may exceed it)."""
    files: list[bytes] = []
    lines: list[bytes] = []
    size = 0
    for event in events:
        line = codec.dumps(event) + b"\n"
        if lines and size + len(line) > limit:
            files.append(b"".join(lines))
            lines, size = [], 0
        lines.append(line)
        size += len(line)
    if lines:
        files.append(b"".join(lines))
    return files


def order_ids_in(
    source: StoreSource, request: SyncRequest, first_id: int, last_id: int, limit: int | None = None
) -> list[int]:
    """Ids of the request's orders (its websites' stores, created in its range) from `first_id`
    to `last_id`, ascending, at most `limit`."""
    stores = source.store_ids(request.plan.datasets)
    if not stores:
        return []
    order = t.sales_order
    query = (
        select(order.c.entity_id)
        .where(
            order.c.entity_id >= first_id,
            order.c.entity_id <= last_id,
            order.c.store_id.in_(stores),
            order.c.created_at >= request.plan.created_from,
            order.c.created_at < request.plan.created_before,
        )
        .order_by(order.c.entity_id)
    )
    if limit is not None:
        query = query.limit(limit)
    with source.engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(query)]
