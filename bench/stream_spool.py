"""The spool on RabbitMQ Streams: confirmed appends per second, then records read per second.

Appends: one event loop (uvloop, as the edge runs) with `--concurrency` tasks, each appending
single `--size`-byte payloads one after another and awaiting each one's confirm (as 64 edge
connections would), `--appends` in all, over `--partitions` streams. Reads: one `StreamSource`
reading every partition from the start up to its tail, the way a pipeline worker polls.

The streams get a fresh prefix and are deleted afterwards. Timings on a shared machine are
noisy (the broker shares the cores); run it more than once.

Run:  python bench/stream_spool.py [--url rabbitmq-stream://guest:guest@127.0.0.1:5552/]
      [--appends 200000] [--concurrency 64] [--size 300] [--partitions 4] [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from koppla.core import ids
from koppla.platform.spool.position import START
from koppla.platform.spool.rabbit_stream import (
    StreamAddress,
    StreamSink,
    StreamSource,
    partition_names,
    stream_tails,
)
from koppla.platform.spool.stream_link import StreamLink


async def append_phase(url: str, args: argparse.Namespace, prefix: str) -> None:
    """Time `--appends` confirmed single appends from `--concurrency` tasks on one loop."""
    sink = StreamSink(url, args.partitions, prefix=prefix)
    await sink.start()
    payload = os.urandom(args.size // 2).hex().encode()[: args.size]
    share, extra = divmod(args.appends, args.concurrency)
    refused = 0

    async def client(count: int) -> None:
        nonlocal refused
        for _ in range(count):
            try:
                await sink.append(payload)
            except Exception:
                refused += 1

    began, cpu = time.perf_counter(), time.process_time()
    counts = [share + (1 if n < extra else 0) for n in range(args.concurrency)]
    await asyncio.gather(*(client(count) for count in counts))
    elapsed, used = time.perf_counter() - began, time.process_time() - cpu
    await sink.aclose()
    done = args.appends - refused
    print(
        f"appends: {done} confirmed ({refused} refused) in {elapsed:.2f} s = "
        f"{done / elapsed:,.0f} appends/s, {done * args.size / elapsed / 1e6:.1f} MB/s; "
        f"client CPU {used / elapsed:.0%} of one core"
    )


def read_phase(url: str, args: argparse.Namespace, prefix: str) -> None:
    """Time reading every partition from the start to its tail."""
    names = partition_names(args.partitions, prefix)
    tails = stream_tails(url, names)
    source = StreamSource(url, names, lambda: list(names))
    began, cpu = time.perf_counter(), time.process_time()
    records = size = reads = 0
    try:
        for name in source.streams():
            after = START
            while after.pack() < tails[name]:
                result = source.read(name, after)
                reads += 1
                records += len(result.records)
                size += sum(len(record.payload) for record in result.records)
                after = result.next
    finally:
        elapsed, used = time.perf_counter() - began, time.process_time() - cpu
        source.close()
    print(
        f"reads: {records} records in {reads} reads, {elapsed:.2f} s = "
        f"{records / elapsed:,.0f} records/s, {size / elapsed / 1e6:.1f} MB/s; "
        f"CPU {used / elapsed:.0%} of one core (reader thread and client loop)"
    )


async def delete_streams(url: str, names: list[str]) -> None:
    """Delete the benchmark's streams."""
    link = await StreamLink.open(StreamAddress.parse(url), name="bench", on_lost=print)
    try:
        for name in names:
            await link.delete(name)
    finally:
        await link.close()


def run(loop: str, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine on a fresh loop of the kind asked for."""
    if loop == "uvloop":
        import uvloop

        uvloop.run(make())
    else:
        asyncio.run(make())


def main() -> None:
    """Parse the arguments, run both phases, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="rabbitmq-stream://guest:guest@127.0.0.1:5552/")
    parser.add_argument("--appends", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    prefix = f"koppla-bench-{ids.new_hex_id(4)}"
    print(
        f"{args.appends} appends of {args.size} bytes, {args.concurrency} at a time, "
        f"{args.partitions} partitions, {args.loop} loop, {args.url}"
    )
    try:
        run(args.loop, lambda: append_phase(args.url, args, prefix))
        read_phase(args.url, args, prefix)
    finally:
        asyncio.run(delete_streams(args.url, partition_names(args.partitions, prefix)))


if __name__ == "__main__":
    main()
