"""The dedupe index: exact within its window, still right for ids long past it, and bounded."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from koppla.platform.datasets.dedupe import DAY_MS, DedupeIndex, id_key


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.ms


class Dataset:
    """Stands in for the dataset's `_id` column, and counts how often it is searched."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.searched: list[list[str]] = []

    def lookup(self, event_ids: list[str]) -> set[str]:
        self.searched.append(sorted(event_ids))
        return self.ids & set(event_ids)


def uuids(count: int, seed: str) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_OID, f"{seed}-{n}")) for n in range(count)]


def index(path: Path, dataset: Dataset, now: Clock, window_days: float = 7) -> DedupeIndex:
    return DedupeIndex(path, lookup=dataset.lookup, window_ms=round(window_days * DAY_MS), now=now)


def store(ids: DedupeIndex, dataset: Dataset, event_ids: list[str]) -> None:
    """What the pipeline does: commit to the dataset, then add to the index."""
    dataset.ids.update(event_ids)
    ids.add(event_ids)


def test_ids_older_than_the_window_are_still_recognised(tmp_path: Path) -> None:
    dataset, now = Dataset(), Clock()
    ids = index(tmp_path / "d.sqlite", dataset, now)
    old_orders = uuids(100, "order")
    store(ids, dataset, old_orders)
    now.ms += 5 * 365 * DAY_MS  # five years on
    assert ids.prune() == 100
    assert ids.recent() == 0
    ids.close()

    reopened = index(tmp_path / "d.sqlite", dataset, now)
    fresh = uuids(100, "new")
    assert reopened.seen(old_orders + fresh) == set(old_orders)
    assert dataset.searched == [sorted(old_orders)]  # only the filter's "maybe"s are searched


def test_recent_ids_are_answered_without_searching_the_dataset(tmp_path: Path) -> None:
    dataset, now = Dataset(), Clock()
    ids = index(tmp_path / "d.sqlite", dataset, now)
    recent = [*uuids(50, "r"), "not-a-uuid", "\udcff-lone-surrogate"]
    store(ids, dataset, recent)
    assert ids.seen([*recent, "other"]) == set(recent)
    assert dataset.searched == []


def test_pruning_happens_by_itself_and_keeps_the_index_bounded(tmp_path: Path) -> None:
    dataset, now = Dataset(), Clock()
    bounded = index(tmp_path / "bounded.sqlite", dataset, now, window_days=2)
    unbounded = index(tmp_path / "unbounded.sqlite", Dataset(), now, window_days=10_000)
    for day in range(30):
        batch = uuids(2_000, f"day{day}")
        store(bounded, dataset, batch)
        unbounded.add(batch)
        now.ms += DAY_MS
    assert bounded.recent() <= 3 * 2_000
    assert unbounded.recent() == 30 * 2_000
    assert bounded.nbytes() < unbounded.nbytes() / 3
    every = [i for day in range(30) for i in uuids(2_000, f"day{day}")]
    assert bounded.seen(every) == set(every)


def test_an_index_written_before_ids_had_times_still_knows_its_ids(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = uuids(10, "before")
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE ids (k BLOB PRIMARY KEY) WITHOUT ROWID")
    db.executemany("INSERT INTO ids VALUES (?)", [(uuid.UUID(i).bytes,) for i in old])
    db.commit()
    db.close()
    dataset, now = Dataset(), Clock()
    dataset.ids.update(old)
    ids = index(path, dataset, now)
    assert ids.seen(old) == set(old)
    assert ids.prune() == 10  # they count as old: they move to the filter
    assert ids.seen(old) == set(old)


@given(
    st.one_of(
        st.uuids().map(str),
        st.uuids().map(lambda u: str(u).upper()),
        st.text(alphabet="0123456789abcdefABCDEF-_ {}xz", min_size=30, max_size=40),
        st.text(max_size=40),
    )
)
def test_an_id_key_is_what_uuid_reads_or_the_text_itself(event_id: str) -> None:
    try:
        expected = uuid.UUID(event_id).bytes
    except ValueError:
        expected = event_id.encode("utf-8", "surrogatepass")
    assert id_key(event_id) == expected
