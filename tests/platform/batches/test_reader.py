"""Reading batch files in slices: every row numbered as the client counts, bad rows kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from koppla.core import codec
from koppla.platform.batches.reader import Cursor, FileUnreadable, RawRow, RowReader


def read_all(path: Path, kind: str, multiline: bool, limit: int) -> list[RawRow]:
    """Every row, a slice at a time, with a new reader per slice (as after a restart)."""
    rows: list[RawRow] = []
    cursor = Cursor()
    while True:
        part = RowReader(max_depth=8).read(path, kind, multiline, cursor, limit)  # type: ignore[arg-type]
        assert len(part.rows) <= limit
        rows.extend(part.rows)
        cursor = part.next
        if part.done:
            return rows


def test_json_lines_are_read_in_slices_and_resume_at_the_cursor(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b'{"n": 1}\r\n\n{"n": 2}\n  \n{"n": 3}\n{"n": 4}\n{"n": 5}')
    rows = read_all(path, "json", False, 2)
    assert [(r.number, r.value) for r in rows] == [
        (1, {"n": 1}),
        (3, {"n": 2}),
        (5, {"n": 3}),
        (6, {"n": 4}),
        (7, {"n": 5}),
    ]
    assert rows[0].sent() == '{"n": 1}'
    kept = RowReader(max_depth=8)
    first = kept.read(path, "json", False, Cursor(), 3)
    second = kept.read(path, "json", False, first.next, 3)
    assert [r.number for r in first.rows + second.rows] == [1, 3, 5, 6, 7]
    assert second.done and not first.done


def test_unreadable_lines_are_rows_with_a_problem_and_their_text(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    too_deep = b'{"a": ' * 9 + b"1" + b"}" * 9
    beyond_the_parser = b"[" * 2000 + b"]" * 2000
    path.write_bytes(
        b"\n".join([b'{"ok": true}', b'{"broken": ', b"[1, 2]", too_deep, beyond_the_parser, b"7"])
    )
    rows = read_all(path, "json", False, 100)
    assert rows[0].problem is None and rows[0].value == {"ok": True}
    problems = {r.number: (r.problem[1] if r.problem else None) for r in rows}
    assert problems == {1: None, 2: "json", 3: "shape", 4: "depth", 5: "depth", 6: "shape"}
    assert rows[1].sent() == '{"broken":'  # the line as sent, without its line end
    assert "batch_max_depth" in rows[3].problem[2]  # type: ignore[index]
    assert all(r.value is None for r in rows[1:])


def test_a_multiline_json_file_holds_an_array_or_one_object(tmp_path: Path) -> None:
    array = tmp_path / "array.json"
    array.write_bytes(codec.dumps([{"n": 1}, {"n": 2}, "text", {"n": 4}]))
    rows = read_all(array, "json", True, 3)
    assert [r.number for r in rows] == [1, 2, 3, 4]
    assert rows[2].problem is not None and rows[2].problem[1] == "shape"
    assert rows[2].sent() == '"text"'
    single = tmp_path / "one.json"
    single.write_bytes(b'{\n  "n": 1\n}\n')
    assert [r.value for r in read_all(single, "json", True, 3)] == [{"n": 1}]
    for name, body in (("broken.json", b'[{"n": 1}'), ("number.json", b"42")):
        (tmp_path / name).write_bytes(body)
        with pytest.raises(FileUnreadable):
            RowReader(max_depth=8).read(tmp_path / name, "json", True, Cursor(), 10)


def test_parquet_rows_are_dicts_numbered_across_row_groups(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"n": n, "identityMap": [("Email", [{"id": f"{n}@x.test", "primary": True}])]}
        for n in range(7)
    ]
    kind = pa.map_(pa.string(), pa.list_(pa.struct([("id", pa.string()), ("primary", pa.bool_())])))
    table = pa.table(
        {
            "n": [r["n"] for r in rows],
            "identityMap": pa.array([r["identityMap"] for r in rows], kind),
        }
    )
    path = tmp_path / "a.parquet"
    pq.write_table(table, path, row_group_size=3)
    read = read_all(path, "parquet", False, 2)
    assert [(r.number, r.value["n"]) for r in read] == [(n + 1, n) for n in range(7)]  # type: ignore[index]
    assert read[4].value["identityMap"] == {"Email": [{"id": "4@x.test", "primary": True}]}  # type: ignore[index]
    assert codec.loads(read[0].sent())["n"] == 0


def test_a_corrupt_parquet_file_is_unreadable_as_a_whole(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 this is not parquet PAR1")
    with pytest.raises(FileUnreadable, match="Parquet"):
        RowReader(max_depth=8).read(path, "parquet", False, Cursor(), 10)


def test_a_parquet_cell_python_cannot_hold_refuses_its_row_only(tmp_path: Path) -> None:
    year_10000 = 253_402_300_800_000_000  # microseconds: past datetime's last year
    stamps = pa.array([0, year_10000, 1_000_000], pa.timestamp("us", tz="UTC"))
    nested = pa.array(
        [{"m": [("a", 1)]}, {"m": [("b", 2)]}, {"m": None}],
        pa.struct([("m", pa.map_(pa.string(), pa.int64()))]),
    )
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"timestamp": stamps, "s": nested}), path)
    rows = RowReader(max_depth=8).read(path, "parquet", False, Cursor(), 10).rows
    assert [r.number for r in rows] == [1, 2, 3]
    assert rows[1].value is None and rows[1].problem is not None
    assert rows[1].problem[1] == "parquet"
    assert rows[0].value is not None and rows[0].value["s"] == {"m": {"a": 1}}
    assert rows[2].value is not None and rows[2].value["s"] == {"m": None}


def test_an_over_long_line_is_a_row_error_and_reading_resumes_after_it(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    long_line = b'{"_id": "' + b"x" * 5000 + b'"}'
    path.write_bytes(b'{"n": 1}\n' + long_line + b'\n{"n": 3}\n' + b"y" * 3000)
    reader = RowReader(max_depth=8, max_line_bytes=1000)
    rows: list[RawRow] = []
    cursor = Cursor()
    while True:  # one row per slice: the cursor resumes right after the skipped line
        part = reader.read(path, "json", False, cursor, 1)
        rows.extend(part.rows)
        cursor = part.next
        if part.done:
            break
    assert [(r.number, r.value, r.problem and r.problem[1]) for r in rows] == [
        (1, {"n": 1}, None),
        (2, None, "lineTooLong"),
        (3, {"n": 3}, None),
        (4, None, "lineTooLong"),  # the last line, without a newline
    ]
    assert rows[1].problem is not None and "1000 bytes" in rows[1].problem[2]
    assert rows[1].sent().startswith('{"_id": "xxx')


def test_a_slice_of_json_lines_ends_at_its_byte_budget(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b"".join(codec.dumps({"n": n, "pad": "p" * 100}) + b"\n" for n in range(10)))
    part = RowReader(max_depth=8, max_slice_bytes=300).read(path, "json", False, Cursor(), 100)
    assert 1 <= len(part.rows) <= 3 and not part.done


def test_a_multiline_json_file_over_its_limit_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(codec.dumps([{"n": n} for n in range(100)]))
    reader = RowReader(max_depth=8, max_document_bytes=200)
    with pytest.raises(FileUnreadable, match="batch_max_document_bytes"):
        reader.read(path, "json", True, Cursor(), 10)
    assert reader.holding() == 0


def test_a_parquet_row_group_over_its_limit_makes_the_file_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    table = pa.Table.from_pylist([{"text": "z" * 10_000}] * 50)
    pq.write_table(table, path, use_dictionary=False, compression="zstd")
    assert path.stat().st_size < 100_000  # small on disk, 500 kB once read
    reader = RowReader(max_depth=8, max_row_group_bytes=100_000)
    with pytest.raises(FileUnreadable, match="row group 0"):
        reader.read(path, "parquet", False, Cursor(), 10)
    assert len(RowReader(max_depth=8).read(path, "parquet", False, Cursor(), 10).rows) == 10


def test_parquet_timestamps_without_a_time_zone_are_read_as_utc(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    naive = datetime(2025, 3, 1, 10, 0)
    table = pa.table(
        {
            "timestamp": pa.array([naive], pa.timestamp("ms")),
            "nested": pa.array([{"at": naive}], pa.struct([("at", pa.timestamp("us"))])),
            "zoned": pa.array([naive], pa.timestamp("ms", tz="Europe/Stockholm")),
        }
    )
    pq.write_table(table, path)
    (row,) = RowReader(max_depth=8).read(path, "parquet", False, Cursor(), 10).rows
    assert row.value is not None
    assert row.value["timestamp"] == naive.replace(tzinfo=UTC)
    assert row.value["timestamp"].utcoffset() == timedelta(0)
    assert row.value["nested"]["at"] == naive.replace(tzinfo=UTC)
    assert row.value["zoned"].utcoffset() == timedelta(hours=1)  # a zone sent is kept


def test_forget_drops_what_is_kept_open(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(codec.dumps([{"n": n} for n in range(10)]))
    reader = RowReader(max_depth=8)
    reader.read(path, "json", True, Cursor(), 3)
    assert reader.holding() == 1
    reader.forget(path)
    assert reader.holding() == 0
