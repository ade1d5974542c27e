"""A scalable Bloom filter: a compact "surely not / maybe" set of event ids that never fills up.

It is a list of fixed-size segments; when the newest holds its capacity, a new segment is
started, twice as large (or large enough for the ids being added) up to `MAX_CAPACITY`, so the
false-positive rate stays near `FALSE_POSITIVE_RATE` per segment however many ids are added. A
segment costs about 3.6 bytes per id it can hold, so a large filter costs about 3.6 bytes per id.
Lookups test every segment.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

FALSE_POSITIVE_RATE = 1e-6
"""The chance that one segment answers "maybe" for an id it does not hold."""

FIRST_CAPACITY = 65_536
"""Ids the first segment holds; each later segment holds twice as many as the one before."""

MAX_CAPACITY = 1 << 20
"""Ids one segment holds at most (3.6 MiB): beyond it, segments stop growing."""


@dataclass(slots=True)
class Segment:
    """One classic Bloom filter: `bits` of `size` bits, `hashes` positions per id."""

    capacity: int
    count: int
    hashes: int
    bits: bytearray

    @property
    def size(self) -> int:
        """The number of bits."""
        return len(self.bits) * 8

    @classmethod
    def empty(cls, capacity: int) -> Segment:
        """A segment sized for `capacity` ids at `FALSE_POSITIVE_RATE`."""
        size = math.ceil(-capacity * math.log(FALSE_POSITIVE_RATE) / math.log(2) ** 2)
        hashes = max(1, round(size / capacity * math.log(2)))
        return cls(capacity=capacity, count=0, hashes=hashes, bits=bytearray((size + 7) // 8))

    def add(self, key: bytes) -> None:
        """Set the bits of `key`."""
        self.add_hashed(*_hash(key))

    def add_hashed(self, position: int, step: int) -> None:
        """Set the bits of a key whose `_hash` is `(position, step)`."""
        bits, size = self.bits, len(self.bits) * 8
        for _ in range(self.hashes):
            position = (position + step) % size
            bits[position >> 3] |= 1 << (position & 7)
        self.count += 1

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self.holds_hashed(*_hash(key))

    def holds_hashed(self, position: int, step: int) -> bool:
        """Whether a key whose `_hash` is `(position, step)` may be in the segment."""
        bits, size = self.bits, len(self.bits) * 8
        for _ in range(self.hashes):
            position = (position + step) % size
            if not bits[position >> 3] & (1 << (position & 7)):
                return False
        return True


class BloomFilter:
    """Ids seen, as segments; `key in bloom` is False for sure or True maybe."""

    def __init__(self, segments: list[Segment] | None = None) -> None:
        self.segments = segments or []

    def add(self, keys: Sequence[bytes]) -> None:
        """Add `keys`, starting a new, larger segment whenever the newest one is full."""
        for done, key in enumerate(keys):
            newest = self.segments[-1] if self.segments else None
            if newest is None or newest.count >= newest.capacity:
                grown = newest.capacity * 2 if newest else FIRST_CAPACITY
                newest = Segment.empty(min(MAX_CAPACITY, max(grown, len(keys) - done)))
                self.segments.append(newest)
            newest.add_hashed(*_hash(key))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, bytes) or not self.segments:
            return False
        hashed = _hash(key)
        return any(segment.holds_hashed(*hashed) for segment in self.segments)

    def nbytes(self) -> int:
        """The bytes the filter's bits take."""
        return sum(len(segment.bits) for segment in self.segments)


def _hash(key: bytes) -> tuple[int, int]:
    """The start and step of `key`'s bit positions (double hashing over a 128-bit BLAKE2b)."""
    digest = hashlib.blake2b(key, digest_size=16).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little") | 1
