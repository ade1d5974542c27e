"""What one partition's subscription has delivered and its reader has not yet passed.

A subscription starts at an offset and receives whole chunks, so the first chunk may begin
before that offset (those records are skipped) or after it (retention removed the records in
between: the gap is reported). A read from offset `a` is served from the buffer while `a` lies
between where the buffer starts and what it expects next; records before `a` are dropped then,
and the ones returned stay until a later read passes them, so a reader that took only part of
a read can ask again from the middle of it.

Pure state, no locking: the stream source guards it.
"""

from __future__ import annotations

from collections import deque


class PartitionBuffer:
    """Records of one partition from `start` on, in offset order."""

    def __init__(self, start: int) -> None:
        self.start = start
        """The lowest offset a read may ask for without a new subscription."""
        self.next = start
        """The offset the subscription delivers next."""
        self.size = 0
        """Bytes of payload held."""
        self._records: deque[tuple[int, bytes]] = deque()

    def covers(self, offset: int) -> bool:
        """True when a read from `offset` can be served from this buffer."""
        return self.start <= offset <= self.next

    def accept(self, first: int, payloads: list[bytes]) -> int:
        """Add a delivered chunk whose first record has offset `first`; returns how many
        offsets were missing before it (records the stream no longer holds)."""
        missing = max(0, first - self.next)
        for index, payload in enumerate(payloads):
            offset = first + index
            if offset < self.next:  # a chunk starts before the offset asked for
                continue
            self._records.append((offset, payload))
            self.size += len(payload)
            self.next = offset + 1
        return missing

    def take(self, offset: int, max_bytes: int) -> list[tuple[int, bytes]]:
        """Records from `offset` on, at most `max_bytes` of payload (at least one record);
        drops the records before `offset`, keeps the ones returned."""
        records = self._records
        while records and records[0][0] < offset:
            self.size -= len(records.popleft()[1])
        self.start = max(self.start, offset)
        taken: list[tuple[int, bytes]] = []
        size = 0
        for record in records:
            size += len(record[1])
            if taken and size > max_bytes:
                break
            taken.append(record)
        return taken

    def has_from(self, offset: int) -> bool:
        """True when a record at or after `offset` is held."""
        return bool(self._records) and self._records[-1][0] >= offset
