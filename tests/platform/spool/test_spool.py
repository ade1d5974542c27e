"""The spool keeps acknowledged records across crashes and hands them out in order."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from koppla.platform.spool.position import Position, segment_name
from koppla.platform.spool.reader import SpoolReader, list_streams
from koppla.platform.spool.writer import SpoolClosed, SpoolWriter, stream_segments


async def _write_all(writer: SpoolWriter, payloads: list[bytes]) -> list[Position]:
    return list(await asyncio.gather(*(writer.append(p) for p in payloads)))


def test_records_come_back_in_order_after_group_commit(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, segment_bytes=1 << 20)
    payloads = [f"record-{i}".encode() for i in range(500)]
    positions = asyncio.run(_write_all(writer, payloads))
    writer.close()
    assert max(positions) == positions[-1]
    result = SpoolReader(tmp_path, writer.stream).read(Position(0, 0))
    assert [r.payload for r in result.records] == payloads
    assert result.next == result.records[-1].end


def test_reading_resumes_from_a_position(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, segment_bytes=1 << 20)
    asyncio.run(_write_all(writer, [b"a", b"b", b"c"]))
    writer.close()
    reader = SpoolReader(tmp_path, writer.stream)
    first = reader.read(Position(0, 0)).records
    rest = reader.read(first[0].end).records
    assert [r.payload for r in rest] == [b"b", b"c"]


def test_segments_roll_and_are_read_across(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, segment_bytes=4096)
    payloads = [os.urandom(700) for _ in range(40)]
    for payload in payloads:
        asyncio.run(_write_all(writer, [payload]))
    writer.close()
    assert len(stream_segments(tmp_path / writer.stream)) > 3
    result = SpoolReader(tmp_path, writer.stream).read(Position(0, 0))
    assert [r.payload for r in result.records] == payloads


def test_a_torn_tail_is_skipped_and_a_new_writer_starts_a_new_segment(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, segment_bytes=1 << 20)
    asyncio.run(_write_all(writer, [b"kept-1", b"kept-2"]))
    writer.close()
    segment = tmp_path / writer.stream / segment_name(1)
    with segment.open("ab") as handle:  # a crash mid-write: a header promising more bytes
        handle.write(b"\x00\x00\x01\x00\x12\x34")
    again = SpoolWriter(tmp_path, segment_bytes=1 << 20)
    assert again.stream == writer.stream
    asyncio.run(_write_all(again, [b"after-restart"]))
    again.close()
    result = SpoolReader(tmp_path, writer.stream).read(Position(0, 0))
    assert [r.payload for r in result.records] == [b"kept-1", b"kept-2", b"after-restart"]


def test_two_live_writers_get_separate_streams(tmp_path: Path) -> None:
    first = SpoolWriter(tmp_path, segment_bytes=1 << 20)
    second = SpoolWriter(tmp_path, segment_bytes=1 << 20)
    try:
        assert first.stream != second.stream
        assert SpoolReader(tmp_path, first.stream).is_live()
    finally:
        first.close()
        second.close()
    assert not SpoolReader(tmp_path, first.stream).is_live()
    assert list_streams(tmp_path) == sorted([first.stream, second.stream])


def test_release_deletes_only_finished_segments(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, segment_bytes=4096)
    for _ in range(20):
        asyncio.run(_write_all(writer, [os.urandom(1000)]))
    writer.close()
    reader = SpoolReader(tmp_path, writer.stream)
    result = reader.read(Position(0, 0))
    before = stream_segments(tmp_path / writer.stream)
    removed = reader.release(result.next)
    after = stream_segments(tmp_path / writer.stream)
    assert removed == len(before) - len(after) > 0
    assert after[0] == result.next.segment


def test_a_failed_disk_write_refuses_that_group_and_the_spool_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = SpoolWriter(tmp_path, segment_bytes=1 << 20)
    real_write = os.write
    calls = {"n": 0}

    def flaky_write(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] == 2:  # the second group: half written, then the disk is full
            real_write(fd, bytes(data)[: len(data) // 2])
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", flaky_write)
    asyncio.run(_write_all(writer, [b"first"]))
    with pytest.raises(SpoolClosed):
        asyncio.run(_write_all(writer, [b"refused"]))
    asyncio.run(_write_all(writer, [b"third"]))
    writer.close()
    result = SpoolReader(tmp_path, writer.stream).read(Position(0, 0))
    assert [r.payload for r in result.records] == [b"first", b"third"]
