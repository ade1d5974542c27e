"""The consent book: only opt-outs are kept, at most so many, and every process sees changes."""

from __future__ import annotations

import pytest

from koppla.platform.catalog import store
from koppla.platform.catalog.store import Catalog
from koppla.platform.edge.consent import ConsentBook
from tests.platform.edge.fakes import FakeClock

ORG = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"


def test_in_stores_nothing_and_out_is_remembered(catalog: Catalog, fake_clock: FakeClock) -> None:
    book = ConsentBook(catalog)
    for n in range(100):
        book.record(ORG, f"visitor-{n}", "in")
    book.record(ORG, "leaver", "out")
    assert catalog.consents_out() == {(ORG, "leaver")}
    assert book.is_out(ORG, "leaver", None)
    assert not book.is_out(ORG, "visitor-1", None)
    assert book.is_out(ORG, "visitor-1", "general=out")  # the cookie alone is enough
    book.record(ORG, "leaver", "in")
    assert catalog.consents_out() == set()
    assert not book.is_out(ORG, "leaver", None)


def test_opt_outs_are_capped_oldest_first(catalog: Catalog, fake_clock: FakeClock) -> None:
    book = ConsentBook(catalog, max_opt_outs=3)
    for n in range(5):
        book.record(ORG, f"v{n}", "out")
        fake_clock.advance(0.01)
    assert catalog.consents_out() == {(ORG, "v2"), (ORG, "v3"), (ORG, "v4")}
    fake_clock.advance(3)
    assert not book.is_out(ORG, "v0", None)
    assert book.is_out(ORG, "v4", None)


def test_another_process_sees_choices_within_a_couple_of_seconds(
    catalog: Catalog, fake_clock: FakeClock
) -> None:
    here, there = ConsentBook(catalog), ConsentBook(catalog)
    here.record(ORG, "early", "out")
    assert there.is_out(ORG, "early", None)  # the first look loads everything
    here.record(ORG, "late", "out")
    here.record(ORG, "early", "in")
    assert not there.is_out(ORG, "late", None)
    fake_clock.advance(3)
    assert there.is_out(ORG, "late", None)
    assert not there.is_out(ORG, "early", None)


def test_a_process_behind_the_change_log_reloads_everything(
    catalog: Catalog, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "CONSENT_CHANGES_KEPT", 2)
    here, there = ConsentBook(catalog), ConsentBook(catalog)
    assert not there.is_out(ORG, "a", None)
    for name in ("a", "b", "c", "d"):
        here.record(ORG, name, "out")
    here.record(ORG, "a", "in")
    fake_clock.advance(3)
    assert [there.is_out(ORG, name, None) for name in "abcd"] == [False, True, True, True]
