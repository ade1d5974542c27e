"""Delta snapshots are cached per path and rebuilt only when a new version was committed."""

from __future__ import annotations

from pathlib import Path

from query_events import append_events, event

from koppla.platform.query.snapshots import DeltaSnapshots


def test_missing_table_has_no_snapshot(tmp_path: Path) -> None:
    assert DeltaSnapshots().latest(str(tmp_path / "nothing")) is None


def test_unchanged_table_reuses_its_dataset(events_path: Path) -> None:
    snapshots = DeltaSnapshots()
    first = snapshots.latest(str(events_path))
    assert first is not None
    assert snapshots.latest(str(events_path)) is first


def test_new_commit_gives_a_new_snapshot(events_path: Path) -> None:
    snapshots = DeltaSnapshots()
    first = snapshots.latest(str(events_path))
    append_events(events_path, [event(7)])
    second = snapshots.latest(str(events_path))
    assert first is not None and second is not None
    assert (first.version, first.row_count) == (1, 3)
    assert (second.version, second.row_count) == (2, 4)
    assert second.dataset.count_rows() == 4
