"""Body size limits, enforced before any route reads or parses a body.

Each path belongs to a route class with its own limit: streaming ingestion (`/collection/`), a
batch ingestion file upload (`/data/foundation/import/batches/{id}/datasets/{id}/files/...`,
`batch_max_file_bytes`: the upload route streams those bodies to disk) and every other API.
(The edge, `/ee/`, enforces `max_body_edge_bytes` itself in the same way, in Adobe's problem
shape and under its datastream's CORS rules.) A declared Content-Length over the limit is
refused at once; otherwise the body is counted as it streams in and the request is
cut off with 413 the moment it passes the limit, so no more than the limit is ever held.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from koppla.core.settings import Settings
from koppla.platform.edge.app import Message, Receive, Scope, Send
from koppla.web.answer import ASGIApp, header, send_json

RouteClass = Literal["streaming", "batch_file", "api"]

BATCH_FILE = re.compile(r"^/data/foundation/import/batches/[^/]+/datasets/[^/]+/files/.")

SETTINGS: dict[RouteClass, str] = {
    "streaming": "max_body_streaming_bytes",
    "batch_file": "batch_max_file_bytes",
    "api": "max_body_api_bytes",
}
"""The setting that holds each route class's limit."""


def route_class(path: str) -> RouteClass:
    """The route class of a request path."""
    if path.startswith("/collection/"):
        return "streaming"
    if BATCH_FILE.match(path):
        return "batch_file"
    return "api"


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """The largest body, in bytes, of each route class."""

    streaming: int
    batch_file: int
    api: int

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyLimits:
        """The limits `settings` configure."""
        return cls(
            streaming=settings.max_body_streaming_bytes,
            batch_file=settings.batch_max_file_bytes,
            api=settings.max_body_api_bytes,
        )

    def of(self, kind: RouteClass) -> int:
        """The limit of route class `kind`."""
        limit: int = getattr(self, kind)
        return limit


class BodyTooLarge(Exception):
    """Raised from `receive` once a body passes its limit; the limit layer answers 413."""


class _Meter:
    """`receive` and `send` of one request: counts the body, drops the app's late answer."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive, self._send, self._limit = receive, send, limit
        self.received = 0
        self.exceeded = False
        self.started = False

    async def receive(self) -> Message:
        if self.exceeded:
            raise BodyTooLarge
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self._limit:
                self.exceeded = True
                raise BodyTooLarge
        return message

    async def send(self, message: Message) -> None:
        if self.exceeded and not self.started:
            return  # the app's reaction to the cut-off (say a 500); the 413 replaces it
        self.started = True
        await self._send(message)


class BodyLimit:
    """ASGI layer enforcing `BodyLimits` on every HTTP request."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self._app = app
        self._limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with a counting `receive`, or answer 413."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        kind = route_class(scope["path"])
        limit = self._limits.of(kind)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, scope, kind, limit)
            return
        meter = _Meter(receive, send, limit)
        try:
            await self._app(scope, meter.receive, meter.send)
        except Exception:
            if not meter.exceeded:
                raise
        if meter.exceeded and not meter.started:
            await _too_large(send, scope, kind, limit)


def _content_length(scope: Scope) -> int | None:
    value = header(scope, b"content-length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


async def _too_large(send: Send, scope: Scope, kind: RouteClass, limit: int) -> None:
    setting = SETTINGS[kind]
    await send_json(send, scope, 413, {"detail": f"the body exceeds {limit} bytes ({setting})"})
