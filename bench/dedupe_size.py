"""Dedupe index size: bytes per million event ids, before and after bounding it.

Issue [4/12] hardening, item 9.

What it measures, for `--ids` random UUID event ids (default one million), scaled to a million:

- before: the unbounded index (every `_id` ever stored, one SQLite row each, as Koppla kept it
  until the dedupe window existed);
- after, ids inside the window: the exact part (SQLite, each id with the time it was added);
- after, ids older than the window: what the same ids cost once pruned into the Bloom filter
  (the exact part is then empty; an id the filter may hold is confirmed in the dataset).

Steady state is `window * rate` ids at the "inside" cost plus every older id at the "older" cost.
It prints its figures and asserts nothing.

Run:  python bench/dedupe_size.py [--ids 1000000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from koppla.platform.datasets.bloom import MAX_CAPACITY, Segment
from koppla.platform.datasets.dedupe import DAY_MS, DedupeIndex


def ids(count: int) -> list[bytes]:
    """`count` random UUID ids, as the index stores them (16 bytes each)."""
    return [os.urandom(16) for _ in range(count)]


def before(path: Path, keys: list[bytes]) -> int:
    """Bytes on disk of the unbounded index (the schema Koppla used before) holding `keys`."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE ids (k BLOB PRIMARY KEY) WITHOUT ROWID")
    db.execute("BEGIN")
    db.executemany("INSERT OR IGNORE INTO ids VALUES (?)", ((k,) for k in keys))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path.stat().st_size


def after(path: Path, keys: list[bytes]) -> tuple[int, int, float]:
    """Bytes with `keys` inside the window, bytes once they are older, and seconds to prune."""
    now = [1_700_000_000_000]
    index = DedupeIndex(path, lookup=lambda found: set(), window_ms=7 * DAY_MS, now=lambda: now[0])
    index.add(str(_uuid(k)) for k in keys)
    inside = index.nbytes()
    now[0] += 8 * DAY_MS
    began = time.perf_counter()
    while index.prune():
        pass
    took = time.perf_counter() - began
    older = index.nbytes()
    index.close()
    return inside, older, took


def _uuid(key: bytes) -> str:
    import uuid

    return str(uuid.UUID(bytes=key))


def main() -> None:
    """Print bytes per million ids, before and after."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=1_000_000)
    count = parser.parse_args().ids
    keys = ids(count)
    per_million = 1_000_000 / count
    with tempfile.TemporaryDirectory() as directory:
        old = before(Path(directory) / "before.sqlite", keys)
        inside, older, took = after(Path(directory) / "after.sqlite", keys)
    print(f"ids: {count:,}")
    print(f"before (unbounded, every id ever):   {old * per_million / 1e6:8.1f} MB per million")
    print(f"after, ids inside the window:        {inside * per_million / 1e6:8.1f} MB per million")
    print(f"after, ids older than the window:    {older * per_million / 1e6:8.1f} MB per million")
    full = len(Segment.empty(MAX_CAPACITY).bits) * 1_000_000 / MAX_CAPACITY
    print(f"after, older ids, full filter:       {full / 1e6:8.1f} MB per million (the limit)")
    print(f"prune of {count:,} ids into the filter: {took:.1f} s")


if __name__ == "__main__":
    main()
