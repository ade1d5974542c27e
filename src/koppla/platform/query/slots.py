"""Query slots: at most N queries run at once; one that finds no slot free soon is turned away.

Queries of one organization may take all but one slot (`N - 1`, when N > 1), so no tenant can
lock the others out. A slot is released when its query ends, or earlier by `Slot.release`
(a streamed query whose time limit fired gives its slot back at once, even while its reader
still holds the stream open).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from koppla.platform.query.errors import QueryBusy


class Slot:
    """One held slot; `release` is idempotent and safe from any thread."""

    def __init__(self, semaphores: list[threading.BoundedSemaphore]) -> None:
        self._semaphores = semaphores
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        """Give the slot back (once)."""
        with self._lock:
            if not self._held:
                return
            self._held = False
        for semaphore in self._semaphores:
            semaphore.release()


class QuerySlots:
    """A bounded number of concurrent queries; safe to share between threads."""

    def __init__(self, size: int, *, wait_s: float) -> None:
        """Allow `size` queries at once (`size - 1` of one key, when `size` > 1); a query
        waits at most `wait_s` for a free slot."""
        if size < 1:
            raise ValueError(f"query slots must be at least 1, got {size}")
        self._size = size
        self._per_key = size - 1
        self._wait_s = wait_s
        self._free = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._keys: dict[Hashable, threading.BoundedSemaphore] = {}

    @contextmanager
    def hold(self, key: Hashable | None = None) -> Iterator[Slot]:
        """Hold one slot for the block (of `key`'s share when given, such as an organization
        and sandbox); raise `QueryBusy` when none frees up within the wait."""
        taken: list[threading.BoundedSemaphore] = []
        if key is not None and self._per_key > 0:
            own = self._share(key)
            if not own.acquire(timeout=self._wait_s):
                raise self._busy(f"this organization's {self._per_key} query slots")
            taken.append(own)
        if not self._free.acquire(timeout=self._wait_s):
            for semaphore in taken:
                semaphore.release()
            raise self._busy(f"all {self._size} query slots")
        slot = Slot([self._free, *taken])
        try:
            yield slot
        finally:
            slot.release()

    def _share(self, key: Hashable) -> threading.BoundedSemaphore:
        with self._lock:
            own = self._keys.get(key)
            if own is None:
                own = self._keys[key] = threading.BoundedSemaphore(self._per_key)
            return own

    def _busy(self, which: str) -> QueryBusy:
        return QueryBusy(
            f"too many queries at once: {which} (query_max_concurrent) stayed busy for "
            f"{self._wait_s:g} s; try again shortly",
            retry_after_s=max(1, math.ceil(self._wait_s)),
        )
