"""The spool's on-disk framing: `[length u32][crc32 u32][payload]`, big-endian.

A frame whose length runs past the end of the file, or whose checksum does not match, marks the
end of the readable data (a torn write from a crash); nothing after it is trusted.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

HEADER = struct.Struct(">II")
MAX_PAYLOAD = 64 * 1024 * 1024


def encode(payload: bytes) -> bytes:
    """One frame holding `payload`."""
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def encode_all(payloads: list[bytes]) -> bytes:
    """The frames of `payloads`, back to back (each payload copied once)."""
    parts: list[bytes] = []
    for payload in payloads:
        parts.append(HEADER.pack(len(payload), zlib.crc32(payload)))
        parts.append(payload)
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Frame:
    """A payload read back, with the offset just past its frame."""

    payload: bytes
    end: int


def decode_all(buffer: bytes, start: int = 0) -> tuple[list[Frame], int, bool]:
    """Every whole, intact frame in `buffer` from `start`.

    Returns the frames, the offset where reading stopped, and whether it stopped at a corrupt
    frame (bad checksum or impossible length) rather than at a clean end or an incomplete tail.
    """
    frames: list[Frame] = []
    offset = start
    size = len(buffer)
    while offset + HEADER.size <= size:
        length, crc = HEADER.unpack_from(buffer, offset)
        if length > MAX_PAYLOAD:
            return frames, offset, True
        end = offset + HEADER.size + length
        if end > size:
            break
        payload = buffer[offset + HEADER.size : end]
        if zlib.crc32(payload) != crc:
            return frames, offset, True
        frames.append(Frame(payload, end))
        offset = end
    return frames, offset, False
