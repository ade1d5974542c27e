"""How far the pipeline workers are behind the edges on a shared log: records written to each
partition (the broker's tail) past the partition's cursor (PostgreSQL).

Asking costs a broker round trip and a query, so a daemon thread asks once per `every_s` and
keeps the answer: the edge's backpressure and the health check read it without waiting. The
thread starts on the first read, so a process that never asks never runs it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import psycopg

from koppla.core import clock
from koppla.core.redact import redact
from koppla.platform.pipeline.shared import pg_conninfo
from koppla.platform.spool.position import Position

log = logging.getLogger(__name__)


class LogBacklog:
    """Records waiting per partition of the shared log, refreshed in the background."""

    def __init__(
        self, spool_url: str, catalog_url: str, partitions: list[str], *, every_s: float = 1.0
    ) -> None:
        self._spool_url, self._catalog_url = spool_url, catalog_url
        self._partitions, self._every_s = partitions, every_s
        self._lock = threading.Lock()
        self._waiting: dict[str, int] = {}
        self._measured_ms: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def waiting(self) -> dict[str, int]:
        """Records waiting per partition as last measured (empty before the first measure)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="koppla-log-backlog", daemon=True
                )
                self._thread.start()
            return dict(self._waiting)

    def total(self) -> int:
        """Records waiting in every partition together, as last measured."""
        return sum(self.waiting().values())

    @property
    def measured_ms(self) -> int | None:
        """When the last measure was taken (epoch ms), None before the first."""
        return self._measured_ms

    def measure(self) -> dict[str, int]:
        """Ask the broker and the database now (blocking)."""
        from koppla.platform.spool.rabbit_stream import stream_tails

        tails = stream_tails(self._spool_url, self._partitions)
        rows: list[Any] = []
        with (
            psycopg.connect(pg_conninfo(self._catalog_url), connect_timeout=5) as conn,
            contextlib.suppress(psycopg.errors.UndefinedTable),  # no worker has run yet
        ):
            rows = conn.execute(
                "SELECT stream, position FROM pipeline_cursors WHERE stream = ANY(%s)",
                (self._partitions,),
            ).fetchall()
        cursors = {str(stream): Position.unpack(int(packed)).pack() for stream, packed in rows}
        return {name: max(0, tail - cursors.get(name, 0)) for name, tail in tails.items()}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                found = self.measure()
            except Exception as error:  # the broker or the database away: keep the last answer
                log.warning("the shared log's backlog cannot be measured: %s", redact(str(error)))
            else:
                with self._lock:
                    self._waiting = found
                    self._measured_ms = clock.now_ms()
            self._stop.wait(self._every_s)

    def close(self) -> None:
        """Stop measuring."""
        self._stop.set()
