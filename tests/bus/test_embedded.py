"""The embedded queue across processes and threads: SIGKILL, exclusive leases, lease expiry."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest

from koppla.bus.embedded import EmbeddedQueue
from koppla.bus.queue import QueueDepth

pytestmark = pytest.mark.anyio

TAKE_ONE_AND_HANG = """
import asyncio, sys
from pathlib import Path
from koppla.bus.embedded import EmbeddedQueue

async def main():
    queue = EmbeddedQueue(Path(sys.argv[1]))
    delivery = await queue.get(30)
    print(delivery.body.decode() if delivery else "-", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""

CONSUME_UNTIL_EMPTY = """
import asyncio, sys
from pathlib import Path
from koppla.bus.embedded import EmbeddedQueue

async def main():
    queue = EmbeddedQueue(Path(sys.argv[1]))
    go = Path(sys.argv[2])
    print("ready", flush=True)
    while not go.exists():
        await asyncio.sleep(0.01)
    while (delivery := await queue.get(1.0)) is not None:
        await asyncio.sleep(0.002)
        print(delivery.body.decode(), flush=True)
        await delivery.ack()
    await queue.close()

asyncio.run(main())
"""

PUBLISH_FOREVER = """
import asyncio, sys
from pathlib import Path
from koppla.bus.embedded import EmbeddedQueue

async def main():
    queue = EmbeddedQueue(Path(sys.argv[1]))
    batch = 0
    while True:
        await queue.publish([f"{batch}-{n}".encode() for n in range(10)])
        print(batch, flush=True)
        batch += 1

asyncio.run(main())
"""


def _child(
    code: str, *args: object, stdout: int | object = subprocess.PIPE
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdout=stdout,  # type: ignore[arg-type]
        text=True,
    )


def _end(child: subprocess.Popen[str]) -> None:
    child.kill()
    child.wait()
    if child.stdout is not None:
        child.stdout.close()


async def test_a_consumer_killed_after_get_gives_its_message_to_another(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    queue = EmbeddedQueue(path)
    await queue.publish([b"chunk-7"])
    child = _child(TAKE_ONE_AND_HANG, path)
    try:
        assert child.stdout is not None
        with anyio.fail_after(30):
            line = await anyio.to_thread.run_sync(child.stdout.readline)
        assert line.strip() == "chunk-7"
        assert await queue.depth() == QueueDepth(ready=0, in_flight=1, dead=0)

        os.kill(child.pid, signal.SIGKILL)  # not reaped yet: a zombie must count as dead too
        again = await queue.get(5.0)  # far below the 300 s lease: found by the pid check
        assert again is not None
        assert (again.body, again.attempt) == (b"chunk-7", 2)
        await again.ack()
    finally:
        _end(child)
    await queue.close()


async def test_processes_sharing_one_file_never_take_the_same_message(tmp_path: Path) -> None:
    path, go = tmp_path / "q.sqlite", tmp_path / "go"
    queue = EmbeddedQueue(path)
    bodies = [f"m{n}" for n in range(400)]
    await queue.publish([b.encode() for b in bodies])
    outputs = [tmp_path / f"out{n}.txt" for n in range(4)]
    children = []
    for output in outputs:
        with output.open("w") as sink:
            children.append(_child(CONSUME_UNTIL_EMPTY, path, go, stdout=sink))
    try:
        with anyio.fail_after(60):
            while not all(o.read_text().startswith("ready") for o in outputs):
                await anyio.sleep(0.02)
            go.touch()
            codes = [await anyio.to_thread.run_sync(c.wait) for c in children]
    finally:
        for child in children:
            _end(child)
    assert codes == [0, 0, 0, 0]

    taken = [o.read_text().split()[1:] for o in outputs]
    everything = [body for one in taken for body in one]
    assert sorted(everything) == sorted(bodies)  # each exactly once: never two holders
    assert all(len(one) > 0 for one in taken)
    assert await queue.depth() == QueueDepth(ready=0, in_flight=0, dead=0)
    await queue.close()


def test_threads_with_their_own_loops_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    bodies = [f"t{n}".encode() for n in range(200)]
    taken: list[bytes] = []
    lock = threading.Lock()

    async def produce() -> None:
        queue = EmbeddedQueue(path)
        await queue.publish(bodies)
        await queue.close()

    async def consume() -> None:
        queue = EmbeddedQueue(path)
        while (delivery := await queue.get(0.5)) is not None:
            with lock:
                taken.append(delivery.body)
            await delivery.ack()
        await queue.close()

    asyncio.run(produce())
    threads = [threading.Thread(target=asyncio.run, args=(consume(),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(taken) == sorted(bodies)


async def test_a_publisher_killed_mid_stream_loses_no_published_batch(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    await EmbeddedQueue(path).close()  # create the file before the child races to
    child = _child(PUBLISH_FOREVER, path)
    assert child.stdout is not None
    confirmed: list[int] = []
    with anyio.fail_after(30):
        while len(confirmed) < 20:
            confirmed.append(int(await anyio.to_thread.run_sync(child.stdout.readline)))
    os.kill(child.pid, signal.SIGKILL)
    _end(child)

    queue = EmbeddedQueue(path)
    stored: set[bytes] = set()
    while (delivery := await queue.get(0)) is not None:
        stored.add(delivery.body)
        await delivery.ack()
    for batch in confirmed:
        assert {f"{batch}-{n}".encode() for n in range(10)} <= stored
    batches = {body.split(b"-")[0] for body in stored}
    assert all(sum(1 for b in stored if b.startswith(x + b"-")) == 10 for x in batches)
    await queue.close()


async def test_an_expired_lease_hands_the_message_to_the_next_consumer(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    slow = EmbeddedQueue(path, lease_s=0.2)
    await slow.publish([b"long job"])
    stale = await slow.get(1)
    assert stale is not None
    await anyio.sleep(0.4)  # the lease runs out while the slow consumer still works

    fresh_queue = EmbeddedQueue(path)
    fresh = await fresh_queue.get(5)
    assert fresh is not None
    assert (fresh.body, fresh.attempt) == (b"long job", 2)

    await stale.ack()  # too late: the message belongs to the new holder
    assert await fresh_queue.depth() == QueueDepth(ready=0, in_flight=1, dead=0)
    await fresh.ack()
    assert await fresh_queue.depth() == QueueDepth(ready=0, in_flight=0, dead=0)
    await slow.close()
    await fresh_queue.close()


async def test_depth_counts_every_holder_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    holder, watcher = EmbeddedQueue(path), EmbeddedQueue(path)
    await holder.publish([b"a", b"b"])
    assert await holder.get(1) is not None
    assert await watcher.depth() == QueueDepth(ready=1, in_flight=1, dead=0)
    await holder.close()
    assert await watcher.depth() == QueueDepth(ready=2, in_flight=0, dead=0)
    await watcher.close()


async def test_a_retry_waits_out_its_delay_before_coming_back(tmp_path: Path) -> None:
    queue = EmbeddedQueue(tmp_path / "q.sqlite", retry_delay_s=30)
    await queue.publish([b"later"])
    delivery = await queue.get(1)
    assert delivery is not None
    await delivery.retry("shop database down")
    assert await queue.get(0.2) is None
    assert await queue.depth() == QueueDepth(ready=1, in_flight=0, dead=0)
    await queue.close()
