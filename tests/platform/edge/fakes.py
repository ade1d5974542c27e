"""In-process stand-ins for the edge's tests: a clock, a spool, a valid event."""

from __future__ import annotations

import asyncio
from typing import Any

from koppla.platform.spool.position import Position


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MemorySpool:
    """A spool sink that keeps what it is given."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def append(self, payload: bytes) -> asyncio.Future[Position]:
        self.payloads.append(payload)
        done: asyncio.Future[Position] = asyncio.get_running_loop().create_future()
        done.set_result(Position(0, len(self.payloads)))
        return done

    def close(self) -> None:
        """Nothing to release."""


def page_view(name: str = "home", **extra: Any) -> dict[str, Any]:
    """A valid page-view event."""
    xdm = {
        "eventType": "web.webpagedetails.pageViews",
        "timestamp": "2026-12-01T10:00:00Z",
        "web": {"webPageDetails": {"name": name}},
        **extra,
    }
    return {"xdm": xdm}
