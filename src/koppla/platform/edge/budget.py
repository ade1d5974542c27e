"""How much each datastream added to the quarantine in the last hour, seen from the edge.

The pipeline counts quarantined records in the catalog counter `quarantined` per datastream. The
edge reads that counter at most every `REFRESH_S` seconds per datastream and keeps a sample a
minute, so "the last hour" is a rolling window (counted from when this edge process first saw the
datastream, for its first hour).
"""

from __future__ import annotations

from collections import deque

from koppla.core import clock
from koppla.platform.catalog.store import Catalog

QUARANTINED = "quarantined"
REFUSED = "refusedByQuarantineLimit"
REFRESH_S = 2.0
SAMPLE_S = 60.0
WINDOW_S = 3600.0


class _Window:
    __slots__ = ("checked", "samples", "value")

    def __init__(self, now: float, value: int) -> None:
        self.checked = now
        self.value = value
        self.samples: deque[tuple[float, int]] = deque([(now, value)])

    def update(self, now: float, value: int) -> None:
        self.checked = now
        self.value = value
        if now - self.samples[-1][0] >= SAMPLE_S:
            self.samples.append((now, value))
        while len(self.samples) > 1 and now - self.samples[1][0] >= WINDOW_S:
            self.samples.popleft()

    def added(self) -> int:
        return self.value - self.samples[0][1]


class QuarantineBudget:
    """Tells whether a datastream put more than `hourly_limit` records in quarantine this hour."""

    def __init__(self, catalog: Catalog, hourly_limit: int) -> None:
        self._catalog = catalog
        self._limit = hourly_limit
        self._windows: dict[str, _Window] = {}

    def added_last_hour(self, datastream_id: str) -> int:
        """Records the datastream added to the quarantine in the last hour (about)."""
        now = clock.monotonic()
        window = self._windows.get(datastream_id)
        if window is None:
            window = self._windows[datastream_id] = _Window(now, self._read(datastream_id))
        elif now - window.checked >= REFRESH_S:
            window.update(now, self._read(datastream_id))
        return window.added()

    def exceeded(self, datastream_id: str) -> bool:
        """True when the datastream is over its hourly quarantine budget (never with limit 0)."""
        return self._limit > 0 and self.added_last_hour(datastream_id) > self._limit

    def count_refused(self, datastream_id: str, events: int) -> None:
        """Count events refused at the edge because the datastream was over its budget."""
        self._catalog.add_to_counter(datastream_id, REFUSED, events)

    def _read(self, datastream_id: str) -> int:
        return self._catalog.counters(datastream_id).get(QUARANTINED, 0)
