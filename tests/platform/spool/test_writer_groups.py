"""The writer commits what one event-loop iteration appended as one group, and keeps it all."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from koppla.platform.spool import frame
from koppla.platform.spool.position import Position
from koppla.platform.spool.reader import SpoolReader
from koppla.platform.spool.writer import SpoolClosed, SpoolWriter


def _syncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count `fdatasync` calls (each is one committed group)."""
    calls: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    return calls


def test_appends_of_one_loop_iteration_are_one_group_with_one_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = _syncs(monkeypatch)
    writer = SpoolWriter(tmp_path, segment_bytes=1 << 20)
    payloads = [f"request-{i}".encode() for i in range(200)]

    async def burst() -> list[Position]:
        return list(await asyncio.gather(*[writer.append(p) for p in payloads]))

    ends = asyncio.run(burst())
    writer.close()
    assert len(syncs) == 1
    assert len(set(ends)) == 1  # one group: every request ends where the group ends
    records = SpoolReader(tmp_path, writer.stream).read(Position(0, 0)).records
    assert [r.payload for r in records] == payloads
    assert ends[0] == records[-1].end


def test_appends_from_two_loops_in_threads_are_all_kept(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, segment_bytes=1 << 20)

    async def send(tag: str) -> None:
        for wave in range(20):
            await asyncio.gather(*[writer.append(f"{tag}-{wave}-{i}".encode()) for i in range(5)])

    async def both() -> None:
        await asyncio.gather(asyncio.to_thread(asyncio.run, send("a")), send("b"))

    asyncio.run(both())
    writer.close()
    records = SpoolReader(tmp_path, writer.stream).read(Position(0, 0)).records
    got = [r.payload.decode() for r in records]
    assert sorted(got) == sorted(f"{t}-{w}-{i}" for t in "ab" for w in range(20) for i in range(5))
    for tag in "ab":  # each loop's requests stay in the order it sent them
        mine = [g for g in got if g.startswith(tag)]
        assert mine == [f"{tag}-{w}-{i}" for w in range(20) for i in range(5)]


def test_close_writes_what_was_appended_in_the_same_iteration(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, segment_bytes=1 << 20)

    async def append_then_close() -> Position:
        pending = writer.append(b"last words")
        writer.close()  # before the loop ran again: the append is still staged
        return await pending

    end = asyncio.run(append_then_close())
    records = SpoolReader(tmp_path, writer.stream).read(Position(0, 0)).records
    assert [r.payload for r in records] == [b"last words"]
    assert end == records[-1].end


def test_an_append_after_close_is_refused_at_once(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, segment_bytes=1 << 20)
    writer.close()

    async def late() -> None:
        writer.append(b"too late")

    with pytest.raises(SpoolClosed):
        asyncio.run(late())


def test_frames_written_together_read_back_like_frames_written_one_by_one() -> None:
    payloads = [b"", b"a", os.urandom(5000), b"\x00" * 17]
    together = frame.encode_all(payloads)
    assert together == b"".join(frame.encode(p) for p in payloads)
    frames, end, corrupt = frame.decode_all(together)
    assert [f.payload for f in frames] == payloads
    assert (end, corrupt) == (len(together), False)
