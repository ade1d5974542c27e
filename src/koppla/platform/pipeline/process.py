"""The pipeline as its own process: one per home, held by a lock, gone when its parent goes.

While it runs it keeps its heartbeat file current (`Layout.pipeline_health`). A failure of the
stream itself (the spool, a Delta commit, the catalog) is written to the heartbeat at once and
ends the process with a non-zero exit; the supervisor restarts it with backoff and the restart
replays exactly what was not stored. Failures of single records never get here: the pipeline
quarantines them and goes on.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
from pathlib import Path

from koppla.core.layout import Layout
from koppla.core.lifecycle import child_stop_event
from koppla.core.settings import Settings
from koppla.platform.batches.ingest import BatchOptions
from koppla.platform.catalog.opening import open_catalog
from koppla.platform.datasets.dedupe import DAY_MS
from koppla.platform.datasets.location import table_location
from koppla.platform.pipeline.heartbeat import Heartbeat
from koppla.platform.pipeline.runner import Pipeline
from koppla.platform.pipeline.shared import SharedState
from koppla.platform.schemas.registry import home_registry
from koppla.platform.spool.ports import SpoolSource

log = logging.getLogger(__name__)


def hold_lock(path: Path) -> int:
    """Block until this process holds the pipeline lock of a home; returns the lock's fd."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def run(settings: Settings, stop: threading.Event) -> None:
    """Run the pipeline for `settings.home` until `stop` is set.

    Raises what stopped the stream, after writing it to the heartbeat file.
    """
    layout = Layout(settings.home)
    # The embedded spool has one reader per home; workers of a shared log exclude each other
    # per partition (`pipeline.shared.Leases`) and each keeps a heartbeat file of its own.
    shared = bool(settings.spool_url) and settings.role == "pipeline"
    lock = None if shared else hold_lock(layout.pipeline_state / "lock")
    heartbeat = Heartbeat(
        worker_health(layout, worker_name()) if shared else layout.pipeline_health
    )
    beating = threading.Event()
    heartbeat.start_every(beating)
    try:
        _pipeline(settings, layout, stop, heartbeat)
    except Exception as error:
        log.exception("the pipeline stopped; it will be restarted")
        heartbeat.failed(error)
        raise
    finally:
        beating.set()
        if lock is not None:
            os.close(lock)


def worker_name() -> str:
    """This process's name among the workers of a shared log: host and pid."""
    return f"{socket.gethostname()}-{os.getpid()}"


def worker_health(layout: Layout, worker: str) -> Path:
    """The heartbeat file of one worker of a shared log."""
    return layout.pipeline_state / "workers" / f"{worker}.json"


def _pipeline(settings: Settings, layout: Layout, stop: threading.Event, beat: Heartbeat) -> None:
    """Build the pipeline and run it until `stop` is set, reporting progress to `beat`."""
    catalog = open_catalog(settings)
    registry = home_registry(layout, settings.catalog_url)
    shared: SharedState | None = None
    source: SpoolSource | None = None
    if settings.spool_url:  # imported here: the embedded default never loads the stream client
        from koppla.platform.spool.rabbit_stream import StreamSource, partition_names

        names = partition_names(settings.spool_partitions)
        shared = SharedState(settings.catalog_url, worker_name(), names)
        source = StreamSource(settings.spool_url, names, owned=shared.leases.held)
    try:
        pipeline = Pipeline(
            layout,
            catalog,
            registry,
            max_events=settings.pipeline_max_events,
            flush_ms=settings.pipeline_flush_ms,
            compact_every=settings.compact_every_commits,
            dedupe_window_days=settings.dedupe_window_days,
            batch_options=batch_options(settings),
            source=source,
            shared=shared,
            location=table_location(settings),
            retention_hours=settings.vacuum_retention_hours,
        )
        try:
            pipeline.run(stop, on_progress=beat.progress)
        finally:
            pipeline.close()
    finally:
        if source is not None:
            source.close()
        if shared is not None:
            shared.close()
        registry.close()
        catalog.close()


def batch_options(settings: Settings) -> BatchOptions:
    """How the pipeline processes ingestion batches, per `settings`."""
    return BatchOptions(
        rows_per_step=settings.batch_rows_per_step,
        commit_rows=settings.batch_commit_rows,
        max_failed_ratio=settings.batch_max_failed_ratio,
        max_depth=settings.batch_max_depth,
        diagnostics_ms=round(settings.batch_diagnostics_days * DAY_MS),
        max_document_bytes=settings.batch_max_document_bytes,
    )


def main(settings_json: str, parent_pid: int) -> None:
    """Entry point of the pipeline child process; exits when the parent process is gone."""
    settings = Settings.model_validate_json(settings_json)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s pipeline %(levelname)s %(message)s"
    )
    stop = child_stop_event(parent_pid, "pipeline")
    run(settings, stop)
