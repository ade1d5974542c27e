"""Query slots: at most N queries run at once; one that finds no slot free soon is turned away."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from koppla.platform.query.errors import QueryBusy


class QuerySlots:
    """A bounded number of concurrent queries; safe to share between threads."""

    def __init__(self, size: int, *, wait_s: float) -> None:
        """Allow `size` queries at once; a query waits at most `wait_s` for a free slot."""
        if size < 1:
            raise ValueError(f"query slots must be at least 1, got {size}")
        self._size = size
        self._wait_s = wait_s
        self._free = threading.BoundedSemaphore(size)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold one slot for the block; raise `QueryBusy` when none frees up within the wait."""
        if not self._free.acquire(timeout=self._wait_s):
            raise QueryBusy(
                f"too many queries at once: all {self._size} query slots "
                f"(query_max_concurrent) stayed busy for {self._wait_s:g} s; try again shortly",
                retry_after_s=max(1, math.ceil(self._wait_s)),
            )
        try:
            yield
        finally:
            self._free.release()
