"""The sender against a fake platform (httpx.MockTransport): batching, retries, giving up."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from koppla.connector.delivery import CONTENT_TYPE, Batch, Batcher, Sender, encode
from koppla.connector.demo_store import Ids, invoice, new_order, ship
from koppla.connector.events import EventContext, history
from koppla.connector.settings import ConnectorSettings, load_settings
from koppla.connector.snapshot import OrderRows, build_snapshot
from koppla.connector.state import CustomerMessage, FeedCommit, OutboxEvent, State
from koppla.core import codec
from koppla.xdm.experience_event import SCHEMA_ID as EVENT_SCHEMA_ID
from koppla.xdm.profile import PROFILE_SCHEMA_ID
from tests.connector.samples import CTX, SCOPE, Order

ORG = "KOPPLADEMO00000000000000@AdobeOrg"


def make_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: Any
) -> ConnectorSettings:
    monkeypatch.setenv("KOPPLA_CONNECTOR_TOKEN", "kpl_secret")
    site = {"website_code": "base", "org_id": ORG, "datastream_id": "ds-1", "dataset_id": "set-1"}
    return load_settings(tmp_path, platform_url="http://platform.test", websites=[site], **extra)


def fill(state: State, orders: int) -> int:
    change = FeedCommit()
    for seed in range(orders):
        snap = Order(seed=seed).invoice().snapshot()
        change.events += [(seed, "base", e) for e in history(snap, CTX)]
    return state.commit(change)


Handler = Callable[[httpx.Request], httpx.Response]


def sender_with(settings: ConnectorSettings, state: State, handler: Handler) -> Sender:
    return Sender(settings, state, httpx.Client(transport=httpx.MockTransport(handler)))


def test_events_go_in_outbox_order_as_aep_streaming_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, monkeypatch)
    state = State(settings.state_path)
    queued = fill(state, 3)
    in_outbox = [e.event_id for e in state.pending(100)]
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/collection/batch/ds-1"
        assert request.headers["authorization"] == "Bearer kpl_secret"
        seen.extend(codec.loads(request.content)["messages"])
        return httpx.Response(207, json={"responses": []})

    result = sender_with(settings, state, handler).drain()
    assert (result.sent, result.failed) == (queued, 0)
    header = seen[0]["header"]
    assert header["imsOrgId"] == ORG and header["datasetId"] == "set-1"
    assert header["schemaRef"]["id"] == "https://ns.koppla.dev/xdm/commerce-experienceevent"
    assert header["source"] == {"name": "koppla-connector"}
    assert seen[0]["body"]["xdmMeta"]["schemaRef"] == header["schemaRef"]
    ids = [m["body"]["xdmEntity"]["_id"] for m in seen]
    assert ids == in_outbox and len(ids) == queued
    assert state.backlog().pending == 0 and state.backlog().sent == queued


def test_429_with_retry_after_keeps_events_pending_and_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, monkeypatch)
    state = State(settings.state_path)
    queued = fill(state, 2)
    answers = [httpx.Response(429, headers={"Retry-After": "60"}), httpx.Response(207, json={})]
    sender = sender_with(settings, state, lambda request: answers.pop(0))
    first = sender.drain()
    assert first.waiting and first.sent == 0
    assert state.backlog().pending == queued
    assert sender.backoff.delay() < 60 <= sender.backoff.not_before - _now()
    assert sender.drain().waiting  # not before Retry-After
    sender.backoff.not_before = 0.0
    assert sender.drain().sent == queued


def _now() -> float:
    from koppla.core import clock

    return clock.monotonic() - 1


def test_a_network_error_is_retried_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path, monkeypatch)
    state = State(settings.state_path)
    fill(state, 1)

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    result = sender_with(settings, state, handler).drain()
    assert result.waiting and state.backlog().pending > 0


def test_a_400_marks_the_batch_failed_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, monkeypatch)
    state = State(settings.state_path)
    queued = fill(state, 1)
    sender = sender_with(
        settings, state, lambda r: httpx.Response(400, json={"detail": "messages[0] is wrong"})
    )
    result = sender.drain()
    assert (result.sent, result.failed) == (0, queued)
    failures = state.failed()
    assert len(failures) == queued and "400" in failures[0][2] and "is wrong" in failures[0][2]


def test_a_401_keeps_events_pending(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path, monkeypatch)
    state = State(settings.state_path)
    queued = fill(state, 1)
    result = sender_with(settings, state, lambda r: httpx.Response(401)).drain()
    assert result.waiting and state.backlog().pending == queued and state.failed() == []


def test_a_413_splits_the_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path, monkeypatch)
    state = State(settings.state_path)
    queued = fill(state, 2)
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        count = len(codec.loads(request.content)["messages"])
        sizes.append(count)
        return httpx.Response(413 if count > 1 else 207, json={})

    assert sender_with(settings, state, handler).drain().sent == queued
    assert sizes[0] == queued and sizes.count(1) == queued


def batches(
    events: list[OutboxEvent], settings: ConnectorSettings, max_messages: int, max_bytes: int
) -> list[Batch]:
    """Every request a `Batcher` makes of `events`: the full ones, then the partly filled."""
    batcher = Batcher({w.website_code: w for w in settings.websites}, max_messages, max_bytes)
    return [batch for event in events for batch in batcher.add(event)] + batcher.flush()


def test_batches_close_by_count_and_by_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, monkeypatch)
    state = State(settings.state_path)
    fill(state, 30)
    events = state.pending(1000)
    by_count = batches(events, settings, max_messages=7, max_bytes=1_000_000)
    assert [len(b[1]) for b in by_count][:-1] == [7] * (len(by_count) - 1)
    by_bytes = batches(events, settings, max_messages=500, max_bytes=20_000)
    for _, chunk, bodies in by_bytes:
        assert len(b'{"messages":[') + sum(len(b) + 1 for b in bodies) + 2 <= 20_000
        assert chunk
    assert [e.seq for b in by_bytes for e in b[1]] == [e.seq for e in events]


def test_events_of_a_website_no_longer_configured_fail_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, monkeypatch)
    state = State(settings.state_path)
    snap = Order(seed=1).snapshot()
    state.commit(FeedCommit(events=[(1, "gone", e) for e in history(snap, CTX)]))
    result = sender_with(settings, state, lambda r: httpx.Response(207, json={})).drain()
    assert (result.sent, result.failed) == (0, 1)
    assert state.failed()[0][2] == "the website is no longer configured"


def test_delivered_messages_leave_the_outbox_and_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, monkeypatch)
    state = State(settings.state_path)
    queued = fill(state, 2)
    answers = [httpx.Response(400, json={"detail": "no"})]  # then 207s

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else httpx.Response(207, json={})

    one_per_request = settings.model_copy(update={"batch_max_messages": 1})
    sender_with(one_per_request, state, handler).drain()
    rows = state._file.all("SELECT status, length(body) FROM outbox")
    assert [status for status, _size in rows] == ["failed"]  # the refused one, body and all
    assert rows[0][1] > 100
    backlog = state.backlog()
    assert (backlog.sent, backlog.failed, backlog.pending) == (queued - 1, 1, 0)
    assert backlog.last_sent_ms is not None
    assert state.prune_sent(2**62) == 0  # nothing delivered is kept to prune
    state.close()
    assert State(settings.state_path).backlog().sent == queued - 1  # the count is durable


def profile_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **site_extra: Any
) -> ConnectorSettings:
    monkeypatch.setenv("KOPPLA_CONNECTOR_TOKEN", "kpl_secret")
    site = {
        "website_code": "base",
        "org_id": ORG,
        "datastream_id": "ds-1",
        "dataset_id": "set-1",
        "customer_profiles": True,
        "profile_dataset_id": "profiles-1",
        **site_extra,
    }
    return load_settings(tmp_path, platform_url="http://platform.test", websites=[site])


def fill_mixed(state: State) -> None:
    """An order's events, then a customer's record and create event."""
    fill(state, 1)
    record = {"_id": "rec-1", "identityMap": {"CustomerId": [{"id": "7", "primary": True}]}}
    event = {"_id": "evt-1", "eventType": "userAccount.backofficeCreateProfile"}
    state.commit(
        FeedCommit(
            customer_messages=[
                CustomerMessage(7, "base", "profile_records", record),
                CustomerMessage(7, "base", "profile_events", event),
            ]
        )
    )


def deliver(settings: ConnectorSettings, state: State) -> list[tuple[str, dict[str, Any]]]:
    """Drain to a fake platform; every (request path, message) it received."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.extend((request.url.path, m) for m in codec.loads(request.content)["messages"])
        return httpx.Response(207, json={})

    result = sender_with(settings, state, handler).drain()
    assert result.failed == 0 and state.backlog().pending == 0
    return seen


def _where(seen: list[tuple[str, dict[str, Any]]], entity_id: str) -> tuple[str, str, str]:
    path, msg = next((p, m) for p, m in seen if m["body"]["xdmEntity"]["_id"] == entity_id)
    return path, msg["header"]["datasetId"], msg["header"]["schemaRef"]["id"]


def test_profile_records_go_to_the_profile_dataset_through_a_separate_datastream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = profile_settings(
        tmp_path, monkeypatch, profiles_same_datastream=False, profile_datastream_id="ds-prof"
    )
    state = State(settings.state_path)
    fill_mixed(state)
    seen = deliver(settings, state)
    assert _where(seen, "rec-1") == ("/collection/batch/ds-prof", "profiles-1", PROFILE_SCHEMA_ID)
    assert _where(seen, "evt-1") == ("/collection/batch/ds-prof", "set-1", EVENT_SCHEMA_ID)
    orders = [
        (p, m["header"]["datasetId"])
        for p, m in seen
        if m["body"]["xdmEntity"]["_id"] not in ("rec-1", "evt-1")
    ]
    assert orders and set(orders) == {("/collection/batch/ds-1", "set-1")}
    record = next(m for _p, m in seen if m["body"]["xdmEntity"]["_id"] == "rec-1")
    assert record["header"]["flowId"] == "ds-prof"
    assert record["body"]["xdmMeta"]["schemaRef"]["id"] == PROFILE_SCHEMA_ID


def test_profiles_stream_through_the_same_datastream_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = profile_settings(tmp_path, monkeypatch)
    state = State(settings.state_path)
    fill_mixed(state)
    seen = deliver(settings, state)
    assert {p for p, _m in seen} == {"/collection/batch/ds-1"}
    assert _where(seen, "rec-1") == ("/collection/batch/ds-1", "profiles-1", PROFILE_SCHEMA_ID)
    assert _where(seen, "evt-1") == ("/collection/batch/ds-1", "set-1", EVENT_SCHEMA_ID)


def test_customer_messages_fail_once_the_website_turns_profiles_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, monkeypatch)
    state = State(settings.state_path)
    fill_mixed(state)
    result = sender_with(settings, state, lambda r: httpx.Response(207, json={})).drain()
    assert result.failed == 2 and result.sent > 0
    assert {reason for _id, _type, reason in state.failed()} == {
        "customer profiles are off for the website"
    }


def test_an_old_state_file_gains_the_customer_columns(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL "
            "UNIQUE, order_id INTEGER NOT NULL, website TEXT NOT NULL, event_type TEXT NOT NULL, "
            "body BLOB NOT NULL, status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT "
            "NULL DEFAULT 0, error TEXT, created_ms INTEGER NOT NULL, sent_ms INTEGER)"
        )
        db.execute(
            "INSERT INTO outbox (event_id, order_id, website, event_type, body, created_ms) "
            "VALUES ('e1', 5, 'base', 'commerce.backofficeOrderPlaced', '{\"_id\":\"e1\"}', 1)"
        )
    state = State(path)
    fill_mixed(state)
    pending = state.pending(100)
    assert (pending[0].event_id, pending[0].target, pending[0].order_id) == ("e1", "events", 5)
    assert [(m.target, m.customer_id) for m in pending[-2:]] == [
        ("profile_records", 7),
        ("profile_events", 7),
    ]
    state.close()
    State(path).close()  # opening a migrated file again changes nothing


def two_website_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: Any
) -> ConnectorSettings:
    monkeypatch.setenv("KOPPLA_CONNECTOR_TOKEN", "kpl_secret")
    sites = [
        {
            "website_code": code,
            "org_id": ORG,
            "datastream_id": f"ds-{code}",
            "dataset_id": f"set-{code}",
        }
        for code in ("base", "second")
    ]
    return load_settings(tmp_path, platform_url="http://platform.test", websites=sites, **extra)


def interleaved(state: State, orders: int) -> dict[str, int]:
    """Orders of two websites mixed in the outbox (two of `base` for each of `second`)."""
    ids, rng = Ids(), random.Random(5)
    change = FeedCommit()
    for n in range(orders):
        website = "second" if n % 3 == 2 else "base"
        draft = new_order(rng, ids, datetime(2026, 11, 2, 9, 0) + timedelta(minutes=n))
        invoice(draft, ids, datetime(2026, 11, 3))
        ship(draft, ids, datetime(2026, 11, 4), rng)
        rows = {name: list(found) for name, found in draft.new.items()}
        snap = build_snapshot(
            OrderRows(
                order=draft.order,
                scope=SCOPE,
                items=draft.items,
                addresses=rows["sales_order_address"],
                payment=draft.payment,
                invoices=rows["sales_invoice"],
                invoice_items=rows["sales_invoice_item"],
                shipments=rows["sales_shipment"],
                shipment_items=rows["sales_shipment_item"],
                tracks=rows["sales_shipment_track"],
            )
        )
        ctx = EventContext(website, "env-1")
        change.events += [(n, website, e) for e in history(snap, ctx)]
    state.commit(change)
    return Counter(website for _n, website, _e in change.events)


def test_two_interleaved_websites_go_out_in_full_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = two_website_settings(tmp_path, monkeypatch)
    state = State(settings.state_path)
    queued = interleaved(state, 1500)
    order = {e.event_id: e.seq for e in state.pending(100_000)}
    requests: list[tuple[str, list[str], int]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        messages = codec.loads(request.content)["messages"]
        stream = request.url.path.rsplit("/", 1)[-1]
        assert {m["header"]["flowId"] for m in messages} == {stream}
        assert {m["header"]["datasetId"] for m in messages} == {stream.replace("ds-", "set-")}
        requests.append(
            (stream, [m["body"]["xdmEntity"]["_id"] for m in messages], len(request.content))
        )
        return httpx.Response(207, json={})

    result = sender_with(settings, state, handler).drain(max_rounds=1_000)
    assert result.sent == sum(queued.values()) and state.backlog().pending == 0
    per_stream = {"ds-base": queued["base"], "ds-second": queued["second"]}
    assert len(requests) == sum(-(-n // 500) for n in per_stream.values())  # ⌈n/500⌉ each
    for stream, count in per_stream.items():
        sent = [ids for s, ids, _size in requests if s == stream]
        assert [len(ids) for ids in sent[:-1]] == [500] * (len(sent) - 1)
        flat = [i for ids in sent for i in ids]
        assert len(flat) == count == len(set(flat))
        assert [order[i] for i in flat] == sorted(order[i] for i in flat)  # outbox order
    assert all(size <= 1_000_000 for _s, _ids, size in requests)


def test_a_message_is_encoded_as_its_json_with_the_stored_body_spliced_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = profile_settings(tmp_path, monkeypatch)
    state = State(settings.state_path)
    fill_mixed(state)
    site = settings.websites[0]
    routes = {
        "events": ("ds-1", "set-1", EVENT_SCHEMA_ID),
        "profile_events": ("ds-1", "set-1", EVENT_SCHEMA_ID),
        "profile_records": ("ds-1", "profiles-1", PROFILE_SCHEMA_ID),
    }
    for event in state.pending(100):
        encoded = encode(event, site)
        assert encoded.endswith(event.raw + b"}}")  # the stored body as it is, not re-encoded
        parsed = codec.loads(encoded)
        schema_ref = {"id": routes[event.target][2], "contentType": CONTENT_TYPE}
        assert parsed == {
            "header": {
                "schemaRef": schema_ref,
                "imsOrgId": ORG,
                "datasetId": routes[event.target][1],
                "flowId": routes[event.target][0],
                "source": {"name": "koppla-connector"},
            },
            "body": {"xdmMeta": {"schemaRef": schema_ref}, "xdmEntity": event.body},
        }


def test_one_datastreams_backlog_does_not_hold_back_anothers_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 5 messages a request: one drain (100 rounds of 20) reads 2,000 of the outbox, less than
    # `base` has waiting; `second`'s three events among them must go out in that drain
    settings = two_website_settings(tmp_path, monkeypatch, batch_max_messages=5)
    state = State(settings.state_path)
    body = {"eventType": "commerce.backofficeOrderPlaced"}
    events = [(n, "base", {**body, "_id": f"base-{n}"}) for n in range(2_500)]
    for n, at in enumerate((3, 700, 1_500)):
        events.insert(at, (n, "second", {**body, "_id": f"second-{n}"}))
    state.commit(FeedCommit(events=events))
    received: dict[str, list[str]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        stream = request.url.path.rsplit("/", 1)[-1]
        ids = [m["body"]["xdmEntity"]["_id"] for m in codec.loads(request.content)["messages"]]
        received.setdefault(stream, []).extend(ids)
        return httpx.Response(207, json={})

    result = sender_with(settings, state, handler).drain()
    assert received["ds-second"] == ["second-0", "second-1", "second-2"]
    assert received["ds-base"] == [f"base-{n}" for n in range(len(received["ds-base"]))]
    assert result.sent == len(received["ds-base"]) + 3
    assert state.backlog().pending == len(events) - result.sent
