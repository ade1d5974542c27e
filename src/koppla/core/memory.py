"""Memory management for bulk work: pausing Python's cyclic garbage collector.

`cyclic_gc_paused()` switches the collector off for the WHOLE PROCESS (every thread), not only
for the code inside the `with` block: Python has one collector. Cycles created meanwhile, by
any thread, are collected only once it is back on. Use it around a bounded step that builds
many acyclic containers, never around a wait or a long-lived loop.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector, process-wide, for the block.

    A feed step builds millions of small containers (rows, snapshots, events) that form no
    cycles, so reference counting frees them; left on, the collector scans them again and again
    as they pile up, which costs about as much as building them. The collector is enabled
    again after, if it was on before (a nested pause leaves it to the outer one), so cycles made
    meanwhile anywhere in the process are collected then.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
