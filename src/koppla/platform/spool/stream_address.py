"""Where a RabbitMQ stream spool lives: the `spool_url`, the partitions' names and the fixed
arguments every process declares them with.

`rabbitmq-stream://USER:PASSWORD@HOST:5552/VHOST` (user, password and vhost percent-encoded; an
empty vhost is `/`). The log is split into `partitions` streams named `<prefix>-0` …
`<prefix>-<N-1>`; every edge and pipeline process declares them with the same `STREAM_ARGUMENTS`,
so whichever starts first creates them and the others find them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from koppla.core.errors import InvalidInput
from koppla.core.redact import redact

SCHEME = "rabbitmq-stream"
DEFAULT_PORT = 5552
DEFAULT_PREFIX = "koppla-spool"

STREAM_ARGUMENTS: dict[str, int | str] = {
    "max-age": "7D",
    "stream-max-segment-size-bytes": 500 * 1000**2,
}
"""Retention, per partition: the broker drops whole segments (500 MB each, its default size)
once everything in them is older than 7 days. Nothing is dropped by size: a pipeline that falls
behind never loses acknowledged records to retention (unless it is stopped for a week); a disk
that fills instead raises the broker's disk alarm, which blocks publishers, so the edges answer
503 and the SDKs retry. The arguments are fixed because a stream's arguments are set once, by
whoever declares it first."""


@dataclass(frozen=True, slots=True)
class StreamAddress:
    """The parts of a `rabbitmq-stream://` URL."""

    host: str
    port: int
    vhost: str
    username: str
    password: str = field(repr=False)

    @classmethod
    def parse(cls, url: str) -> StreamAddress:
        """Read `url`; `InvalidInput` when it is not a `rabbitmq-stream://` URL with a host."""
        parts = urlsplit(url)
        if parts.scheme != SCHEME or not parts.hostname:
            raise InvalidInput(
                f"not a {SCHEME}://USER:PASSWORD@HOST:{DEFAULT_PORT}/VHOST URL: "
                f"{redact(repr(url))}",
                field="spool_url",
            )
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        return cls(
            host=parts.hostname,
            port=parts.port or DEFAULT_PORT,
            vhost=vhost,
            username=unquote(parts.username or "guest"),
            password=unquote(parts.password or "guest"),
        )


def partition_names(partitions: int, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """The stream names of a log split into `partitions`: `<prefix>-0` …"""
    if partitions < 1:
        raise InvalidInput("a stream spool needs at least one partition", field="spool_partitions")
    return [f"{prefix}-{index}" for index in range(partitions)]


def resolve_partitions(partitions: int | Sequence[str], prefix: str = DEFAULT_PREFIX) -> list[str]:
    """The stream names for `partitions`: a count (named with `prefix`) or the names themselves."""
    if isinstance(partitions, int):
        return partition_names(partitions, prefix)
    names = list(partitions)
    if not names or len(set(names)) != len(names):
        raise InvalidInput(
            "a stream spool needs distinct partition names", field="spool_partitions"
        )
    return names
