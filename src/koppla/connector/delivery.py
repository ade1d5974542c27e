"""The HTTP client to the platform: the outbox, batched, to streaming ingestion.

`POST {platform}/collection/batch/{datastreamId}` with up to 500 messages and 1 MB per request,
in outbox order. Success marks events sent; a retryable failure leaves them pending and backs
off; a terminal refusal marks the batch failed with the reason (413 splits the batch first).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from koppla.connector.retry import Backoff, Rejected, Unauthorized, Unavailable, error_for_status
from koppla.connector.settings import ConnectorSettings, WebsiteSettings
from koppla.connector.state import OutboxEvent, State
from koppla.core import codec
from koppla.core.errors import is_retryable
from koppla.xdm.experience_event import SCHEMA_ID

log = logging.getLogger("koppla.connector.delivery")

CONTENT_TYPE = "application/vnd.adobe.xed-full+json;version=1"
SOURCE_NAME = "koppla-connector"


def _trust(ca_file: Path | None) -> ssl.SSLContext | bool:
    """The TLS trust for the platform: a given CA file, else the system's store."""
    return ssl.create_default_context(cafile=str(ca_file)) if ca_file else True


def message(event: OutboxEvent, website: WebsiteSettings) -> dict[str, Any]:
    """One streaming-ingestion message (header + body) carrying `event`."""
    schema_ref = {"id": SCHEMA_ID, "contentType": CONTENT_TYPE}
    return {
        "header": {
            "schemaRef": schema_ref,
            "imsOrgId": website.org_id,
            "datasetId": website.dataset_id,
            "flowId": website.datastream_id,
            "source": {"name": SOURCE_NAME},
        },
        "body": {"xdmMeta": {"schemaRef": schema_ref}, "xdmEntity": event.body},
    }


def batches(
    events: Sequence[OutboxEvent],
    websites: dict[str, WebsiteSettings],
    max_messages: int,
    max_bytes: int,
) -> list[tuple[WebsiteSettings, list[OutboxEvent], list[bytes]]]:
    """Split `events` (kept in order) into requests: one website each, within both limits."""
    out: list[tuple[WebsiteSettings, list[OutboxEvent], list[bytes]]] = []
    envelope = len(b'{"messages":[]}')
    size = envelope
    for event in events:
        site = websites[event.website]
        encoded = codec.dumps(message(event, site))
        last = out[-1] if out else None
        fits = (
            last is not None
            and last[0].website_code == site.website_code
            and len(last[1]) < max_messages
            and size + len(encoded) + 1 <= max_bytes
        )
        if not fits:
            out.append((site, [], []))
            size = envelope
        out[-1][1].append(event)
        out[-1][2].append(encoded)
        size += len(encoded) + 1
    return out


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one drain did."""

    sent: int = 0
    failed: int = 0
    waiting: bool = False


class Sender:
    """Drains the outbox to the platform; call `drain()` from one thread."""

    def __init__(
        self, settings: ConnectorSettings, state: State, client: httpx.Client | None = None
    ) -> None:
        self._settings = settings
        self._state = state
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(30.0, connect=5.0), verify=_trust(settings.platform_ca_file)
        )
        self._websites = {w.website_code: w for w in settings.websites}
        self.backoff = Backoff()

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def drain(self, max_rounds: int = 100) -> SendResult:
        """Send pending events until none are left, the platform fails, or `max_rounds`."""
        sent = failed = 0
        for _ in range(max_rounds):
            if not self.backoff.ready():
                return SendResult(sent, failed, waiting=True)
            pending = self._state.pending(self._settings.batch_max_messages * 4)
            if not pending:
                break
            orphans = [e.seq for e in pending if e.website not in self._websites]
            if orphans:
                self._state.mark_failed(orphans, "the website is no longer configured")
                failed += len(orphans)
                pending = [e for e in pending if e.website in self._websites]
            for site, events, bodies in batches(
                pending,
                self._websites,
                self._settings.batch_max_messages,
                self._settings.batch_max_bytes,
            ):
                try:
                    good, bad = self._send(site, events, bodies)
                except Exception as error:
                    if not is_retryable(error) and not isinstance(error, Unauthorized):
                        raise
                    wait = self.backoff.failed(getattr(error, "retry_after", None))
                    self._state.note_attempt([e.seq for e in events], str(error))
                    log.warning("delivery failed, retrying in %.1f s: %s", wait, error)
                    return SendResult(sent, failed, waiting=True)
                self.backoff.succeeded()
                sent, failed = sent + good, failed + bad
        return SendResult(sent, failed)

    def _send(
        self, site: WebsiteSettings, events: list[OutboxEvent], bodies: list[bytes]
    ) -> tuple[int, int]:
        """POST one batch; return (sent, failed). Raises on retryable trouble."""
        try:
            self._post(site, bodies)
        except Rejected as error:
            if isinstance(error, Unauthorized):
                raise
            if error.status == 413 and len(events) > 1:
                half = len(events) // 2
                a = self._send(site, events[:half], bodies[:half])
                b = self._send(site, events[half:], bodies[half:])
                return a[0] + b[0], a[1] + b[1]
            self._state.mark_failed([e.seq for e in events], str(error))
            log.error("platform refused %d event(s) for good: %s", len(events), error)
            return 0, len(events)
        self._state.mark_sent([e.seq for e in events])
        return len(events), 0

    def _post(self, site: WebsiteSettings, bodies: list[bytes]) -> None:
        url = f"{self._settings.platform_url.rstrip('/')}/collection/batch/{site.datastream_id}"
        payload = b'{"messages":[' + b",".join(bodies) + b"]}"
        headers = {"content-type": "application/json"}
        if self._settings.token is not None:
            headers["authorization"] = f"Bearer {self._settings.token.get_secret_value()}"
        try:
            response = self._client.post(url, content=payload, headers=headers)
        except httpx.TransportError as error:
            raise Unavailable(f"platform unreachable: {type(error).__name__}: {error}") from error
        problem = error_for_status(
            response.status_code, response.text, response.headers.get("retry-after")
        )
        if problem is not None:
            raise problem
