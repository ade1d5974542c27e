"""The queue message of one history chunk: which sync, which chunk, which order ids."""

from __future__ import annotations

from dataclasses import dataclass

from koppla.core import codec
from koppla.core.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class ChunkMessage:
    """One chunk of one sync: the ledger holds the rest (the sync's range and datasets)."""

    request_id: str
    no: int
    first_id: int
    last_id: int

    def encode(self) -> bytes:
        """The message body (JSON)."""
        return codec.dumps(
            {
                "request": self.request_id,
                "chunk": self.no,
                "first": self.first_id,
                "last": self.last_id,
            }
        )

    @classmethod
    def decode(cls, body: bytes) -> ChunkMessage:
        """Read a message body; `InvalidInput` when it is not one of ours."""
        try:
            data = codec.loads(body)
            return cls(
                str(data["request"]), int(data["chunk"]), int(data["first"]), int(data["last"])
            )
        except (codec.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise InvalidInput(f"not a history chunk message: {error}") from None
