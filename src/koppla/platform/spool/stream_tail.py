"""How far each partition of a RabbitMQ stream spool has been written: its tail offset.

RabbitMQ 3.10's stream protocol has no stream-statistics command (it came in 3.11), so the tail
is learnt the way the protocol allows: a subscription from `last` receives the stream's last
chunk, whose first offset plus its record count is the offset the next record will get. A
stream that delivers nothing within the wait is empty (tail 0). The backlog of a partition is
its tail minus the pipeline's cursor (`Position.pack()` of a stream record is its offset + 1).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from rstream.exceptions import StreamDoesNotExist

from koppla.platform.spool.stream_address import DEFAULT_PREFIX, StreamAddress, resolve_partitions
from koppla.platform.spool.stream_link import StreamLink
from koppla.platform.spool.writer import SpoolClosed

T = TypeVar("T")

TAIL_WAIT_S = 0.5
"""How long a stream may take to send its last chunk before it counts as empty."""


async def last_offsets(
    link: StreamLink, names: Sequence[str], wait_s: float = TAIL_WAIT_S
) -> dict[str, int]:
    """Per stream: the offset its next record will get (0: empty or missing)."""
    loop = asyncio.get_running_loop()
    found: dict[str, asyncio.Future[int]] = {}
    subscriptions: list[int] = []

    def handler(name: str) -> Callable[[int, list[bytes]], bool]:
        def on_chunk(first: int, payloads: list[bytes]) -> bool:
            if not found[name].done():
                found[name].set_result(first + len(payloads))
            return False

        return on_chunk

    try:
        for name in names:
            found[name] = loop.create_future()
            try:
                subscriptions.append(await link.subscribe(name, None, 1, handler(name)))
            except StreamDoesNotExist:
                found[name].set_result(0)
        await asyncio.wait(found.values(), timeout=wait_s)
    finally:
        for subscription in subscriptions:
            await link.unsubscribe(subscription)
    return {name: future.result() if future.done() else 0 for name, future in found.items()}


def stream_tails(
    url: str,
    partitions: int | Sequence[str],
    *,
    prefix: str = DEFAULT_PREFIX,
    wait_s: float = TAIL_WAIT_S,
) -> dict[str, int]:
    """Per partition of the spool at `url`: the offset its next record will get.

    Blocking; opens a connection of its own for the question. `SpoolClosed` when the broker
    cannot be reached.
    """
    address = StreamAddress.parse(url)
    names = resolve_partitions(partitions, prefix)

    async def ask() -> dict[str, int]:
        link = await StreamLink.open(address, name="koppla-tails", on_lost=lambda _: None)
        try:
            return await last_offsets(link, names, wait_s)
        finally:
            await link.close()

    try:
        return _run_blocking(ask)
    except (OSError, TimeoutError) as error:
        raise SpoolClosed(f"cannot reach the stream spool at {address.host}: {error!r}") from error


def _run_blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to its end from sync code, also when this thread runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
