"""A bare PostgreSQL protocol client for tests that need messages no driver sends."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field


def message(kind: bytes, body: bytes = b"") -> bytes:
    """One typed message."""
    return kind + struct.pack("!i", len(body) + 4) + body


def cstr(text: str) -> bytes:
    """A NUL-terminated UTF-8 string."""
    return text.encode() + b"\x00"


def query(sql: str) -> bytes:
    """A simple-protocol Query."""
    return message(b"Q", cstr(sql))


def parse(name: str, sql: str) -> bytes:
    """Parse `sql` as statement `name`, no parameter types."""
    return message(b"P", cstr(name) + cstr(sql) + struct.pack("!h", 0))


def bind(portal: str, statement: str) -> bytes:
    """Bind `statement` without parameters to `portal`."""
    return message(b"B", cstr(portal) + cstr(statement) + struct.pack("!hhh", 0, 0, 0))


def execute(portal: str, max_rows: int = 0) -> bytes:
    """Execute `portal` for at most `max_rows` rows (0: all)."""
    return message(b"E", cstr(portal) + struct.pack("!i", max_rows))


SYNC = message(b"S")


@dataclass
class Reply:
    """What the server sent up to ReadyForQuery: message kinds, and errors' SQLSTATE → text."""

    kinds: list[bytes] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def codes(self) -> list[str]:
        """The SQLSTATEs of the errors, in order."""
        return [code for code, _ in self.errors]


class Client:
    """A plaintext connection (loopback only) that logs in and reads whole messages."""

    def __init__(self, port: int, user: str, password: str, *, source: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=60, source_address=(source, 0)
        )
        self.startup(user)
        kind, _ = self.read()
        assert kind == b"R", kind
        self.send(message(b"p", cstr(password)))
        reply = self.until_ready()
        assert not reply.errors, reply.errors

    def startup(self, user: str) -> None:
        """Send the startup packet."""
        body = struct.pack("!i", 196608) + cstr("user") + cstr(user)
        body += cstr("database") + cstr("prod:all") + b"\x00"
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)

    def send(self, *messages: bytes) -> None:
        """Send messages."""
        self.sock.sendall(b"".join(messages))

    def read(self) -> tuple[bytes, bytes]:
        """The next message: kind and body; `EOFError` when the server closed."""
        kind, length = struct.unpack("!ci", self._exactly(5))
        return kind, self._exactly(length - 4)

    def until_ready(self) -> Reply:
        """Messages up to ReadyForQuery."""
        reply = Reply()
        while True:
            kind, body = self.read()
            reply.kinds.append(kind)
            if kind == b"E":
                reply.errors.append(error_of(body))
            if kind == b"Z":
                return reply

    def until_closed(self) -> Reply:
        """Messages until the server closes the connection."""
        reply = Reply()
        try:
            while True:
                kind, body = self.read()
                reply.kinds.append(kind)
                if kind == b"E":
                    reply.errors.append(error_of(body))
        except (EOFError, ConnectionError):
            return reply

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def _exactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data


def error_of(body: bytes) -> tuple[str, str]:
    """An ErrorResponse's SQLSTATE and message."""
    fields = {part[:1]: part[1:].decode() for part in body.split(b"\x00") if part}
    return fields.get(b"C", ""), fields.get(b"M", "")
