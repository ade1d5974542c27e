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

import msgspec

from koppla.core import clock, codec, envelope, ids
from koppla.core.envelope import EdgeRecord, RequestKind
from koppla.core.errors import InvalidInput
from koppla.core.nesting import json_deeper_than
from koppla.platform.catalog.models import Datastream
from koppla.platform.edge import identity_cookie, protocol
from koppla.platform.edge.budget import QuarantineBudget
from koppla.platform.edge.consent import ConsentBook
from koppla.platform.edge.debug import DebugHub
from koppla.platform.edge.directory import DatastreamDirectory
from koppla.platform.edge.limits import EdgeLimits
from koppla.platform.edge.protocol import EdgeError
from koppla.platform.edge.screening import EventScreen
from koppla.platform.edge.throttle import Throttle
from koppla.platform.spool.ports import SpoolSink
from koppla.platform.spool.writer import SpoolClosed, SpoolFull

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = b"application/json;charset=utf-8"


class EdgeApp:
    """ASGI app serving `/ee/...`: Web SDK (v1) and server (v2) Edge Network requests.

    Before anything is spooled a request passes, in order: the per-client rate limit, the
    datastream and origin checks, the body size, JSON shape, nesting and event-count limits, the
    per-datastream rate limit (in events), and, while the datastream is over its hourly
    quarantine budget, validation of its events. CORS headers go only to origins the request's
    datastream allows; a preflight (`OPTIONS`) reads nothing but the datastream's origins and is
    not rate limited.
    """

    def __init__(
        self,
        *,
        directory: DatastreamDirectory,
        spool: SpoolSink,
        consent: ConsentBook,
        hub: DebugHub,
        location_hint: str,
        limits: EdgeLimits | None = None,
        budget: QuarantineBudget | None = None,
        screen: EventScreen | None = None,
    ) -> None:
        self._directory = directory
        self._spool = spool
        self._consent = consent
        self.hub = hub
        self._hint = location_hint
        self._limits = limits or EdgeLimits()
        self._throttle = Throttle(self._limits)
        self._budget = budget
        self._screen = screen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request under `/ee/`."""
        headers = _headers(scope)
        origin = headers.get("origin", "")
        query = _query(scope.get("query_string", b""))
        config_id = query.get("configId") or query.get("datastreamId") or ""
        stream = self._directory.get(config_id) if config_id else None
        allowed = bool(origin) and stream is not None and stream.allows_origin(origin)
        if scope["method"] == "OPTIONS":
            await _respond(send, 204 if allowed else 403, b"", origin, allowed, preflight=True)
            return
        request_id = query.get("requestId") or ids.new_uuid()
        retry_after: int | None = None
        try:
            self._check_client(scope)
            status, body = await self._handle(
                scope, receive, headers, stream, config_id, request_id
            )
        except EdgeError as error:
            status, body = error.status, codec.dumps(error.body(request_id, config_id))
            retry_after = error.retry_after
        await _respond(send, status, body, origin, allowed, retry_after=retry_after)

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        headers: dict[str, str],
        found: Datastream | None,
        config_id: str,
        request_id: str,
    ) -> tuple[int, bytes]:
        if scope["method"] != "POST":
            raise EdgeError(405, "EXEG-0002", "Method not allowed", "use POST")
        _check_declared_length(headers.get("length"), self._limits.max_body)
        action, version = _action(scope["path"])
        stream = _checked(found, config_id, headers.get("origin", ""))
        raw = await _read_body(receive, self._limits.max_body)
        depth, most = self._limits.max_depth, self._limits.max_events
        if action == "privacy/set-consent":
            consent_request, general = protocol.parse_consent_body(raw, max_depth=depth)
            self._check_datastream(stream, 1)
            ecid = self._resolve_ecid(stream, headers, consent_request)
            self._consent.record(stream.org_id, ecid, general)
            handles = protocol.identity_handles(stream.org_id, ecid, self._hint)
            handles += protocol.consent_handles(stream.org_id, general)
            return 200, protocol.response_body(request_id, handles)
        if action == "identity/acquire":
            request = None
            if b'"events"' in raw:
                request = protocol.parse_events_body(raw, max_depth=depth, max_events=most)
            self._check_datastream(stream, 1)
            ecid = self._resolve_ecid(stream, headers, request)
            handles = protocol.identity_handles(stream.org_id, ecid, self._hint)
            return 200, protocol.response_body(request_id, handles)
        if action not in ("interact", "collect"):
            raise EdgeError(404, "EXEG-0001", "Not found", f"unknown edge action {action!r}")
        if version == 2:
            request = protocol.parse_events_body(
                raw, max_depth=depth, max_events=most, single_event=True
            )
        else:
            request = parse_interact(raw, max_depth=depth, max_events=most)
        self._check_datastream(stream, request.event_count)
        self._check_quarantine_budget(stream, raw, version)
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
            except SpoolClosed as error:  # full (backpressure: expected under load) or failed
                level = logging.WARNING if isinstance(error, SpoolFull) else logging.ERROR
                log.log(level, "spool refused a write: %s", error)
                raise EdgeError(
                    503,
                    "EXEG-0504",
                    "Service unavailable",
                    # the backpressure bound is the client's business; a failure's details
                    # (paths, broker addresses) are the operator's, in the log above
                    str(error)
                    if isinstance(error, SpoolFull)
                    else "requests cannot be stored right now; try again",
                    retry_after=error.retry_after_s,
                ) from error
            except InvalidInput as error:  # larger than a message of the shared log may be
                detail = "the request is larger than this edge can store"
                raise EdgeError(413, "EXEG-0004", "Payload too large", detail) from error
            self.hub.publish(record, "spooled")
        if action == "collect":
            return 204, b""
        if version == 2:
            return 200, protocol.response_body(request_id, [])
        return 200, protocol.identity_response(request_id, stream.org_id, ecid, self._hint)

    def _check_client(self, scope: Scope) -> None:
        """Refuse with 429 a client address over `edge_client_rate` requests per second."""
        client = scope.get("client")
        wait = self._throttle.client_wait(client[0] if client else None)
        if wait:
            raise protocol.too_many_requests(
                wait,
                f"this client sends more than {self._limits.client_rate:g} requests per second "
                "(edge_client_rate)",
            )

    def _check_datastream(self, stream: Datastream, events: int) -> None:
        """Refuse with 429 a datastream over `edge_datastream_rate` events per second."""
        wait = self._throttle.datastream_wait(stream.id, events)
        if wait:
            raise protocol.too_many_requests(
                wait,
                f"datastream {stream.id!r} receives more than "
                f"{self._limits.datastream_rate:g} events per second (edge_datastream_rate)",
            )

    def _check_quarantine_budget(self, stream: Datastream, raw: bytes, version: int) -> None:
        """Over its hourly quarantine budget, a datastream takes only requests of valid events.

        Only then is every event parsed into objects (the body is known to be well formed).
        """
        if self._budget is None or self._screen is None or not self._budget.exceeded(stream.id):
            return
        request = protocol.parse_events_body(
            raw,
            max_depth=self._limits.max_depth,
            max_events=self._limits.max_events,
            single_event=version == 2,
        )
        rejection = self._screen.first_rejection(stream, request.body, request.events)
        if rejection is None:
            return
        self._budget.count_refused(stream.id, request.event_count)
        raise EdgeError(
            400,
            "EXEG-0003",
            "Invalid event",
            f"events[{rejection.index}].{rejection.path}: {rejection.reason}. Datastream "
            f"{stream.id!r} quarantined more than {self._limits.quarantine_hourly_limit} records "
            "in the last hour (quarantine_hourly_limit), so the edge refuses invalid events",
        )

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


class _LeanXdm(msgspec.Struct):
    identityMap: Any = None


class _LeanEvent(msgspec.Struct):
    xdm: _LeanXdm


class _LeanBody(msgspec.Struct):
    events: list[_LeanEvent]
    meta: Any = None
    xdm: Any = None


_LEAN = msgspec.json.Decoder(_LeanBody)
_NUMBERS = bytes.maketrans(b"0123456789E", b"0000000000e")  # and signs deleted


def parse_interact(raw: bytes, *, max_depth: int, max_events: int) -> protocol.EdgeRequest:
    """`protocol.parse_events_body` of a Web SDK body, without building each event's objects.

    The hot path: a typed decode reads only what the edge needs (the events' count and
    `xdm.identityMap`, `meta.state`, a top-level `xdm`) and skips the rest while checking that
    it is well-formed JSON. It answers only for a body `parse_events_body` accepts; anything
    else (an error to report, invalid UTF-8, a number orjson would refuse as out of range, too
    many events, too deep) goes to `parse_events_body`, so every refusal is the same. The
    returned request has no parsed `body`/`events`: who needs them parses the body again.
    """
    lean = _lean_body(raw)
    if lean is None or not lean.events or len(lean.events) > max_events:
        return protocol.parse_events_body(raw, max_depth=max_depth, max_events=max_events)
    if json_deeper_than(raw, max_depth):
        return protocol.parse_events_body(raw, max_depth=max_depth, max_events=max_events)
    skeleton = {"meta": lean.meta, "xdm": lean.xdm}
    maps = [{"xdm": {"identityMap": e.xdm.identityMap}} for e in lean.events if e.xdm.identityMap]
    return protocol.EdgeRequest(
        {},
        len(lean.events),
        protocol.state_entries(skeleton),
        protocol.ecid_hint(skeleton, maps),
        [],
    )


def _lean_body(raw: bytes) -> _LeanBody | None:
    """The lean decode, or None where it might disagree with orjson (which then decides)."""
    if not raw.isascii():
        try:
            raw.decode()
        except UnicodeDecodeError:
            return None
    numbers = raw.translate(_NUMBERS, b"+-")
    if b"0000000000000000000" in numbers or b"e000" in numbers:
        return None
    try:
        return _LEAN.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None


def _checked(stream: Datastream | None, config_id: str, origin: str) -> Datastream:
    """The request's datastream, if it exists and allows the request's origin."""
    if not config_id:
        raise EdgeError(
            400, "EXEG-0003", "Invalid request", "the configId query parameter is required"
        )
    if stream is None:
        raise EdgeError(
            400, "EXEG-0003", "Invalid datastream", f"datastream {config_id!r} does not exist"
        )
    if not stream.allows_origin(origin):
        raise EdgeError(
            403,
            "EXEG-0100",
            "Origin not allowed",
            f"origin {origin!r} is not allowed by datastream {config_id!r}",
        )
    return stream


def _action(path: str) -> tuple[str, int]:
    """(`interact`|`collect`|`privacy/set-consent`|`identity/acquire`, API version) of a path."""
    parts = [p for p in path.split("/") if p]
    for index, part in enumerate(parts):
        if part in ("v1", "v2") and index >= 1:
            return "/".join(parts[index + 1 :]), int(part[1])
    raise EdgeError(404, "EXEG-0001", "Not found", f"no edge endpoint at {path!r}")


_WANTED_HEADERS = {b"origin": "origin", b"cookie": "cookie", b"content-length": "length"}


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


def _too_large(max_body: int) -> EdgeError:
    detail = f"the body exceeds {max_body} bytes (max_body_edge_bytes)"
    return EdgeError(413, "EXEG-0004", "Payload too large", detail)


def _check_declared_length(declared: str | None, max_body: int) -> None:
    """Refuse a body whose declared Content-Length is over the limit, before reading any of it."""
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise _too_large(max_body)


async def _read_body(receive: Receive, max_body: int) -> bytes:
    """The body, read as it streams in; refused the moment it passes `max_body`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            raise _too_large(max_body)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    origin: str,
    allowed: bool,
    *,
    preflight: bool = False,
    retry_after: int | None = None,
) -> None:
    """Send the answer; CORS headers only when the datastream allows `origin`."""
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", _JSON))
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    if status == 405:
        headers.append((b"allow", b"POST, OPTIONS"))
    if origin:
        headers.append((b"vary", b"Origin"))
    if allowed:
        headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
        headers.append((b"access-control-allow-credentials", b"true"))
        if retry_after is not None:
            headers.append((b"access-control-expose-headers", b"Retry-After"))
        if preflight:
            headers.append((b"access-control-allow-methods", b"POST, OPTIONS"))
            headers.append((b"access-control-allow-headers", b"content-type"))
            headers.append((b"access-control-max-age", b"86400"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
