import asyncio

import pytest

from koppla.platform.spool.bounded import BoundedSink
from koppla.platform.spool.position import Position
from koppla.platform.spool.writer import SpoolClosed, SpoolFull


class Sink:
    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def append(self, payload: bytes) -> asyncio.Future[Position]:
        self.payloads.append(payload)
        done: asyncio.Future[Position] = asyncio.get_event_loop().create_future()
        done.set_result(Position(0, len(self.payloads)))
        return done

    def close(self) -> None:
        pass


def test_appends_are_refused_while_the_backlog_is_over_the_limit() -> None:
    waiting = [0]
    sink = Sink()
    bounded = BoundedSink(sink, lambda: waiting[0], 100, check_every_s=0.0)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        bounded.append(b"a")
        waiting[0] = 100
        with pytest.raises(SpoolFull) as refused:
            bounded.append(b"b")
        assert isinstance(refused.value, SpoolClosed) and refused.value.retry_after_s == 5
        assert "spool_max_backlog_bytes" in str(refused.value)
        waiting[0] = 99
        bounded.append(b"c")
    finally:
        loop.close()
    assert sink.payloads == [b"a", b"c"]  # the refused one was never written


def test_no_limit_never_measures() -> None:
    def measure() -> int:
        raise AssertionError("measured")

    sink = Sink()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        BoundedSink(sink, measure, 0).append(b"a")
    finally:
        loop.close()
    assert sink.payloads == [b"a"]
