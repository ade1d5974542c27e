"""The spool on RabbitMQ Streams, for deployments past one machine (`spool_url`).

Edges append to a shared, replicated log instead of a local directory; pipeline workers on any
machine read it. The log is `spool_partitions` streams (`koppla-spool-0` …), each read by one
worker at a time, so the partitions bound how many workers share the load.

- `StreamSink` (`SpoolSink`, the edge): an append resolves once the broker confirmed it.
- `StreamSource` (`SpoolSource`, a pipeline worker): the partitions the worker holds, read from
  the offsets its cursors give.
- `stream_tails`: how far each partition has been written, for the backlog.

Needs the `rabbitmq_stream` plugin (port 5552) on RabbitMQ 3.9 or later. The client is `rstream`
(its protocol client only; see `stream_link`).
"""

from __future__ import annotations

from koppla.platform.spool.stream_address import (
    DEFAULT_PREFIX,
    STREAM_ARGUMENTS,
    StreamAddress,
    partition_names,
)
from koppla.platform.spool.stream_sink import PayloadTooLarge, StreamSink
from koppla.platform.spool.stream_source import StreamSource
from koppla.platform.spool.stream_tail import stream_tails

__all__ = [
    "DEFAULT_PREFIX",
    "STREAM_ARGUMENTS",
    "PayloadTooLarge",
    "StreamAddress",
    "StreamSink",
    "StreamSource",
    "partition_names",
    "stream_tails",
]
