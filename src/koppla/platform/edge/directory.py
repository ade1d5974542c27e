"""The edge's view of the datastreams: an in-memory copy of the catalog, refreshed cheaply."""

from __future__ import annotations

from koppla.core import clock
from koppla.core.errors import NotFound
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog

REFRESH_S = 2.0
NEGATIVE_TTL_S = 1.0
NEGATIVE_MAX = 10_000


class DatastreamDirectory:
    """Finds datastreams by id without a database round trip per request.

    The whole list is reloaded every couple of seconds; an id not in memory is looked up once in
    the catalog (so a datastream works the moment it is created) and remembered as unknown for a
    second, so a flood of bogus ids costs one lookup per id per second at most.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._streams: dict[str, Datastream] = {}
        self._unknown: dict[str, float] = {}
        self._loaded_at = -1e9
        self.refresh()

    def refresh(self) -> None:
        """Reload the datastreams from the catalog."""
        self._streams = {stream.id: stream for stream in self._catalog.datastreams()}
        self._loaded_at = clock.monotonic()

    def get(self, datastream_id: str) -> Datastream | None:
        """The datastream, or None."""
        now = clock.monotonic()
        if now - self._loaded_at > REFRESH_S:
            self.refresh()
        found = self._streams.get(datastream_id)
        if found is not None:
            return found
        if now - self._unknown.get(datastream_id, -1e9) < NEGATIVE_TTL_S:
            return None
        try:
            found = self._catalog.datastream(datastream_id)
        except NotFound:
            if len(self._unknown) >= NEGATIVE_MAX:
                self._unknown.clear()
            self._unknown[datastream_id] = now
            return None
        self._streams[datastream_id] = found
        return found
