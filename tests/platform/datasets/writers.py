"""Concurrent writers of one Delta table: processes appending through `DeltaStore` at once.

Each writer is a spawned process with its own app transaction id (`koppla-pipeline/stream-<n>`),
as a pipeline worker reading one spool stream is. It commits `commits` small batches, skipping
what the table says it already holds (as the pipeline does after a restart); half-way, a writer
with `grows` ensures a schema with one more column (`note`), while the others keep appending
rows of the old shape. Every writer may do upkeep, so compactions race appends and each other.
At the end each looks its first rows up (`existing_ids`), as the pipeline's dedupe does.
Used by the storage tests and by `bench/delta_writers.py`.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier

import pyarrow as pa
from deltalake import DeltaTable

from koppla.platform.datasets.location import arrow_filesystem
from koppla.platform.datasets.storage import DeltaStore

ROWS_PER_COMMIT = 5
SCHEMA = pa.schema([pa.field("_id", pa.string()), pa.field("worker", pa.int64())])
GROWN = SCHEMA.append(pa.field("note", pa.string()))


@dataclass(frozen=True)
class Writer:
    """What one writer process does."""

    table: str
    options: dict[str, str] | None
    worker: int
    commits: int
    grows: bool = False
    compact_every: int = 1_000_000
    retention_hours: int = 1


@dataclass(frozen=True)
class Outcome:
    """What the writers did: their exit codes and how long the commits took together."""

    exit_codes: list[int | None]
    seconds: float


def app_id(worker: int) -> str:
    """The app transaction id of writer `worker`."""
    return f"koppla-pipeline/stream-{worker}"


def row_ids(worker: int, version: int) -> list[str]:
    """The `_id`s of the rows writer `worker` commits as app version `version`."""
    return [f"{worker}-{version}-{n}" for n in range(ROWS_PER_COMMIT)]


def write(spec: Writer, start: Barrier) -> None:
    """Commit `spec.commits` batches as app versions 1..commits (the body of a writer)."""
    store = DeltaStore(
        compact_every=spec.compact_every,
        storage_options=spec.options,
        retention_hours=spec.retention_hours,
    )
    start.wait()
    store.ensure(spec.table, SCHEMA)  # every writer at once: the table's creation races too
    for version in range(1, spec.commits + 1):
        grown = spec.grows and version > spec.commits // 2
        if grown:
            store.ensure(spec.table, GROWN)
        if store.committed_version(spec.table, app_id(spec.worker)) >= version:
            continue
        ids = row_ids(spec.worker, version)
        columns: dict[str, list[object]] = {"_id": list(ids), "worker": [spec.worker] * len(ids)}
        if grown:
            columns["note"] = [f"grown by {spec.worker}"] * len(ids)
        rows = pa.table(columns, schema=GROWN if grown else SCHEMA)
        store.append(
            spec.table, rows, app_id=app_id(spec.worker), version=version, metadata={"v": version}
        )
    first = row_ids(spec.worker, 1)
    if store.existing_ids(spec.table, [*first, "absent"]) != set(first):  # a dedupe lookup
        raise SystemExit(f"writer {spec.worker} does not find its first rows")


def run_writers(specs: list[Writer], *, timeout: float = 240) -> Outcome:
    """Run one spawned process per spec, released together; their exit codes and the time from
    release (all started) to the last one's end."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(specs) + 1)
    processes = [context.Process(target=write, args=(spec, start)) for spec in specs]
    for process in processes:
        process.start()
    start.wait(timeout)  # every writer has imported and built its store
    began = time.perf_counter()
    deadline = began + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.perf_counter()))
    seconds = time.perf_counter() - began
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
    return Outcome([process.exitcode for process in processes], seconds)


def stored_ids(table: str, options: dict[str, str] | None) -> list[str]:
    """Every `_id` in the table, duplicates kept."""
    delta = DeltaTable(table, storage_options=options)
    dataset = delta.to_pyarrow_dataset(filesystem=arrow_filesystem(table, options))
    return [str(value) for value in dataset.to_table(columns=["_id"]).column("_id").to_pylist()]
