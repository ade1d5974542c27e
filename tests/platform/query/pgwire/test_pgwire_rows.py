"""Streamed rows go out in bounded chunks however wide the rows are."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pyarrow as pa

from koppla.platform.query.pgwire.rows import SLICE_BYTES, EngineRows, StaticRows, sliced
from koppla.platform.query.result import Column

WIDE = 256 * 1024


class WideStream:
    """A stream whose one batch is 64 rows of 256 KiB text (16 MiB)."""

    columns = (Column("v", "VARCHAR"),)

    def batches(self, rows: int = 8192) -> Iterator[pa.RecordBatch]:
        yield pa.record_batch([pa.array(["x" * WIDE] * 64)], names=["v"])

    def cancel(self) -> None:
        pass


@contextmanager
def wide_stream() -> Iterator[WideStream]:
    yield WideStream()


async def chunks() -> list[list[bytes]]:
    with ThreadPoolExecutor(2) as executor:
        rows = EngineRows(executor, wide_stream)
        await rows.open()
        out = []
        while (chunk := await rows.next_chunk()) is not None:
            out.append(chunk)
        await rows.close()
    return out


def test_a_wide_batch_is_sent_in_slices_of_bounded_size() -> None:
    out = asyncio.run(chunks())
    assert sum(len(chunk) for chunk in out) == 64
    assert max(sum(len(row) for row in chunk) for chunk in out) <= SLICE_BYTES + WIDE


def test_slicing_keeps_every_row_in_order() -> None:
    batch = pa.record_batch([pa.array([str(n) * 1000 for n in range(10)])], names=["v"])
    parts = list(sliced(iter([batch]), 3000))
    assert len(parts) > 1
    assert pa.Table.from_batches(parts).column(0).to_pylist() == batch.column(0).to_pylist()


def test_a_held_answer_is_handed_out_in_chunks() -> None:
    rows = [b"x" * 100_000] * 50

    async def read() -> list[list[bytes]]:
        static = StaticRows((Column("v", "VARCHAR"),), rows)
        out = []
        while (chunk := await static.next_chunk()) is not None:
            out.append(chunk)
        return out

    out = asyncio.run(read())
    assert [row for chunk in out for row in chunk] == rows
    assert len(out) > 1
