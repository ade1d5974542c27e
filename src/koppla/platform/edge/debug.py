"""The live tap on the edge: what arrives for a datastream, for debuggers to watch.

Publishing costs one dictionary lookup when nobody watches a datastream. Each watcher has a
bounded queue; a watcher that falls behind loses the oldest items (and is told how many), the
edge never waits for it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

from koppla.core.envelope import EdgeRecord

QUEUE_SIZE = 1_000


@dataclass(frozen=True, slots=True)
class Tapped:
    """One request the edge handled, and what became of it (`spooled` or why not)."""

    record: EdgeRecord
    outcome: str


class Watcher:
    """One debugger's queue of tapped requests for one datastream."""

    def __init__(self, datastream_id: str) -> None:
        self.datastream_id = datastream_id
        self.queue: asyncio.Queue[Tapped] = asyncio.Queue(QUEUE_SIZE)
        self.lost = 0

    def offer(self, item: Tapped) -> None:
        """Queue `item`, dropping the oldest item when full."""
        if self.queue.full():
            self.queue.get_nowait()
            self.lost += 1
        self.queue.put_nowait(item)


class DebugHub:
    """Fans edge traffic out to the watchers of each datastream."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[Watcher]] = defaultdict(set)

    def watch(self, datastream_id: str) -> Watcher:
        """Start watching a datastream."""
        watcher = Watcher(datastream_id)
        self._watchers[datastream_id].add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        """Stop watching."""
        group = self._watchers.get(watcher.datastream_id)
        if group is not None:
            group.discard(watcher)
            if not group:
                del self._watchers[watcher.datastream_id]

    def publish(self, record: EdgeRecord, outcome: str) -> None:
        """Hand a handled request to the datastream's watchers, if any."""
        group = self._watchers.get(record.datastream_id)
        if group:
            item = Tapped(record, outcome)
            for watcher in group:
                watcher.offer(item)
