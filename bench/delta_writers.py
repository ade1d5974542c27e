"""Concurrent Delta appends: commits/s into one table from several processes at once.

Each writer is a spawned process appending `--commits` small commits (5 rows, each with its own
app transaction, as a pipeline worker's commit carries) to the same table through `DeltaStore`,
with no upkeep during the run. Commits that lose to another writer are retried (delta-rs's own
rebase, then `DeltaStore.append`'s), so the figure includes the cost of contention. Runs on a
local directory and on S3-compatible storage (moto's server in a subprocess, needs
`moto[server]`), each with 1 writer (the baseline) and `--writers` writers, and checks that every
row is stored once. moto is an in-memory Flask server: its figures say how the commit protocol
behaves under contention, not what S3 itself would sustain. Timings on a shared machine are
noisy; run it more than once.

Run:  python bench/delta_writers.py [--writers 2] [--commits 100] [--s3-commits 40] [--no-s3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.platform.datasets

from tests.platform.datasets.object_store import ObjectStore, moto_missing, moto_server
from tests.platform.datasets.writers import ROWS_PER_COMMIT, Writer, run_writers, stored_ids


def measure(
    where: str, table: str, options: dict[str, str] | None, writers: int, commits: int
) -> None:
    """Run `writers` processes of `commits` commits each on `table` and print one line."""
    specs = [Writer(table, options, worker, commits) for worker in range(writers)]
    outcome = run_writers(specs, timeout=1800)
    total = writers * commits
    stored = stored_ids(table, options)
    whole = len(stored) == len(set(stored)) == total * ROWS_PER_COMMIT
    print(
        f"{where:6} writers={writers} commits={total:4} seconds={outcome.seconds:7.2f} "
        f"commits/s={total / outcome.seconds:7.1f} "
        f"exit={outcome.exit_codes} every row once={whole}",
        flush=True,
    )


@contextmanager
def _object_store(enabled: bool) -> Iterator[ObjectStore | None]:
    if not enabled:
        yield None
        return
    missing = moto_missing()
    if missing is not None:
        print(f"s3: skipped, {missing}")
        yield None
        return
    with moto_server() as store:
        yield store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--commits", type=int, default=100, help="per writer, local")
    parser.add_argument("--s3-commits", type=int, default=40, help="per writer, on moto")
    parser.add_argument("--no-s3", action="store_true", help="skip the object-store runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        for writers in (1, args.writers):
            table = str(Path(home) / f"events-{writers}")
            measure("local", table, None, writers, args.commits)
    with _object_store(not args.no_s3) as store:
        if store is not None:
            for writers in (1, args.writers):
                table = store.uri(f"bench/events-{writers}")
                measure("moto", table, store.options(), writers, args.s3_commits)


if __name__ == "__main__":
    main()
