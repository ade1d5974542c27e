"""The quarantine budget: a rolling hour of the pipeline's `quarantined` counter, read cheaply."""

from __future__ import annotations

from koppla.platform.catalog.store import Catalog
from koppla.platform.edge.budget import QUARANTINED, QuarantineBudget
from tests.platform.edge.fakes import FakeClock


def test_over_the_limit_within_the_hour(catalog: Catalog, fake_clock: FakeClock) -> None:
    budget = QuarantineBudget(catalog, hourly_limit=10)
    catalog.add_to_counter("s1", QUARANTINED, 500)  # before the edge first looked: not counted
    assert not budget.exceeded("s1")
    catalog.add_to_counter("s1", QUARANTINED, 11)
    assert not budget.exceeded("s1")  # read again only after a couple of seconds
    fake_clock.advance(3)
    assert budget.added_last_hour("s1") == 11
    assert budget.exceeded("s1")
    assert not budget.exceeded("s2")


def test_what_was_added_over_an_hour_ago_no_longer_counts(
    catalog: Catalog, fake_clock: FakeClock
) -> None:
    budget = QuarantineBudget(catalog, hourly_limit=10)
    assert budget.added_last_hour("s1") == 0
    for _ in range(30):  # 11 records a minute for half an hour
        catalog.add_to_counter("s1", QUARANTINED, 11)
        fake_clock.advance(60)
        budget.added_last_hour("s1")
    assert budget.exceeded("s1")
    for _ in range(61):  # then an hour of nothing
        fake_clock.advance(60)
        budget.added_last_hour("s1")
    assert budget.added_last_hour("s1") == 0
    assert not budget.exceeded("s1")


def test_a_limit_of_zero_is_no_limit(catalog: Catalog, fake_clock: FakeClock) -> None:
    budget = QuarantineBudget(catalog, hourly_limit=0)
    budget.exceeded("s1")
    catalog.add_to_counter("s1", QUARANTINED, 10**6)
    fake_clock.advance(3)
    assert not budget.exceeded("s1")


def test_refused_events_are_counted(catalog: Catalog) -> None:
    budget = QuarantineBudget(catalog, hourly_limit=10)
    budget.count_refused("s1", 3)
    budget.count_refused("s1", 2)
    assert catalog.counters("s1") == {"refusedByQuarantineLimit": 5}
