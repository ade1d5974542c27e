"""The one clock: wall time and monotonic time for every module (tests can pin it)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def now_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


def monotonic() -> float:
    """Seconds on a clock that never goes back; for intervals only."""
    return time.monotonic()


def from_ms(epoch_ms: int) -> datetime:
    """The UTC moment `epoch_ms` milliseconds after the Unix epoch."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def iso(moment: datetime) -> str:
    """RFC 3339 text with milliseconds and a `Z` suffix, as XDM writes timestamps."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_ms(epoch_ms: int | None) -> str | None:
    """`iso` of an epoch-milliseconds time; None stays None."""
    return None if epoch_ms is None else iso(from_ms(epoch_ms))
