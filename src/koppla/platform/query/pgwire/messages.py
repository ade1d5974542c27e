"""The PostgreSQL protocol 3.0 wire codec: frames read from a stream, messages built as bytes.

Reading is bounded: a startup packet may take at most `MAX_STARTUP_BYTES`, any other message at
most `MAX_MESSAGE_BYTES`; beyond, or when a message's fields do not add up, `ProtocolViolation`
is raised (the session answers 08P01 and closes that connection only). Builders return the
complete message (type byte, length, body) ready to write.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from dataclasses import dataclass

MAX_STARTUP_BYTES = 10_000
MAX_MESSAGE_BYTES = 16 * 2**20

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

_INT32 = struct.Struct("!i")
_INT16 = struct.Struct("!h")
_HEADER = struct.Struct("!ci")


class ProtocolViolation(Exception):
    """The client broke the protocol: the connection cannot go on."""


@dataclass(frozen=True, slots=True)
class Startup:
    """What a client's first packet asks for: a session (with its parameters), TLS, or a cancel."""

    code: int
    parameters: dict[str, str]
    cancel_pid: int = 0
    cancel_key: int = 0


@dataclass(frozen=True, slots=True)
class Frame:
    """One message after startup: its type byte and its body."""

    kind: bytes
    body: bytes


async def read_startup(reader: asyncio.StreamReader) -> Startup:
    """The next startup-phase packet (untyped, length-prefixed)."""
    length = _INT32.unpack(await reader.readexactly(4))[0]
    if length < 8 or length > MAX_STARTUP_BYTES:
        raise ProtocolViolation(f"invalid startup packet length {length}")
    body = await reader.readexactly(length - 4)
    code = _INT32.unpack_from(body)[0] & 0xFFFFFFFF
    if code == CANCEL_REQUEST:
        if len(body) != 12:
            raise ProtocolViolation("invalid cancel request")
        pid, key = struct.unpack_from("!iI", body, 4)
        return Startup(code, {}, pid, key)
    if code != PROTOCOL_3:
        return Startup(code, {})
    return Startup(code, _parameters(body[4:]))


def _parameters(data: bytes) -> dict[str, str]:
    parts = data.split(b"\x00")
    if len(parts) < 2 or parts[-1] != b"" or parts[-2] != b"":
        raise ProtocolViolation("startup parameters are not NUL-terminated")
    names = parts[:-2]
    if len(names) % 2:
        raise ProtocolViolation("startup parameters are not name/value pairs")
    try:
        text = [p.decode("utf-8") for p in names]
    except UnicodeDecodeError as exc:
        raise ProtocolViolation("startup parameters are not UTF-8") from exc
    return dict(zip(text[::2], text[1::2], strict=True))


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    """The next typed message; `asyncio.IncompleteReadError` when the client went away."""
    header = await reader.readexactly(5)
    kind, length = _HEADER.unpack(header)
    if length < 4 or length > MAX_MESSAGE_BYTES:
        raise ProtocolViolation(f"invalid message length {length} for message {kind!r}")
    return Frame(kind, await reader.readexactly(length - 4))


class Body:
    """A cursor over a message body; every read checks the body is long enough."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def int16(self) -> int:
        """The next signed 16-bit integer."""
        value: int = _INT16.unpack(self.take(2))[0]
        return value

    def int32(self) -> int:
        """The next signed 32-bit integer."""
        value: int = _INT32.unpack(self.take(4))[0]
        return value

    def byte(self) -> bytes:
        """The next single byte."""
        return self.take(1)

    def take(self, count: int) -> bytes:
        """The next `count` bytes."""
        if count < 0 or self._at + count > len(self._data):
            raise ProtocolViolation("message is shorter than its fields")
        chunk = self._data[self._at : self._at + count]
        self._at += count
        return chunk

    def cstring(self) -> str:
        """The next NUL-terminated UTF-8 string."""
        end = self._data.find(b"\x00", self._at)
        if end < 0:
            raise ProtocolViolation("string in message is not NUL-terminated")
        raw = self._data[self._at : end]
        self._at = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolViolation("string in message is not UTF-8") from exc


@dataclass(frozen=True, slots=True)
class Parse:
    """Parse: a statement name, its SQL, and the type oids the client gave its parameters."""

    name: str
    sql: str
    param_oids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Bind:
    """Bind: a portal over a statement, with parameter values and the result formats asked."""

    portal: str
    statement: str
    param_formats: tuple[int, ...]
    values: tuple[bytes | None, ...]
    result_formats: tuple[int, ...]


def parse_parse(data: bytes) -> Parse:
    """Decode a Parse body."""
    body = Body(data)
    name, sql = body.cstring(), body.cstring()
    return Parse(name, sql, tuple(body.int32() & 0xFFFFFFFF for _ in range(_count(body))))


def parse_bind(data: bytes) -> Bind:
    """Decode a Bind body."""
    body = Body(data)
    portal, statement = body.cstring(), body.cstring()
    formats = tuple(body.int16() for _ in range(_count(body)))
    values: list[bytes | None] = []
    for _ in range(_count(body)):
        size = body.int32()
        values.append(None if size == -1 else body.take(size))
    results = tuple(body.int16() for _ in range(_count(body)))
    return Bind(portal, statement, formats, tuple(values), results)


def parse_target(data: bytes) -> tuple[bytes, str]:
    """Decode a Describe or Close body: `S` (statement) or `P` (portal), and the name."""
    body = Body(data)
    kind = body.byte()
    if kind not in (b"S", b"P"):
        raise ProtocolViolation(f"describe/close target must be S or P, got {kind!r}")
    return kind, body.cstring()


def parse_execute(data: bytes) -> tuple[str, int]:
    """Decode an Execute body: the portal name and the most rows to return (0: all)."""
    body = Body(data)
    return body.cstring(), body.int32()


def parse_cstring(data: bytes) -> str:
    """Decode a body holding one string (Query, PasswordMessage)."""
    return Body(data).cstring()


def _count(body: Body) -> int:
    count = body.int16()
    if count < 0:
        raise ProtocolViolation("negative count in message")
    return count


def message(kind: bytes, body: bytes = b"") -> bytes:
    """A typed message: kind, length, body."""
    return kind + _INT32.pack(len(body) + 4) + body


def cstr(text: str) -> bytes:
    """`text` as a NUL-terminated UTF-8 string (NULs inside are dropped)."""
    return text.replace("\x00", "").encode("utf-8") + b"\x00"


def authentication_ok() -> bytes:
    """AuthenticationOk."""
    return message(b"R", _INT32.pack(0))


def authentication_cleartext() -> bytes:
    """AuthenticationCleartextPassword."""
    return message(b"R", _INT32.pack(3))


def parameter_status(name: str, value: str) -> bytes:
    """ParameterStatus."""
    return message(b"S", cstr(name) + cstr(value))


def backend_key_data(pid: int, key: int) -> bytes:
    """BackendKeyData: what a CancelRequest must quote."""
    return message(b"K", struct.pack("!iI", pid, key))


def ready_for_query(status: bytes) -> bytes:
    """ReadyForQuery with transaction status `I`, `T` or `E`."""
    return message(b"Z", status)


@dataclass(frozen=True, slots=True)
class Field:
    """One column of a RowDescription."""

    name: str
    type_oid: int
    type_size: int = -1
    type_modifier: int = -1


def row_description(fields: Sequence[Field]) -> bytes:
    """RowDescription (text format for every column)."""
    parts = [_INT16.pack(len(fields))]
    for field in fields:
        parts.append(cstr(field.name))
        parts.append(
            struct.pack("!ihihih", 0, 0, field.type_oid, field.type_size, field.type_modifier, 0)
        )
    return message(b"T", b"".join(parts))


def data_row(values: Sequence[bytes | None]) -> bytes:
    """DataRow of text values (None: SQL NULL)."""
    parts = [_INT16.pack(len(values))]
    for value in values:
        if value is None:
            parts.append(b"\xff\xff\xff\xff")
        else:
            parts.append(_INT32.pack(len(value)))
            parts.append(value)
    return message(b"D", b"".join(parts))


def command_complete(tag: str) -> bytes:
    """CommandComplete with a tag such as `SELECT 3`."""
    return message(b"C", cstr(tag))


def error_response(code: str, text: str, *, severity: str = "ERROR") -> bytes:
    """ErrorResponse with a SQLSTATE `code` and a message."""
    return message(b"E", _notice_fields(severity, code, text))


def notice_response(text: str, *, code: str = "00000", severity: str = "NOTICE") -> bytes:
    """NoticeResponse."""
    return message(b"N", _notice_fields(severity, code, text))


def _notice_fields(severity: str, code: str, text: str) -> bytes:
    return b"".join(
        [b"S", cstr(severity), b"V", cstr(severity), b"C", cstr(code), b"M", cstr(text), b"\x00"]
    )


def parameter_description(oids: Sequence[int]) -> bytes:
    """ParameterDescription."""
    return message(b"t", _INT16.pack(len(oids)) + b"".join(struct.pack("!I", o) for o in oids))


EMPTY_QUERY = message(b"I")
PARSE_COMPLETE = message(b"1")
BIND_COMPLETE = message(b"2")
CLOSE_COMPLETE = message(b"3")
NO_DATA = message(b"n")
PORTAL_SUSPENDED = message(b"s")
