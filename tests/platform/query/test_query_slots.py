"""Query slots: a query that finds every slot taken for the whole wait is turned away."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from koppla.core.errors import is_retryable
from koppla.platform.query.engine import QueryEngine
from koppla.platform.query.errors import QueryBusy, QueryTimeout
from koppla.platform.query.slots import QuerySlots


def test_a_free_slot_is_taken_and_given_back() -> None:
    slots = QuerySlots(1, wait_s=0.01)
    with slots.hold():
        pass
    with slots.hold():
        pass


def test_no_free_slot_means_busy_with_a_retry_hint() -> None:
    slots = QuerySlots(2, wait_s=0.05)
    busy = r"too many queries at once: all 2 query slots \(query_max_concurrent\)"
    with slots.hold(), slots.hold(), pytest.raises(QueryBusy, match=busy) as caught:  # noqa: SIM117
        with slots.hold():
            pass
    assert caught.value.retry_after_s == 1
    assert is_retryable(caught.value)


def test_a_slot_freed_during_the_wait_is_used() -> None:
    slots = QuerySlots(1, wait_s=10)
    taken = threading.Event()

    def hold_briefly() -> None:
        with slots.hold():
            taken.set()
            time.sleep(0.1)

    worker = threading.Thread(target=hold_briefly)
    worker.start()
    taken.wait()
    with slots.hold():
        pass
    worker.join()


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        QuerySlots(0, wait_s=1)


def test_the_engine_runs_at_most_max_concurrent_queries(events_path: Path) -> None:
    tables = {"demo_events": str(events_path)}
    with QueryEngine(lambda: tables, timeout_s=2, max_concurrent=1, slot_wait_s=0.05) as engine:
        outcome: list[BaseException] = []

        def long_query() -> None:
            try:
                engine.run("SELECT count(*) FROM range(100000000000)")
            except QueryTimeout as exc:
                outcome.append(exc)

        worker = threading.Thread(target=long_query)
        worker.start()
        busy = None
        while worker.is_alive() and busy is None:
            try:
                engine.run("SELECT 1")
            except QueryBusy as exc:
                busy = exc
        worker.join()
        assert busy is not None
        assert str(busy).startswith("too many queries at once: all 1 query slots")
        assert isinstance(outcome[0], QueryTimeout)
        assert engine.run("SELECT count(*) FROM demo_events").rows == [(3,)]


def test_one_organization_leaves_a_slot_for_the_others() -> None:
    slots = QuerySlots(3, wait_s=0.05)
    with slots.hold(("A", "prod")), slots.hold(("A", "prod")):
        busy = pytest.raises(QueryBusy, match="this organization's 2 query slots")
        with busy, slots.hold(("A", "prod")):
            pass
        with slots.hold(("B", "prod")):  # the third slot is still there for another tenant
            pass


def test_a_released_slot_is_free_before_its_block_ends() -> None:
    slots = QuerySlots(1, wait_s=0.05)
    with slots.hold() as slot:
        slot.release()
        slot.release()  # twice is harmless
        with slots.hold():
            pass
