"""Pipeline throughput benchmark: how fast one pipeline process stores what the edge spooled.

For each run it builds a temp home with the demo datastream and datasets (as `koppla up --demo`
does), fills the local spool directly with `--events` realistic alloy events (the bodies
`loadgen.py` sends: page views, product views, add-to-cart, checkouts, purchases, category
pages), each request wrapped in the envelope the edge spools (`EdgeRecord`), then times
`Pipeline.step()` until the spool is drained. Two runs: one event per request, then `--batch`
events per request. For each it prints events stored per second and checks the count in the
`demo_events` Delta table (and that nothing went to the quarantine).

Filling the spool is not timed. Timings on a shared machine are noisy; run it more than once.

Run:  python bench/pipeline_throughput.py [--events 100000] [--batch 50] [--profile]
      --profile runs the drain under cProfile and prints the top 25 by cumulative and by tottime.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import os
import pstats
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from deltalake import DeltaTable

from koppla.core import envelope
from koppla.core.envelope import EdgeRecord
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.store import Catalog
from koppla.platform.pipeline.gc_pause import paused_gc
from koppla.platform.pipeline.runner import Pipeline
from koppla.platform.schemas.registry import home_registry
from koppla.platform.spool.writer import SpoolWriter
from loadgen import BodyFactory

ORIGIN = "https://shop.koppla.test"
SEGMENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class RunResult:
    """What one run measured."""

    label: str
    requests: int
    events: int
    spool_bytes: int
    seconds: float
    cpu_seconds: float
    steps: int
    stored: int
    quarantined: int

    @property
    def rate(self) -> float:
        """Events stored per second of draining."""
        return self.stored / self.seconds if self.seconds else 0.0


def demo_home(home: Path) -> tuple[Settings, str, str]:
    """A fresh home with the demo datastream; its settings, datastream id and event dataset id."""
    from koppla.cli.demo import ensure_demo_stream

    settings = Settings.load(home=home)
    home.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(Layout(home).catalog)
    try:
        stream = ensure_demo_stream(settings, catalog)
    finally:
        catalog.close()
    return settings, stream.id, stream.event_dataset_id


def spooled_requests(
    datastream: str, org_id: str, requests: int, batch: int, tag: str
) -> list[bytes]:
    """`requests` envelopes as the edge spools them, each around a body of `batch` events."""
    bodies = BodyFactory(batch, tag)
    now = int(time.time() * 1000)
    out = []
    for index in range(requests):
        record = EdgeRecord(
            received_ms=now + index // 100,
            datastream_id=datastream,
            org_id=org_id,
            ecid=f"{index % 5000:038d}",
            request_id=f"{tag}-{index:08x}-0000-4000-8000-000000000000",
            origin=ORIGIN,
            kind="interact",
            body=bodies.next_body(),
        )
        out.append(envelope.encode(record))
    return out


def fill_spool(layout: Layout, payloads: list[bytes]) -> int:
    """Append `payloads` to a spool stream as the edge does (without fsync); the bytes written."""

    async def write() -> None:
        writer = SpoolWriter(layout.spool, segment_bytes=SEGMENT_BYTES, fsync=False)
        try:
            for start in range(0, len(payloads), 1000):
                await asyncio.gather(*(writer.append(p) for p in payloads[start : start + 1000]))
        finally:
            writer.close()

    asyncio.run(write())
    return sum(len(p) for p in payloads)


def drain(pipeline: Pipeline, *, pause_gc: bool = False) -> int:
    """Step `pipeline` until a step finds nothing; the number of steps that did work.

    `pause_gc` holds Python's cyclic collector off during each step (`paused_gc`), as the
    pipeline does once its step is wrapped in it (kept here so that the same flag measures
    an older Koppla too).
    """
    steps = 0
    while True:
        with paused_gc() if pause_gc else nullcontext():
            if not pipeline.step():
                return steps
        steps += 1


def count_rows(path: Path) -> int:
    """Rows in the Delta table at `path`."""
    return int(DeltaTable(str(path)).to_pyarrow_dataset().count_rows())


def run(label: str, events: int, batch: int, args: argparse.Namespace) -> RunResult:
    """One run: fresh home, spool filled with `events` events in requests of `batch`, drained."""
    with tempfile.TemporaryDirectory(prefix="koppla-pipebench-") as tmp:
        home = Path(tmp) / "home"
        settings, datastream, dataset_id = demo_home(home)
        layout = Layout(home)
        catalog = Catalog(layout.catalog)
        org_id = catalog.datastream(datastream).org_id
        requests = max(1, events // batch)
        payloads = spooled_requests(
            datastream, org_id, requests, batch, f"{batch:x}{os.getpid():x}"
        )
        spool_bytes = fill_spool(layout, payloads)
        del payloads
        registry = home_registry(layout)
        pipeline = Pipeline(
            layout,
            catalog,
            registry,
            max_events=args.max_events or settings.pipeline_max_events,
            flush_ms=settings.pipeline_flush_ms,
            compact_every=settings.compact_every_commits,
            dedupe_window_days=settings.dedupe_window_days,
        )
        profiler = cProfile.Profile() if args.profile else None
        try:
            began, cpu_began = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            steps = drain(pipeline, pause_gc=args.pause_gc)
            if profiler is not None:
                profiler.disable()
            seconds = time.perf_counter() - began
            cpu_seconds = time.process_time() - cpu_began
        finally:
            pipeline.close()
            registry.close()
            catalog.close()
        stored = count_rows(layout.dataset(dataset_id))
        quarantined = count_rows(layout.quarantine)
        if profiler is not None:
            print_profile(label, profiler)
        return RunResult(
            label,
            requests,
            requests * batch,
            spool_bytes,
            seconds,
            cpu_seconds,
            steps,
            stored,
            quarantined,
        )


def print_profile(label: str, profiler: cProfile.Profile) -> None:
    """The top 25 functions by cumulative and by own time."""
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(order).print_stats(25)
        print(f"\n--- profile {label}: top 25 by {order} ---")
        print(_trim(out.getvalue()))


def _trim(text: str) -> str:
    """The table part of a pstats report (without its preamble lines)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line for line in lines[start:] if line.strip())


def report(result: RunResult) -> str:
    """One plain-text line per run, and whether the table holds every event."""
    ok = result.stored == result.events and result.quarantined == 0
    verdict = "OK" if ok else "MISMATCH"
    return (
        f"{result.label:<22} {result.requests:>8} req {result.events:>8} ev "
        f"{result.spool_bytes / 1e6:>7.1f} MB  drained in {result.seconds:6.2f} s "
        f"({result.steps} steps, {result.cpu_seconds:.2f} s cpu)  "
        f"{result.rate:>9,.0f} events/s stored  "
        f"table {result.stored} quarantine {result.quarantined}  {verdict}"
    )


def main() -> None:
    """Parse arguments, run the two runs, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per run")
    parser.add_argument("--batch", type=int, default=50, help="events per request, second run")
    parser.add_argument(
        "--max-events", type=int, default=0, help="pipeline_max_events (default: the setting)"
    )
    parser.add_argument("--only", choices=("single", "batched"), help="run one of the two runs")
    parser.add_argument("--profile", action="store_true", help="cProfile the drain")
    parser.add_argument(
        "--pause-gc", action="store_true", help="hold the cyclic GC off during each step"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, pid {os.getpid()}")
    runs = [("single (1/request)", 1), (f"batched ({args.batch}/request)", args.batch)]
    if args.only:
        runs = [runs[0] if args.only == "single" else runs[1]]
    failed = False
    for label, batch in runs:
        result = run(label, args.events, batch, args)
        print(report(result), flush=True)
        failed |= result.stored != result.events
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
