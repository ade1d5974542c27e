"""Answers the HTTP app's ASGI layers send themselves, before any route sees the request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from koppla.core import codec
from koppla.platform.edge.app import Receive, Scope, Send

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of the request header `name` (lower case), or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def has_body(scope: Scope) -> bool:
    """True when the request declares a body (a non-zero Content-Length or chunked encoding)."""
    length = header(scope, b"content-length")
    return header(scope, b"transfer-encoding") is not None or (
        length is not None and length.strip() not in ("", "0")
    )


async def send_json(
    send: Send,
    scope: Scope,
    status: int,
    payload: Any,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    """Send a whole JSON response; it closes the connection when the request body is unread.

    Closing spares the server the rest of an unwanted upload (it would otherwise read and
    discard it to keep the connection).
    """
    body = codec.dumps(payload)
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers),
    ]
    if has_body(scope):
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
