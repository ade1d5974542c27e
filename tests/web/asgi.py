"""Driving the HTTP app at the ASGI level: what it read of a request, and what it answered."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from koppla.core import codec
from koppla.core.settings import Settings
from koppla.web.app import KopplaApp, create_app


@dataclass
class Exchange:
    """One request's answer, and how much of its body the app asked for."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    receive_calls: int = 0
    bytes_read: int = 0

    def json(self) -> Any:
        """The answer's body, parsed."""
        return codec.loads(self.body)


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[KopplaApp]:
    """The whole app for `settings`, started (spool open) until the block ends."""
    app = create_app(settings)
    async with app.api.router.lifespan_context(app.api):
        yield app


async def call(
    app: KopplaApp,
    method: str,
    path: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    chunks: Iterable[bytes] = (),
    query: str = "",
) -> Exchange:
    """Send one request whose body arrives in `chunks` (possibly endless) and collect the answer."""
    exchange = Exchange()
    pending: Iterator[bytes] = iter(chunks)
    upcoming = next(pending, None)

    async def receive() -> dict[str, Any]:
        nonlocal upcoming
        exchange.receive_calls += 1
        chunk, upcoming = upcoming or b"", next(pending, None)
        exchange.bytes_read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": upcoming is not None}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            exchange.status = message["status"]
            exchange.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        else:
            exchange.body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("edge.test", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    return exchange


def pieces(total: int, chunk_size: int) -> Iterator[bytes]:
    """A body of `total` bytes, made as it is read, `chunk_size` bytes at a time."""
    chunk = b"x" * chunk_size
    for _ in range(total // chunk_size):
        yield chunk
