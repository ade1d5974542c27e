"""The spool on RabbitMQ Streams, against the real stream plugin (port 5552).

Each test uses streams of its own (a unique prefix) and deletes them afterwards. Broker outages
are played by a TCP proxy between Koppla and the broker that the test cuts and restores, so the
shared broker itself is never restarted.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, suppress

import pytest

from koppla.core import ids
from koppla.core.errors import TerminalError
from koppla.platform.spool.position import START, Position
from koppla.platform.spool.rabbit_stream import (
    PayloadTooLarge,
    StreamAddress,
    StreamSink,
    StreamSource,
    partition_names,
    stream_tails,
)
from koppla.platform.spool.stream_link import StreamLink
from koppla.platform.spool.writer import SpoolClosed
from tests.require import unavailable

pytestmark = pytest.mark.integration

STREAM_URL = os.environ.get(
    "KOPPLA_TEST_RABBITMQ_STREAM_URL", "rabbitmq-stream://guest:guest@127.0.0.1:5552/"
)
MOST_PARTITIONS = 4
"""Every test uses at most this many partitions (their streams are deleted afterwards)."""


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _delete_streams(url: str, names: list[str]) -> None:
    async def delete() -> None:
        link = await StreamLink.open(StreamAddress.parse(url), name="koppla-test", on_lost=print)
        try:
            for name in names:
                await link.delete(name)
        finally:
            await link.close()

    asyncio.run(delete())


@pytest.fixture
def url() -> str:
    """The stream URL, once its port answers (skip locally, fail under CI)."""
    address = StreamAddress.parse(STREAM_URL)
    if not _reachable(address.host, address.port):
        unavailable(f"RabbitMQ stream plugin not reachable at {address.host}:{address.port}")
    return STREAM_URL


@pytest.fixture
def prefix(url: str) -> Iterator[str]:
    """A stream prefix no other test uses; its streams are deleted after the test."""
    name = f"koppla-test-{ids.new_hex_id(6)}"
    yield name
    _delete_streams(url, partition_names(MOST_PARTITIONS, name))


async def _append_all(sink: StreamSink, payloads: list[bytes]) -> None:
    await asyncio.gather(*(sink.append(payload) for payload in payloads))


def _write(
    url: str, partitions: int, prefix: str, payloads: list[bytes], *, one_by_one: bool = False
) -> None:
    async def write() -> None:
        sink = StreamSink(url, partitions, prefix=prefix)
        try:
            if one_by_one:  # each its own frame: the partitions take turns record by record
                for payload in payloads:
                    await sink.append(payload)
            else:
                await _append_all(sink, payloads)
        finally:
            await sink.aclose()

    asyncio.run(write())


def _drain(source: StreamSource, stream: str, after: Position = START) -> list[bytes]:
    """Everything `stream` holds from `after` up to its tail (as a worker polls: an empty read
    means nothing has arrived yet, not the end)."""
    tail = source.tail(stream)
    assert tail is not None
    found: list[bytes] = []
    empty_reads = 0
    while after.pack() < tail:
        result = source.read(stream, after)
        if not result.records:
            empty_reads += 1
            assert empty_reads < 100, f"{stream} stalled at {after.pack()} of {tail}"
            time.sleep(0.05)
            continue
        assert result.next == result.records[-1].end
        found.extend(record.payload for record in result.records)
        after = result.next
    return found


def _owning(names: list[str]) -> Callable[[], list[str]]:
    return lambda: list(names)


@pytest.mark.anyio
async def test_an_append_resolves_once_confirmed_and_reads_back_in_order_on_every_partition(
    url: str, prefix: str
) -> None:
    sink = StreamSink(url, 3, prefix=prefix)
    payloads = [f"record-{n:03d}".encode() for n in range(30)]
    try:
        for payload in payloads:
            future = sink.append(payload)
            assert not future.done()  # nothing is acknowledged before the broker answers
            await future
    finally:
        await sink.aclose()
    names = partition_names(3, prefix)
    source = StreamSource(url, 3, _owning(names), prefix=prefix)
    try:
        per_partition = {name: _drain(source, name) for name in source.streams()}
    finally:
        source.close()
    assert all(per_partition.values()), "every partition takes a share"
    for found in per_partition.values():
        assert found == sorted(found), "a partition keeps the order of its appends"
    assert sorted(p for found in per_partition.values() for p in found) == payloads


def test_a_read_from_an_offset_mid_stream_starts_there(url: str, prefix: str) -> None:
    payloads = [f"{n}".encode() for n in range(100)]
    _write(url, 1, prefix, payloads)
    name = partition_names(1, prefix)[0]
    source = StreamSource(url, 1, _owning([name]), prefix=prefix)
    try:
        first = source.read(name, Position(0, 40))
        assert first.records[0].payload == b"40"
        assert first.records[0].end.pack() == 41
        assert _drain(source, name, Position(0, 40)) == payloads[40:]
        at_end = source.read(name, Position(0, 100))
        assert at_end.records == [] and at_end.next == Position(0, 100)
    finally:
        source.close()


def test_a_read_past_the_end_of_a_stream_is_reported(
    url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = partition_names(1, prefix)[0]
    _write(url, 1, prefix, [b"1", b"2", b"3"])
    source = StreamSource(url, 1, _owning([name]), prefix=prefix)
    try:
        assert source.read(name, Position(0, 10)).records == []
    finally:
        source.close()
    assert "past its end (3)" in caplog.text


def test_a_replay_from_an_earlier_offset_yields_the_same_records(url: str, prefix: str) -> None:
    payloads = [f"event-{n}".encode() for n in range(500)]
    _write(url, 1, prefix, payloads)
    name = partition_names(1, prefix)[0]
    source = StreamSource(url, 1, _owning([name]), prefix=prefix, max_bytes=1000)
    try:
        assert _drain(source, name) == payloads
        replayed = source.read(name, Position(0, 10))  # as after a crash: back to a cursor
        assert replayed.records[0].payload == b"event-10"
        assert _drain(source, name, Position(0, 10)) == payloads[10:]
    finally:
        source.close()


def test_a_reopened_source_continues_at_its_cursor_without_loss_or_repeat(
    url: str, prefix: str
) -> None:
    name = partition_names(1, prefix)[0]
    _write(url, 1, prefix, [f"a{n}".encode() for n in range(300)])
    source = StreamSource(url, 1, _owning([name]), prefix=prefix, max_bytes=500)
    try:
        result = source.read(name, START)
        taken = [record.payload for record in result.records[:10]]  # the worker used 10
        cursor = result.records[9].end
    finally:
        source.close()
    _write(url, 1, prefix, [f"b{n}".encode() for n in range(100)])
    reopened = StreamSource(url, 1, _owning([name]), prefix=prefix)
    try:
        rest = _drain(reopened, name, cursor)
    finally:
        reopened.close()
    expected = [f"a{n}".encode() for n in range(300)] + [f"b{n}".encode() for n in range(100)]
    assert taken + rest == expected


@pytest.mark.anyio
async def test_20000_concurrent_appends_all_confirm_and_read_back_exactly_once(
    url: str, prefix: str
) -> None:
    payloads = [f"{n:05d}".encode().ljust(64, b".") for n in range(20_000)]
    sink = StreamSink(url, 4, prefix=prefix)
    try:
        results = await asyncio.gather(*(sink.append(payload) for payload in payloads))
    finally:
        await sink.aclose()
    assert len(results) == 20_000
    names = partition_names(4, prefix)
    source = StreamSource(url, 4, _owning(names), prefix=prefix)
    try:
        found = [payload for name in source.streams() for payload in _drain(source, name)]
    finally:
        source.close()
    assert len(found) == 20_000
    assert set(found) == set(payloads)
    assert max(Counter(found).values()) == 1


def test_tails_tell_how_far_each_partition_was_written(url: str, prefix: str) -> None:
    _write(url, 2, prefix, [b"x"] * 3, one_by_one=True)  # partitions of 2 and 1 records
    tails = stream_tails(url, 3, prefix=prefix)
    assert sorted(tails.values()) == [0, 1, 2]  # the third partition: declared but empty
    names = partition_names(2, prefix)
    source = StreamSource(url, 2, _owning(names), prefix=prefix)
    try:
        assert {name: source.tail(name) for name in names} == {name: tails[name] for name in names}
    finally:
        source.close()


def test_a_source_follows_the_partitions_it_owns(url: str, prefix: str) -> None:
    names = partition_names(2, prefix)
    _write(url, 2, prefix, [b"1", b"2"], one_by_one=True)
    owned = list(names)
    source = StreamSource(url, 2, lambda: list(owned), prefix=prefix)
    try:
        assert source.streams() == names
        assert len(_drain(source, names[1])) == 1
        owned.remove(names[1])
        assert source.streams() == [names[0]]
        assert len(_drain(source, names[0])) == 1
    finally:
        source.close()


@pytest.mark.anyio
async def test_a_sink_without_a_broker_refuses_appends_rather_than_hang() -> None:
    sink = StreamSink(f"rabbitmq-stream://guest:guest@127.0.0.1:{_free_port()}/", 2)
    try:
        with pytest.raises(SpoolClosed):
            await asyncio.wait_for(sink.append(b"lost"), 30)  # the connection attempt fails
        with pytest.raises(SpoolClosed):
            sink.append(b"refused at once")  # within the retry delay: no new attempt
        with pytest.raises(SpoolClosed):
            await asyncio.wait_for(sink.start(), 30)
    finally:
        await sink.aclose()


def test_a_source_without_a_broker_reads_nothing_rather_than_hang() -> None:
    url = f"rabbitmq-stream://guest:guest@127.0.0.1:{_free_port()}/"
    source = StreamSource(url, 1, _owning(["koppla-spool-0"]))
    try:
        assert source.read("koppla-spool-0", Position(0, 7)).next == Position(0, 7)
        assert source.tail("koppla-spool-0") is None
    finally:
        source.close()
    with pytest.raises(SpoolClosed):
        stream_tails(url, 1)


def test_a_read_from_an_offset_retention_removed_starts_at_the_first_record_left(
    url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = partition_names(1, prefix)[0]

    async def declare_small() -> None:  # tiny segments and retention, so records go quickly
        link = await StreamLink.open(StreamAddress.parse(url), name="koppla-test", on_lost=print)
        try:
            retention = {"max-length-bytes": 2000, "stream-max-segment-size-bytes": 500}
            await link.declare([name], retention)
        finally:
            await link.close()

    asyncio.run(declare_small())
    payloads = [f"{n:03d}".encode().ljust(100, b".") for n in range(200)]
    _write(url, 1, prefix, payloads, one_by_one=True)
    source = StreamSource(url, 1, _owning([name]), prefix=prefix)
    try:
        found = _drain(source, name, START)
    finally:
        source.close()
    assert 0 < len(found) < 200
    assert found == payloads[-len(found) :]
    assert "no longer in the stream (retention)" in caplog.text


@pytest.mark.anyio
async def test_a_closed_sink_refuses_appends(url: str, prefix: str) -> None:
    sink = StreamSink(url, 1, prefix=prefix)
    await sink.append(b"kept")
    await sink.aclose()
    with pytest.raises(SpoolClosed):
        sink.append(b"too late")


@pytest.mark.anyio
async def test_a_sink_closed_the_sync_way_on_its_loop_lets_go_of_the_broker(
    url: str, prefix: str
) -> None:
    sink = StreamSink(url, 1, prefix=prefix)
    await sink.append(b"kept")
    sink.close()  # as the server's lifespan does, on the loop
    assert not sink.connected
    with pytest.raises(SpoolClosed):
        sink.append(b"too late")


@pytest.mark.anyio
async def test_a_payload_over_the_broker_frame_size_is_refused_for_good() -> None:
    sink = StreamSink(f"rabbitmq-stream://guest:guest@127.0.0.1:{_free_port()}/", 1)
    try:
        with pytest.raises(PayloadTooLarge) as refused:
            sink.append(b"x" * (1024 * 1024))
        assert isinstance(refused.value, TerminalError)  # a retry cannot help
    finally:
        await sink.aclose()


class Proxy:
    """A TCP relay to the broker that a test can cut (as if the broker went away), restore,
    or make hold the broker's replies back (a broker that stops confirming)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = _free_port()
        self.replying = threading.Event()
        self.replying.set()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"rabbitmq-stream://guest:guest@127.0.0.1:{self.port}/"

    def start(self) -> None:
        listener = socket.socket()
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen()
        except OSError:
            listener.close()
            raise
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            broker = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, broker]
            threading.Thread(target=self._pipe, args=(client, broker, None), daemon=True).start()
            threading.Thread(
                target=self._pipe, args=(broker, client, self.replying), daemon=True
            ).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, gate: threading.Event | None) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                if gate is not None:
                    gate.wait()
                sink.sendall(data)
        for end in (source, sink):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every relayed connection and stop listening."""
        if self._listener is not None:
            with suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread in accept()
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for end in sockets:
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()


@pytest.fixture
def proxy(url: str) -> Iterator[Proxy]:
    """A relay to the test broker, listening."""
    address = StreamAddress.parse(url)
    relay = Proxy((address.host, address.port))
    relay.start()
    yield relay
    relay.replying.set()
    relay.cut()


async def _outcome(sink: StreamSink, payload: bytes) -> str:
    try:
        await asyncio.wait_for(sink.append(payload), 30)
    except SpoolClosed:
        return "refused"
    return "confirmed"


@pytest.mark.anyio
async def test_a_sink_reconnects_after_the_broker_comes_back(prefix: str, proxy: Proxy) -> None:
    sink = StreamSink(proxy.url, 1, prefix=prefix)
    try:
        assert await _outcome(sink, b"before") == "confirmed"
        proxy.cut()
        assert await _outcome(sink, b"while away") == "refused"
        proxy.start()
        outcomes = []
        for _ in range(40):  # the retry delay is at most 5 s
            outcomes.append(await _outcome(sink, b"after"))
            if outcomes[-1] == "confirmed":
                break
            await asyncio.sleep(0.25)
        assert outcomes[-1] == "confirmed"
    finally:
        await sink.aclose()
    name = partition_names(1, prefix)[0]
    source = StreamSource(proxy.url, 1, _owning([name]), prefix=prefix)
    try:
        assert _drain(source, name) == [b"before", b"after"]
    finally:
        source.close()


@pytest.mark.anyio
async def test_an_append_without_a_confirm_in_time_fails(prefix: str, proxy: Proxy) -> None:
    sink = StreamSink(proxy.url, 1, prefix=prefix, confirm_timeout_s=1.0)
    try:
        await sink.start()
        proxy.replying.clear()  # the broker takes the message but its confirm never arrives
        with pytest.raises(SpoolClosed, match="no confirm"):
            await asyncio.wait_for(sink.append(b"unconfirmed"), 30)
    finally:
        proxy.replying.set()
        await sink.aclose()


def test_a_source_resumes_after_the_broker_comes_back(prefix: str, proxy: Proxy) -> None:
    name = partition_names(1, prefix)[0]
    _write(proxy.url, 1, prefix, [b"1", b"2"])
    source = StreamSource(proxy.url, 1, _owning([name]), prefix=prefix)
    try:
        first = source.read(name, START)
        assert [record.payload for record in first.records] == [b"1", b"2"]
        proxy.cut()
        assert source.read(name, first.next).records == []  # away: nothing, and no hang
        proxy.start()
        _write(proxy.url, 1, prefix, [b"3"])
        found: list[bytes] = []
        for _ in range(40):
            found = [record.payload for record in source.read(name, first.next).records]
            if found:
                break
            time.sleep(0.25)
        assert found == [b"3"]
    finally:
        source.close()
