"""Reading what a Delta table gained: commit by commit, or the whole table when the log is gone."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from koppla.platform.profiles.tail import LogGone, latest_version, read_all, read_since

SCHEMA = pa.schema([("_id", pa.string()), ("n", pa.int64())])


def _append(path: Path, *ids: str) -> None:
    rows = pa.table({"_id": list(ids), "n": list(range(len(ids)))}, schema=SCHEMA)
    write_deltalake(str(path), rows, mode="append")


def _table(tmp_path: Path) -> Path:
    path = tmp_path / "ds"
    path.mkdir()
    DeltaTable.create(str(path), schema=SCHEMA)
    return path


def test_rows_come_commit_by_commit_with_the_commit_time(tmp_path: Path) -> None:
    path = _table(tmp_path)
    _append(path, "a", "b")
    _append(path, "c")

    first = read_since(path, 0)
    again = read_since(path, first.cursor or 0)

    assert [row["_id"] for row, _ in first.rows] == ["a", "b", "c"]
    assert first.cursor == 2 and not first.more
    assert all(stamp > 1_600_000_000_000 for _, stamp in first.rows)
    assert again.rows == [] and again.cursor == 2


def test_a_big_backlog_is_read_in_parts_that_end_on_a_commit(tmp_path: Path) -> None:
    path = _table(tmp_path)
    for n in range(4):
        _append(path, f"x{n}", f"y{n}")

    part = read_since(path, 0, max_rows=3)

    assert part.cursor == 2 and part.more
    assert [row["_id"] for row, _ in part.rows] == ["x0", "y0", "x1", "y1"]


def test_compaction_moves_rows_without_reading_them_again(tmp_path: Path) -> None:
    path = _table(tmp_path)
    _append(path, "a")
    _append(path, "b")
    DeltaTable(str(path)).optimize.compact()

    after = read_since(path, 2)

    assert latest_version(path) == 3
    assert after.rows == [] and after.cursor == 3


def test_a_cleaned_up_commit_asks_for_a_whole_read(tmp_path: Path) -> None:
    path = _table(tmp_path)
    _append(path, "a")
    _append(path, "b")
    DeltaTable(str(path)).create_checkpoint()
    for version in (0, 1):  # what log clean-up past a checkpoint removes
        (path / "_delta_log" / f"{version:020d}.json").unlink()

    with pytest.raises(LogGone):
        read_since(path, 0)
    parts = list(read_all(path))

    assert parts[-1].cursor == 2
    assert sorted(row["_id"] for p in parts for row, _ in p.rows) == ["a", "b"]


def test_a_whole_read_in_parts_gives_a_cursor_only_with_the_last(tmp_path: Path) -> None:
    path = _table(tmp_path)
    for n in range(3):
        _append(path, f"r{n}")

    parts = list(read_all(path, batch_rows=1))

    assert [p.cursor for p in parts] == [None, None, 3]
    assert latest_version(tmp_path / "nothing") == -1
