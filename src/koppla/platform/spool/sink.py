"""Which spool the edge writes to: the home's spool directory, or the shared log of `spool_url`."""

from __future__ import annotations

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.spool.ports import SpoolSink
from koppla.platform.spool.writer import SpoolWriter


def open_sink(settings: Settings) -> SpoolSink:
    """The spool sink for `settings`: a RabbitMQ stream log when `spool_url` is set (every edge
    of a deployment writes to it), else a stream of the local spool directory of this process."""
    if settings.spool_url:  # imported here: the embedded default never loads the stream client
        from koppla.platform.spool.rabbit_stream import StreamSink, partition_names

        return StreamSink(settings.spool_url, partition_names(settings.spool_partitions))
    return SpoolWriter(
        Layout(settings.home).spool,
        segment_bytes=settings.spool_segment_bytes,
        fsync=settings.spool_fsync,
    )
