"""The ledger: a request's chunks and batches settle into done or failed, figures add up."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from koppla.connector.history.ledger import Ledger
from koppla.connector.history.progress import progress
from koppla.connector.history.request import SyncPlan

PLAN = SyncPlan(date(2024, 1, 1), date(2026, 1, 1), {"base": "ds-a", "eu": "ds-b"})


def test_a_request_is_done_once_every_batch_of_every_chunk_succeeded(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "h.sqlite")
    request = ledger.add_request("r1", PLAN)
    chunks = ledger.add_chunks(request.id, [(1, 40, 30), (41, 90, 30)])
    assert [c.no for c in chunks] == [1, 2]
    assert ledger.request("r1").produced_after == 90
    assert [c.no for c in ledger.unpublished("r1")] == [1, 2]
    ledger.mark_published("r1", [1, 2])
    ledger.mark_produced("r1")
    assert ledger.request("r1").status == "running"

    for no in (1, 2):
        assert ledger.begin_attempt("r1", no) == 1
        for dataset in ("ds-a", "ds-b"):
            ledger.add_batch("r1", no, dataset, f"b{no}{dataset}")
            ledger.mark_batch_completed("r1", no, dataset, 50)
        ledger.mark_sent("r1", no, events=100, failed_orders=1 if no == 1 else 0)
    ledger.order_errors("r1", [(7, "sales_order.state", "order 7: unknown state")])
    assert ledger.request("r1").status == "running"  # batches not processed yet

    pending = ledger.pending_batches("r1")
    assert len(pending) == 4
    for batch in pending:
        ledger.settle_batch(batch, "success", 49, 1)
    finished = ledger.request("r1")
    assert finished.status == "done" and finished.finished_ms is not None
    counts = ledger.counts("r1")
    assert (counts.orders_found, counts.orders_done, counts.orders_failed) == (60, 59, 1)
    assert (counts.batches, counts.batches_succeeded, counts.rows_failed) == (4, 4, 4)
    assert counts.events == 200
    shown = progress(ledger, "r1").as_json()
    assert shown["status"] == "done" and shown["orders"] == {"found": 60, "done": 59, "failed": 1}
    assert shown["secondsLeft"] == 0.0
    assert ledger.failed_orders("r1") == [(7, "sales_order.state", "order 7: unknown state")]
    ledger.close()


def test_a_failed_chunk_fails_the_request_with_its_reason(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "h.sqlite")
    ledger.add_request("r2", PLAN)
    ledger.add_chunks("r2", [(1, 10, 10), (11, 20, 10)])
    ledger.mark_produced("r2")
    ledger.mark_sent("r2", 1, events=0, failed_orders=0)  # a chunk with no batch is done at once
    ledger.mark_chunk_failed("r2", 2, "Unavailable: platform answered 503")
    assert ledger.request("r2").status == "failed"
    assert ledger.chunk_errors("r2") == [(2, "Unavailable: platform answered 503")]
    counts = ledger.counts("r2")
    assert (counts.orders_done, counts.orders_failed) == (10, 10)
    ledger.close()


def test_a_request_with_no_orders_is_done_when_produced(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "h.sqlite")
    ledger.add_request("r3", PLAN)
    ledger.mark_produced("r3")
    assert ledger.request("r3").status == "done"
    ledger.close()


def test_the_first_batch_recorded_for_a_chunk_wins(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "h.sqlite")
    ledger.add_request("r4", PLAN)
    ledger.add_chunks("r4", [(1, 10, 10)])
    assert ledger.add_batch("r4", 1, "ds-a", "first").batch_id == "first"
    assert ledger.add_batch("r4", 1, "ds-a", "second").batch_id == "first"
    ledger.forget_batch(ledger.batches_of("r4", 1)["ds-a"])
    assert ledger.add_batch("r4", 1, "ds-a", "third").batch_id == "third"
    ledger.close()


def test_a_chunk_every_consumer_died_on_is_given_up_once_quiet(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "h.sqlite")
    ledger.add_request("r5", PLAN)
    ledger.add_chunks("r5", [(1, 10, 10), (11, 20, 10)])
    ledger.mark_produced("r5")
    for _ in range(3):
        ledger.begin_attempt("r5", 1)
    ledger.begin_attempt("r5", 2)
    assert ledger.fail_abandoned("r5", max_attempts=3, quiet_ms=60_000) == 0  # not quiet yet
    assert ledger.fail_abandoned("r5", max_attempts=3, quiet_ms=-1) == 1
    assert ledger.chunks_by_status("r5") == {"failed": 1, "queued": 1}
    assert "given up after 3 deliveries" in ledger.chunk_errors("r5")[0][1]
    ledger.close()
