"""The HTTP client to the platform: the outbox, batched, to streaming ingestion.

`POST {platform}/collection/batch/{datastreamId}` with up to 500 messages and 1 MB per request,
one datastream per request, in outbox order per datastream. The sender pages through the pending
outbox and keeps one request open per datastream (`Batcher`): a request goes out when it is full,
and the last, partly filled one of each datastream once the outbox has no more pending
messages (or the drain's rounds run out), so however the websites' messages are mixed in the
outbox, every request but the last of each datastream is full. Success counts the messages sent
(and drops them from the outbox); a retryable failure leaves them pending and backs off; a
terminal refusal marks the batch failed with the reason (413 splits the batch first).

Routing (`route`): order events go to the website's dataset through its datastream; customer
profile events to the same dataset and profile records to the profile dataset (profile schema),
both through the profile datastream when `profiles_same_datastream` is off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import httpx

from koppla.connector.platform_auth import AuthRefused, AuthUnavailable, platform_auth
from koppla.connector.retry import Backoff, Rejected, Unauthorized, Unavailable, error_for_status
from koppla.connector.settings import ConnectorSettings, WebsiteSettings
from koppla.connector.state import OutboxEvent, State
from koppla.core import codec
from koppla.core.errors import is_retryable
from koppla.core.tls import verify_for
from koppla.xdm.experience_event import SCHEMA_ID
from koppla.xdm.profile import PROFILE_SCHEMA_ID

log = logging.getLogger("koppla.connector.delivery")

CONTENT_TYPE = "application/vnd.adobe.xed-full+json;version=1"
SOURCE_NAME = "koppla-connector"


@dataclass(frozen=True, slots=True)
class Route:
    """Where one outbox message goes: datastream, dataset and schema."""

    datastream_id: str
    dataset_id: str
    schema_id: str


def route(event: OutboxEvent, website: WebsiteSettings) -> Route:
    """The datastream, dataset and schema of `event` under `website`'s settings."""
    if event.target == "profile_records":
        return Route(website.profile_stream, website.profile_dataset_id, PROFILE_SCHEMA_ID)
    if event.target == "profile_events":
        return Route(website.profile_stream, website.dataset_id, SCHEMA_ID)
    return Route(website.datastream_id, website.dataset_id, SCHEMA_ID)


def encode(event: OutboxEvent, website: WebsiteSettings) -> bytes:
    """One streaming-ingestion message carrying `event`, as compact JSON:
    `{"header": {schemaRef, imsOrgId, datasetId, flowId, source}, "body": {"xdmMeta":
    {"schemaRef"}, "xdmEntity": <the stored body, spliced in as it is>}}`."""
    return _envelope(route(event, website), website.org_id) + event.raw + b"}}"


@lru_cache(maxsize=256)
def _envelope(target: Route, org_id: str) -> bytes:
    """A message's JSON up to its `xdmEntity` value (`encode`): the same for every message
    of one route."""
    schema_ref = {"id": target.schema_id, "contentType": CONTENT_TYPE}
    header = {
        "schemaRef": schema_ref,
        "imsOrgId": org_id,
        "datasetId": target.dataset_id,
        "flowId": target.datastream_id,
        "source": {"name": SOURCE_NAME},
    }
    return (
        b'{"header":'
        + codec.dumps(header)
        + b',"body":{"xdmMeta":{"schemaRef":'
        + codec.dumps(schema_ref)
        + b'},"xdmEntity":'
    )


Batch = tuple[str, list[OutboxEvent], list[bytes]]
"""One request: the datastream, its messages and their encoded forms."""

ENVELOPE = len(b'{"messages":[]}')


class Batcher:
    """Fills one request per datastream; hands a request out once the next message would not
    fit (by count or bytes), keeping each datastream's messages in the order they were added."""

    def __init__(
        self, websites: dict[str, WebsiteSettings], max_messages: int, max_bytes: int
    ) -> None:
        self._websites = websites
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._open: dict[str, tuple[list[OutboxEvent], list[bytes]]] = {}
        self._sizes: dict[str, int] = {}

    def add(self, event: OutboxEvent) -> list[Batch]:
        """Queue `event`; return the request it closed (it did not fit), if any."""
        website = self._websites[event.website]
        stream = route(event, website).datastream_id
        encoded = encode(event, website)
        closed: list[Batch] = []
        queued = self._open.get(stream)
        if queued is not None and (
            len(queued[0]) >= self._max_messages
            or self._sizes[stream] + len(encoded) + 1 > self._max_bytes
        ):
            closed.append((stream, *self._open.pop(stream)))
            queued = None
        if queued is None:
            queued = self._open[stream] = ([], [])
            self._sizes[stream] = ENVELOPE
        queued[0].append(event)
        queued[1].append(encoded)
        self._sizes[stream] += len(encoded) + 1
        return closed

    def flush(self) -> list[Batch]:
        """The partly filled requests, in the order they were opened; none stay open."""
        out = [(stream, events, bodies) for stream, (events, bodies) in self._open.items()]
        self._open.clear()
        self._sizes.clear()
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
            timeout=httpx.Timeout(30.0, connect=5.0), verify=verify_for(settings.platform_ca_file)
        )
        self._websites = {w.website_code: w for w in settings.websites}
        self._auth = platform_auth(settings, self._client)
        self.backoff = Backoff()

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def drain(self, max_rounds: int = 100) -> SendResult:
        """Send pending messages until none are left, the platform fails, or `max_rounds` pages
        of the outbox were read (what is read but not sent stays pending).

        The partly filled request of each datastream goes out once the outbox is read to its
        end or the rounds run out, so one datastream's backlog never holds back another's.
        """
        sent = failed = 0
        limit = self._settings.batch_max_messages
        page = limit * 4
        batcher = Batcher(self._websites, limit, self._settings.batch_max_bytes)
        after = 0
        for round_ in range(max_rounds):
            if not self.backoff.ready():
                return SendResult(sent, failed, waiting=True)
            pending = self._state.pending(page, after)
            last = len(pending) < page or round_ == max_rounds - 1
            if pending:
                after = pending[-1].seq
            deliverable = self._drop_orphans(pending)
            failed += len(pending) - len(deliverable)
            ready = [batch for event in deliverable for batch in batcher.add(event)]
            if last:
                ready += batcher.flush()
            for stream, events, bodies in ready:
                try:
                    good, bad = self._send(stream, events, bodies)
                except Exception as error:
                    if not is_retryable(error) and not isinstance(error, Unauthorized):
                        raise
                    wait = self.backoff.failed(getattr(error, "retry_after", None))
                    self._state.note_attempt([e.seq for e in events], str(error))
                    log.warning("delivery failed, retrying in %.1f s: %s", wait, error)
                    return SendResult(sent, failed, waiting=True)
                self.backoff.succeeded()
                sent, failed = sent + good, failed + bad
            if last:
                break
        return SendResult(sent, failed)

    def _deliverable(self, event: OutboxEvent) -> str | None:
        """Why `event` can no longer be delivered, or None."""
        site = self._websites.get(event.website)
        if site is None:
            return "the website is no longer configured"
        if event.target != "events" and not site.customer_profiles:
            return "customer profiles are off for the website"
        return None

    def _drop_orphans(self, pending: list[OutboxEvent]) -> list[OutboxEvent]:
        """Mark failed the messages that cannot be delivered any more; return the others."""
        reasons: dict[str, list[int]] = {}
        keep: list[OutboxEvent] = []
        for event in pending:
            reason = self._deliverable(event)
            if reason is None:
                keep.append(event)
            else:
                reasons.setdefault(reason, []).append(event.seq)
        for reason, seqs in reasons.items():
            self._state.mark_failed(seqs, reason)
        return keep

    def _send(self, stream: str, events: list[OutboxEvent], bodies: list[bytes]) -> tuple[int, int]:
        """POST one batch; return (sent, failed). Raises on retryable trouble."""
        try:
            self._post(stream, bodies)
        except Rejected as error:
            if isinstance(error, Unauthorized):
                raise
            if error.status == 413 and len(events) > 1:
                half = len(events) // 2
                a = self._send(stream, events[:half], bodies[:half])
                b = self._send(stream, events[half:], bodies[half:])
                return a[0] + b[0], a[1] + b[1]
            self._state.mark_failed([e.seq for e in events], str(error))
            log.error("platform refused %d event(s) for good: %s", len(events), error)
            return 0, len(events)
        self._state.mark_sent([e.seq for e in events])
        return len(events), 0

    def _post(self, stream: str, bodies: list[bytes]) -> None:
        url = f"{self._settings.platform_url.rstrip('/')}/collection/batch/{stream}"
        payload = b'{"messages":[' + b",".join(bodies) + b"]}"
        try:
            headers = {"content-type": "application/json", **self._auth.headers()}
        except AuthUnavailable as error:
            raise Unavailable(str(error)) from error
        except AuthRefused as error:
            raise Unauthorized(str(error), status=401) from error
        try:
            response = self._client.post(url, content=payload, headers=headers)
        except httpx.TransportError as error:
            raise Unavailable(f"platform unreachable: {type(error).__name__}: {error}") from error
        problem = error_for_status(
            response.status_code, response.text, response.headers.get("retry-after")
        )
        if isinstance(problem, Unauthorized):
            self._auth.refused()  # a service account's token is fetched again next time
        if problem is not None:
            raise problem
