"""Token buckets by key (client address, datastream): O(1) per request, bounded memory.

Each key's bucket holds up to `burst` tokens and refills at `rate` tokens per second; a request
takes `cost` tokens or is refused with the seconds until it would fit. Idle buckets are full, so
forgetting them changes nothing; when the table reaches `max_keys`, full buckets are swept out
(and, if none are, the oldest half), so a flood of distinct keys cannot grow memory.
"""

from __future__ import annotations

import math

from koppla.core import clock

MAX_KEYS = 100_000
BURST_SECONDS = 2.0


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """Token buckets of `rate` per second and a burst of `BURST_SECONDS` worth, one per key."""

    def __init__(self, rate: float, *, max_keys: int = MAX_KEYS) -> None:
        if rate <= 0:
            raise ValueError("a rate limit needs a positive rate")
        self.rate = rate
        self.burst = rate * BURST_SECONDS
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, cost: float = 1.0) -> int:
        """Take `cost` tokens from `key`'s bucket: 0 if allowed, else whole seconds to wait (≥1).

        A cost above the burst is charged as the burst, so it passes once the bucket is full.
        """
        now = clock.monotonic()
        cost = min(cost, self.burst)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._sweep(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0
        return max(1, math.ceil((cost - bucket.tokens) / self.rate))

    def _sweep(self, now: float) -> None:
        """Forget buckets that have refilled; if none have, the oldest half."""
        idle = now - BURST_SECONDS
        self._buckets = {k: b for k, b in self._buckets.items() if b.stamp > idle}
        if len(self._buckets) >= self._max_keys:
            keep = list(self._buckets.items())[len(self._buckets) // 2 :]
            self._buckets = dict(keep)
