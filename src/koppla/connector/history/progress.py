"""How far a history sync is: orders found, done and failed; batches; rate and time left.

`refresh(ledger, platform, request_id)` asks the platform for the outcome of every batch the
sync completed but has not seen finish, and records it; `progress(ledger, request_id)` reads
the figures. Both are cheap enough to call every second while someone watches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from koppla.connector.history.batch_client import BatchOutcome, PlatformView
from koppla.connector.history.ledger import Counts, Ledger, SyncRequest
from koppla.connector.retry import Rejected
from koppla.core import clock

log = logging.getLogger("koppla.connector.history")


@dataclass(frozen=True, slots=True)
class Progress:
    """One request's progress, with the derived rate and time left."""

    request: SyncRequest
    counts: Counts
    rate: float | None
    """Orders finished per second since the first chunk was taken, or None before that."""
    eta_s: float | None
    """Seconds left at that rate, or None when unknown."""

    def as_json(self) -> dict[str, Any]:
        """The progress as a JSON-ready dict (the CLI's `--json` and the API)."""
        r, c = self.request, self.counts
        return {
            "id": r.id,
            "status": r.status,
            "from": r.plan.start.isoformat(),
            "to": r.plan.end.isoformat(),
            "datasets": r.plan.datasets,
            "createdMs": r.created_ms,
            "finishedMs": r.finished_ms,
            "produced": r.produced,
            "orders": {"found": c.orders_found, "done": c.orders_done, "failed": c.orders_failed},
            "chunks": {"total": c.chunks, "finished": c.chunks_final},
            "events": c.events,
            "batches": {
                "created": c.batches,
                "succeeded": c.batches_succeeded,
                "failed": c.batches_failed,
                "rowsFailed": c.rows_failed,
            },
            "ordersPerSecond": None if self.rate is None else round(self.rate, 1),
            "secondsLeft": None if self.eta_s is None else round(self.eta_s, 1),
        }


def progress(ledger: Ledger, request_id: str) -> Progress:
    """The figures of `request_id` as the ledger has them now."""
    request = ledger.request(request_id)
    counts = ledger.counts(request_id)
    finished = counts.orders_done + counts.orders_failed
    rate = eta = None
    if counts.first_work_ms is not None and finished:
        end = request.finished_ms or clock.now_ms()
        elapsed = max(0.001, (end - counts.first_work_ms) / 1000)
        rate = finished / elapsed
        left = counts.orders_found - finished
        if request.status in ("done", "failed"):
            eta = 0.0
        elif request.produced:  # before that the number of orders is not known yet
            eta = left / rate
    return Progress(request, counts, rate, eta)


def refresh(ledger: Ledger, platform: PlatformView, request_id: str) -> int:
    """Record the outcome of batches the platform has finished; returns how many finished."""
    finished = 0
    for batch in ledger.pending_batches(request_id):
        try:
            outcome = platform.outcome(batch.batch_id)
        except Rejected as error:
            if error.status != 404:  # credentials refused: try again on the next refresh
                log.warning("history sync %s: batch %s: %s", request_id, batch.batch_id, error)
                continue
            outcome = BatchOutcome("failed", 0, 0)  # the platform does not know the batch
        if outcome.final == "success":
            ledger.settle_batch(batch, "success", outcome.written, outcome.failed)
        elif outcome.final == "failed":
            ledger.settle_batch(batch, "failed", outcome.written, outcome.failed)
        else:
            continue
        finished += 1
    return finished
