"""Saved queries and query history: per person, per organization, newest runs kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from koppla.core.errors import InvalidInput
from koppla.platform.catalog import saved_queries
from koppla.platform.catalog.saved_queries import Owner, SavedQueries
from koppla.platform.catalog.store import Catalog

ANN = Owner("ANNORG000000000000000000@AdobeOrg", "ann@example.com")
BOB = Owner("ANNORG000000000000000000@AdobeOrg", "bob@example.com")
EVE = Owner("EVEORG000000000000000000@AdobeOrg", "ann@example.com")
SQL = "SELECT * FROM demo_events ORDER BY timestamp DESC"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SavedQueries]:
    """The saved queries of a catalog file that the catalog also uses."""
    catalog = Catalog(tmp_path / "catalog.sqlite")
    found = SavedQueries(tmp_path / "catalog.sqlite")
    yield found
    found.close()
    catalog.close()


def test_a_saved_query_is_listed_by_name_and_only_for_its_owner(store: SavedQueries) -> None:
    store.save(ANN, "recent", SQL, now_ms=1)
    store.save(ANN, "Counts", "SELECT count(*) FROM demo_events", now_ms=2)

    assert [(q.name, q.sql) for q in store.saved(ANN)] == [
        ("Counts", "SELECT count(*) FROM demo_events"),
        ("recent", SQL),
    ]
    assert store.saved(BOB) == []
    assert store.saved(EVE) == []


def test_saving_under_a_name_in_use_replaces_its_sql(store: SavedQueries) -> None:
    first = store.save(ANN, "recent", "SELECT 1", now_ms=1)
    again = store.save(ANN, " recent ", SQL, now_ms=5)

    (kept,) = store.saved(ANN)
    assert kept == again
    assert (kept.id, kept.sql, kept.created_ms, kept.updated_ms) == (first.id, SQL, 1, 5)


def test_delete_removes_only_the_owners_query(store: SavedQueries) -> None:
    mine = store.save(ANN, "recent", SQL)

    assert store.delete(EVE, mine.id) is False
    assert store.delete(BOB, mine.id) is False
    assert store.saved(ANN) == [mine]
    assert store.delete(ANN, mine.id) is True
    assert store.saved(ANN) == []
    assert store.delete(ANN, mine.id) is False


@pytest.mark.parametrize(
    ("name", "sql", "field"),
    [("", SQL, "name"), ("  ", SQL, "name"), ("x" * 101, SQL, "name"), ("recent", " ", "sql")],
)
def test_a_query_without_name_or_sql_is_refused(
    store: SavedQueries, name: str, sql: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        store.save(ANN, name, sql)
    assert refused.value.field == field
    assert store.saved(ANN) == []


def test_history_lists_runs_newest_first_with_their_outcome(store: SavedQueries) -> None:
    store.record(ANN, SQL, rows=3, elapsed_ms=12.5, now_ms=1)
    store.record(ANN, "SELEC 1", rows=0, elapsed_ms=0.4, error="Parser Error", now_ms=2)
    store.record(EVE, "SELECT 2", rows=1, elapsed_ms=1.0, now_ms=3)

    runs = store.history(ANN)
    assert [(r.sql, r.ok, r.rows, r.error, r.at_ms) for r in runs] == [
        ("SELEC 1", False, 0, "Parser Error", 2),
        (SQL, True, 3, "", 1),
    ]
    assert runs[1].elapsed_ms == 12.5
    assert [r.sql for r in store.history(EVE)] == ["SELECT 2"]
    assert store.history(BOB) == []


def test_history_keeps_the_newest_runs(
    store: SavedQueries, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(saved_queries, "HISTORY_KEPT", 3)
    for n in range(5):
        store.record(ANN, f"SELECT {n}", rows=1, elapsed_ms=1.0)
    store.record(BOB, "SELECT 'bob'", rows=1, elapsed_ms=1.0)

    assert [r.sql for r in store.history(ANN)] == ["SELECT 4", "SELECT 3", "SELECT 2"]
    assert [r.sql for r in store.history(ANN, limit=1)] == ["SELECT 4"]
    assert [r.sql for r in store.history(BOB)] == ["SELECT 'bob'"]


def test_saved_queries_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    first = SavedQueries(path)
    first.save(ANN, "recent", SQL)
    first.record(ANN, SQL, rows=1, elapsed_ms=1.0)
    first.close()

    again = SavedQueries(path)
    try:
        assert [q.name for q in again.saved(ANN)] == ["recent"]
        assert [r.sql for r in again.history(ANN)] == [SQL]
    finally:
        again.close()


@pytest.mark.parametrize(
    ("name", "sql", "field"), [("a\udc00", SQL, "name"), ("a", "\ud800", "sql")]
)
def test_text_with_a_lone_surrogate_is_refused_naming_the_field(
    store: SavedQueries, name: str, sql: str, field: str
) -> None:
    with pytest.raises(InvalidInput, match=f"{field} is not valid text") as refused:
        store.save(ANN, name, sql)
    assert refused.value.field == field
    assert store.saved(ANN) == []


def test_history_keeps_a_run_whose_text_has_a_lone_surrogate(store: SavedQueries) -> None:
    """A refused run is still recorded: what has no UTF-8 form is kept as `?`."""
    store.record(ANN, "SELECT '\ud800'", rows=0, elapsed_ms=0, error="bad \udfff text")

    (entry,) = store.history(ANN)
    assert (entry.sql, entry.error, entry.ok) == ("SELECT '?'", "bad ? text", False)
