"""The edge's rate limits: requests per client address and events per datastream.

Both are token buckets (`ratelimit.RateLimiter`); a rate of 0 turns one off. Client addresses in
the exempt networks (a local TLS proxy, a load test) skip the per-client limit only; a request
without a client address (a Unix socket) has only the per-datastream limit too.
"""

from __future__ import annotations

from koppla.platform.edge.limits import EdgeLimits, is_exempt
from koppla.platform.edge.ratelimit import MAX_KEYS, RateLimiter


class Throttle:
    """Decides whether the edge takes a request now, or in how many seconds."""

    def __init__(self, limits: EdgeLimits) -> None:
        self._limits = limits
        self._clients = RateLimiter(limits.client_rate) if limits.client_rate > 0 else None
        self._streams = RateLimiter(limits.datastream_rate) if limits.datastream_rate > 0 else None
        self._exempt: dict[str, bool] = {}

    def client_wait(self, address: str | None) -> int:
        """Charge one request to `address`: 0 if allowed, else seconds to wait."""
        if self._clients is None or not address or self._is_exempt(address):
            return 0
        return self._clients.take(address)

    def datastream_wait(self, datastream_id: str, events: int) -> int:
        """Charge `events` events to a datastream: 0 if allowed, else seconds to wait."""
        if self._streams is None:
            return 0
        return self._streams.take(datastream_id, max(1, events))

    def _is_exempt(self, address: str) -> bool:
        known = self._exempt.get(address)
        if known is None:
            if len(self._exempt) >= MAX_KEYS:
                self._exempt.clear()
            known = self._exempt[address] = is_exempt(address, self._limits.rate_exempt)
        return known
