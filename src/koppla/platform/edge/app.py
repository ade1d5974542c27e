"""The Edge Network endpoint as a lean ASGI app: check, resolve identity, spool, acknowledge.

It is the one public surface of Koppla (no credentials: the datastream id is the key, as on
Adobe's edge). It answers only after the request is durably in the spool; everything else
(validation, routing, storage) happens downstream in the pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_plus

from koppla.core import clock, codec, envelope, ids
from koppla.core.envelope import EdgeRecord, RequestKind
from koppla.platform.catalog.models import Datastream
from koppla.platform.edge import identity_cookie, protocol
from koppla.platform.edge.consent import ConsentBook
from koppla.platform.edge.debug import DebugHub
from koppla.platform.edge.directory import DatastreamDirectory
from koppla.platform.edge.protocol import EdgeError
from koppla.platform.spool.ports import SpoolSink
from koppla.platform.spool.writer import SpoolClosed

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY = 1024 * 1024
_JSON = b"application/json;charset=utf-8"


class EdgeApp:
    """ASGI app serving `/ee/...`: Web SDK (v1) and server (v2) Edge Network requests."""

    def __init__(
        self,
        *,
        directory: DatastreamDirectory,
        spool: SpoolSink,
        consent: ConsentBook,
        hub: DebugHub,
        location_hint: str,
    ) -> None:
        self._directory = directory
        self._spool = spool
        self._consent = consent
        self.hub = hub
        self._hint = location_hint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request under `/ee/`."""
        headers = _headers(scope)
        origin = headers.get("origin", "")
        if scope["method"] == "OPTIONS":
            await _respond(send, 204, b"", origin, preflight=True)
            return
        query = _query(scope.get("query_string", b""))
        request_id = query.get("requestId") or ids.new_uuid()
        config_id = query.get("configId") or query.get("datastreamId") or ""
        try:
            status, body = await self._handle(scope, receive, headers, query, request_id)
        except EdgeError as error:
            status, body = error.status, codec.dumps(error.body(request_id, config_id))
        await _respond(send, status, body, origin)

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        headers: dict[str, str],
        query: dict[str, str],
        request_id: str,
    ) -> tuple[int, bytes]:
        if scope["method"] != "POST":
            raise EdgeError(405, "EXEG-0002", "Method not allowed", "use POST")
        action, version = _action(scope["path"])
        stream = self._datastream(query, headers.get("origin", ""))
        raw = await _read_body(receive)
        if action == "privacy/set-consent":
            consent_request, general = protocol.parse_consent_body(raw)
            ecid = self._resolve_ecid(stream, headers, consent_request)
            self._consent.record(stream.org_id, ecid, general)
            handles = protocol.identity_handles(stream.org_id, ecid, self._hint)
            handles += protocol.consent_handles(stream.org_id, general)
            return 200, protocol.response_body(request_id, handles)
        if action == "identity/acquire":
            request = protocol.parse_events_body(raw) if b'"events"' in raw else None
            ecid = self._resolve_ecid(stream, headers, request)
            handles = protocol.identity_handles(stream.org_id, ecid, self._hint)
            return 200, protocol.response_body(request_id, handles)
        if action not in ("interact", "collect"):
            raise EdgeError(404, "EXEG-0001", "Not found", f"unknown edge action {action!r}")
        request = protocol.parse_events_body(raw, single_event=version == 2)
        if version == 2:  # server-to-server: no browser, so no ECID unless the event names one
            ecid = request.ecid_hint or ""
        else:
            ecid = self._resolve_ecid(stream, headers, request)
        kind: RequestKind = "server" if version == 2 else action  # type: ignore[assignment]
        record = EdgeRecord(
            received_ms=clock.now_ms(),
            datastream_id=stream.id,
            org_id=stream.org_id,
            ecid=ecid,
            request_id=request_id,
            origin=headers.get("origin", ""),
            kind=kind,
            body=raw,
        )
        if self._opted_out(stream, headers, request, ecid):
            self._consent.count_dropped(stream.id, request.event_count)
            self.hub.publish(record, "dropped: the visitor's consent is 'out'")
        else:
            try:
                await self._spool.append(envelope.encode(record))
            except SpoolClosed as error:
                log.error("spool refused a write: %s", error)
                raise EdgeError(503, "EXEG-0504", "Service unavailable", str(error)) from error
            self.hub.publish(record, "spooled")
        if action == "collect":
            return 204, b""
        if version == 2:
            return 200, protocol.response_body(request_id, [])
        return 200, protocol.identity_response(request_id, stream.org_id, ecid, self._hint)

    def _datastream(self, query: dict[str, str], origin: str) -> Datastream:
        config_id = query.get("configId") or query.get("datastreamId")
        if not config_id:
            raise EdgeError(
                400, "EXEG-0003", "Invalid request", "the configId query parameter is required"
            )
        stream = self._directory.get(config_id)
        if stream is None:
            raise EdgeError(
                400,
                "EXEG-0003",
                "Invalid datastream",
                f"datastream {config_id!r} does not exist",
            )
        if not stream.allows_origin(origin):
            raise EdgeError(
                403,
                "EXEG-0100",
                "Origin not allowed",
                f"origin {origin!r} is not allowed by datastream {config_id!r}",
            )
        return stream

    def _opted_out(
        self, stream: Datastream, headers: dict[str, str], request: protocol.EdgeRequest, ecid: str
    ) -> bool:
        name = identity_cookie.cookie_name(stream.org_id, "consent")
        cookie = _cookie(headers.get("cookie", ""), name) or request.state_entries.get(name)
        return self._consent.is_out(stream.org_id, ecid, cookie)

    @staticmethod
    def _resolve_ecid(
        stream: Datastream, headers: dict[str, str], request: protocol.EdgeRequest | None
    ) -> str:
        name = identity_cookie.cookie_name(stream.org_id)
        candidates: list[str | None] = [_cookie(headers.get("cookie", ""), name)]
        if request is not None:
            candidates.append(request.state_entries.get(name))
        for value in candidates:
            ecid = identity_cookie.decode(value) if value else None
            if ecid and ids.is_ecid(ecid):
                return ecid
        if request is not None and request.ecid_hint and ids.is_ecid(request.ecid_hint):
            return request.ecid_hint
        return ids.new_ecid()


def _action(path: str) -> tuple[str, int]:
    """(`interact`|`collect`|`privacy/set-consent`|`identity/acquire`, API version) of a path."""
    parts = [p for p in path.split("/") if p]
    for index, part in enumerate(parts):
        if part in ("v1", "v2") and index >= 1:
            return "/".join(parts[index + 1 :]), int(part[1])
    raise EdgeError(404, "EXEG-0001", "Not found", f"no edge endpoint at {path!r}")


_WANTED_HEADERS = {b"origin": "origin", b"cookie": "cookie"}


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers the edge reads (origin, cookie), decoded."""
    found: dict[str, str] = {}
    for key, value in scope["headers"]:
        name = _WANTED_HEADERS.get(key)
        if name is not None:
            found[name] = value.decode("latin-1")
    return found


def _query(raw: bytes) -> dict[str, str]:
    """The query parameters (first value wins); edge ids need no percent-decoding."""
    found: dict[str, str] = {}
    for part in raw.decode("latin-1").split("&"):
        key, _, value = part.partition("=")
        if key and key not in found:
            found[key] = unquote_plus(value) if "%" in value or "+" in value else value
    return found


def _cookie(header: str, name: str) -> str | None:
    if name not in header:
        return None
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise EdgeError(413, "EXEG-0004", "Payload too large", "the body exceeds 1 MiB")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(
    send: Send, status: int, body: bytes, origin: str, *, preflight: bool = False
) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", _JSON))
    if origin:
        headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
        headers.append((b"access-control-allow-credentials", b"true"))
        headers.append((b"vary", b"Origin"))
    if preflight:
        headers.append((b"access-control-allow-methods", b"POST, OPTIONS"))
        headers.append((b"access-control-allow-headers", b"content-type"))
        headers.append((b"access-control-max-age", b"86400"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
