"""Python's cyclic garbage collector held off while a pipeline step runs.

A step builds and drops hundreds of thousands of small objects (decoded events, records, rows),
all freed by reference counting as soon as the step is done. While they are alive the collector
keeps walking them, again and again, looking for cycles that are not there: about a quarter of
a step's time (see docs/benchmarks.md). Held off for the step, it catches up after it, on what
is still alive then.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic collector for the block; re-enable it after, if it was enabled.

    Nests: an inner pause leaves the collector as the outer one set it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
