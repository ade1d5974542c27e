"""Customers written into the shop become profile records and events in the outbox, once.

Runs on the SQLite demo store and on Magento's real schema in MariaDB, in both change-tracking
modes: create → record + create event; edit → record + update event; delete → delete event.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from koppla.connector import schema as t
from koppla.connector.changelog import uninstall_triggers
from koppla.connector.demo_store import DemoShop
from koppla.connector.runner import Connector, run_connector
from koppla.connector.settings import load_settings
from koppla.connector.source import connect
from koppla.core import clock
from koppla.core.errors import InvalidInput
from tests.connector.conftest import Platform, settings_for, wait_for

pytestmark = pytest.mark.integration

ORG = "KOPPLADEMO00000000000000@AdobeOrg"
CREATE = "userAccount.backofficeCreateProfile"
UPDATE = "userAccount.backofficeUpdateProfile"
DELETE = "userAccount.backofficeDeleteProfile"
RECORD = "profileRecord"


def site(**extra: Any) -> dict[str, Any]:
    return {
        "website_code": "base",
        "org_id": ORG,
        "datastream_id": "ds",
        "dataset_id": "events",
        "customer_profiles": True,
        "profile_dataset_id": "profiles",
        **extra,
    }


@pytest.fixture(params=["triggers", "poll"])
def connector(request: pytest.FixtureRequest, tmp_path: Path, shop_dsn: str) -> Iterator[Connector]:
    """A connector with customer profiles on (the platform is unreachable: the outbox keeps all)."""
    settings = load_settings(
        tmp_path,
        source_dsn=shop_dsn,
        change_tracking=request.param,
        platform_url="http://127.0.0.1:9",
        websites=[site()],
    )
    made = Connector(settings)
    if request.param == "poll":
        uninstall_triggers(made.engine)  # poll mode needs no objects in the shop
        made.sweep_every_s = 0.0
    made.check()
    yield made
    made.close()


def outbox(connector: Connector) -> list[tuple[int | None, str, str]]:
    """(customer id, target, type) of every customer message, in outbox order."""
    return [
        (m.customer_id, m.target, m.event_type)
        for m in connector.state.pending(10_000)
        if m.target != "events"
    ]


def added_by_step(connector: Connector) -> list[tuple[int | None, str, str]]:
    before = len(outbox(connector))
    connector.step()
    return outbox(connector)[before:]


def created(cid: int) -> list[tuple[int | None, str, str]]:
    return [(cid, "profile_records", RECORD), (cid, "profile_events", CREATE)]


def updated(cid: int) -> list[tuple[int | None, str, str]]:
    return [(cid, "profile_records", RECORD), (cid, "profile_events", UPDATE)]


def test_create_edit_delete_each_queue_their_messages_once(
    connector: Connector, shop_engine: Engine
) -> None:
    shop = DemoShop(shop_engine, seed=5)
    old = shop.create_customer()
    assert added_by_step(connector) == created(old)  # the backfill
    assert added_by_step(connector) == []
    fresh = shop.create_customer()
    assert added_by_step(connector) == created(fresh)
    shop.edit_customer(old, "name")
    assert added_by_step(connector) == updated(old)
    assert added_by_step(connector) == []
    shop.edit_customer(fresh, "address")
    assert added_by_step(connector) == updated(fresh)
    shop.delete_customer(old)
    assert added_by_step(connector) == [(old, "profile_events", DELETE)]
    assert added_by_step(connector) == []
    assert set(connector.state.customer_ids()) == {fresh}


def test_the_update_carries_the_new_data(connector: Connector, shop_engine: Engine) -> None:
    shop = DemoShop(shop_engine, seed=6)
    cid = shop.create_customer()
    connector.step()
    with shop_engine.begin() as conn:
        conn.execute(
            update(t.customer_entity)
            .where(t.customer_entity.c.entity_id == cid)
            .values(firstname="Rosalind", email="rosalind@example.com", updated_at=_now())
        )
    connector.step()
    record, event = [m.body for m in connector.state.pending(100) if m.customer_id == cid][-2:]
    assert record["person"]["name"]["firstName"] == "Rosalind"
    assert record["personalEmail"]["address"] == "rosalind@example.com"
    assert record["identityMap"]["Email"] == [{"id": "rosalind@example.com", "primary": False}]
    assert event["eventType"] == UPDATE and event["person"]["name"]["firstName"] == "Rosalind"
    assert connector.state.customer_snapshots([cid])[cid].doc["firstName"] == "Rosalind"


def _now() -> datetime:
    return clock.now().replace(tzinfo=None, microsecond=0)


def test_the_delete_event_names_the_deleted_customer(
    connector: Connector, shop_engine: Engine
) -> None:
    shop = DemoShop(shop_engine, seed=7)
    cid = shop.create_customer()
    connector.step()
    email = connector.state.customer_snapshots([cid])[cid].doc["email"]
    shop.delete_customer(cid)
    connector.step()
    event = connector.state.pending(100)[-1].body
    assert event["eventType"] == DELETE
    assert event["identityMap"] == {
        "CustomerId": [{"id": str(cid), "primary": True}],
        "Email": [{"id": email, "primary": False}],
    }
    assert event["timestamp"].endswith("Z")
    assert connector.state.customer_snapshots([cid]) == {}


def test_customers_of_websites_without_profiles_are_not_sent(
    tmp_path: Path, shop_dsn: str, shop_engine: Engine
) -> None:
    settings = load_settings(
        tmp_path,
        source_dsn=shop_dsn,
        platform_url="http://127.0.0.1:9",
        websites=[site(customer_profiles=False, profile_dataset_id="")],
    )
    DemoShop(shop_engine, seed=8).create_customer()
    made = Connector(settings)
    try:
        made.step()
        made.step()
        assert outbox(made) == []
    finally:
        made.close()


def test_triggers_mode_refuses_to_run_without_the_customer_changelog(
    tmp_path: Path, sqlite_shop: str
) -> None:
    settings = load_settings(tmp_path, source_dsn=sqlite_shop, websites=[site()])
    made = Connector(settings)
    try:
        with made.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE koppla_customer_cl")
        with pytest.raises(InvalidInput) as caught:
            made.check()
        assert "install-triggers" in str(caught.value)
    finally:
        made.close()


@pytest.mark.slow
def test_customer_changes_reach_the_platform(
    tmp_path: Path, shop_dsn: str, shop_engine: Engine, platform: Platform
) -> None:
    profiles = {"customer_profiles": True, "profile_dataset_id": platform.dataset("demo_profiles")}
    settings = settings_for(tmp_path / "home", shop_dsn, platform, profiles)
    shop = DemoShop(shop_engine, seed=9)
    cid = shop.create_customer()
    stop = threading.Event()
    thread = threading.Thread(target=run_connector, args=(settings.home, stop, settings))
    thread.start()
    try:
        wait_for(lambda: kinds(platform, cid) == [CREATE])
        shop.edit_customer(cid, "name")
        wait_for(lambda: kinds(platform, cid) == [CREATE, UPDATE])
        shop.delete_customer(cid)
        wait_for(lambda: kinds(platform, cid) == [CREATE, DELETE, UPDATE])
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    with shop_engine.connect() as conn:
        gone = conn.execute(
            select(t.customer_entity).where(t.customer_entity.c.entity_id == cid)
        ).all()
    assert gone == []
    records = platform.query(
        "SELECT person.name.lastName, userAccount.startDate FROM demo_profiles "
        "ORDER BY extSourceSystemAudit.lastUpdatedDate, _id"
    )
    assert len(records) == 2  # the create and the update record; none for the delete
    assert records[0][0] != records[1][0]  # the edit changed the last name
    assert platform.query("SELECT count(*) FROM quarantine") == [[0]]


def kinds(platform: Platform, cid: int) -> list[str]:
    rows = platform.query(
        "SELECT eventType FROM demo_events WHERE eventType LIKE 'userAccount.%' "
        f"AND personalEmail.address LIKE '%.{cid}@example.com' ORDER BY eventType"
    )
    return [str(r[0]) for r in rows]


def test_turning_profiles_off_and_on_again_backfills_what_was_missed(
    tmp_path: Path, sqlite_shop: str
) -> None:
    engine_shop = DemoShop(connect(sqlite_shop), seed=3)
    first = engine_shop.create_customer()

    def run_once(profiles: bool) -> list[tuple[int | None, str, str]]:
        extra = {} if profiles else {"customer_profiles": False, "profile_dataset_id": ""}
        settings = load_settings(
            tmp_path,
            source_dsn=sqlite_shop,
            platform_url="http://127.0.0.1:9",
            websites=[site(**extra)],
        )
        made = Connector(settings)
        try:
            made.check()
            return added_by_step(made)
        finally:
            made.close()

    assert run_once(True) == created(first)
    assert run_once(False) == []
    missed = engine_shop.create_customer()
    engine_shop.edit_customer(first, "name")
    assert run_once(False) == []
    assert run_once(True) == [*updated(first), *created(missed)]
    assert run_once(True) == []
    engine_shop.engine.dispose()


def test_a_resync_queues_the_same_messages_again(tmp_path: Path, sqlite_shop: str) -> None:
    settings = load_settings(
        tmp_path, source_dsn=sqlite_shop, platform_url="http://127.0.0.1:9", websites=[site()]
    )
    shop = DemoShop(connect(sqlite_shop), seed=4)
    cid = shop.create_customer()
    made = Connector(settings)
    try:
        made.step()
        shop.edit_customer(cid, "name")
        made.step()
        first = {m.event_id: m.event_type for m in made.state.pending(100)}
        made.state.mark_sent(m.seq for m in made.state.pending(100))
        report = made.reindex_customers(resend=True)
        again = {m.event_id: m.event_type for m in made.state.pending(100)}
    finally:
        made.close()
        shop.engine.dispose()
    assert report.events == 2
    assert sorted(again.values()) == [RECORD, UPDATE]
    assert set(again) <= set(first)  # the latest record and event, named as the first time


def test_mysql_zero_and_impossible_dates_read_as_no_date_and_the_customer_still_goes_out(
    tmp_path: Path, magento: str
) -> None:
    from sqlalchemy import text

    settings = load_settings(
        tmp_path,
        source_dsn=magento,
        change_tracking="poll",
        platform_url="http://127.0.0.1:9",
        websites=[site()],
    )
    made = Connector(settings)
    try:
        with made.engine.begin() as conn:
            conn.execute(text("SET SESSION sql_mode=''"))  # as many real shops run
            conn.execute(
                text(
                    "INSERT INTO customer_entity (entity_id, website_id, email, firstname, "
                    "lastname, dob, created_at, updated_at, group_id, store_id) VALUES "
                    "(901, 1, 'zero@example.com', 'Zed', 'Zero', '0000-00-00', "
                    "'0000-00-00 00:00:00', '2026-01-01 00:00:00', 1, 1)"
                )
            )
        made.step()

        records = [m.body for m in made.state.pending(100) if m.target == "profile_records"]
    finally:
        made.close()
    (record,) = records
    assert record["person"]["name"] == {"firstName": "Zed", "lastName": "Zero"}
    assert "birthDate" not in record["person"]
    assert "startDate" not in record.get("userAccount", {})


def test_an_address_edit_undone_later_is_sent_each_time(
    connector: Connector, shop_engine: Engine
) -> None:
    from datetime import timedelta

    shop = DemoShop(shop_engine, seed=12)
    cid = shop.create_customer()
    connector.step()
    address = t.customer_address_entity
    with shop_engine.connect() as conn:
        billing = conn.execute(
            select(t.customer_entity.c.default_billing).where(t.customer_entity.c.entity_id == cid)
        ).scalar_one()
        first_city = conn.execute(
            select(address.c.city).where(address.c.entity_id == billing)
        ).scalar_one()
    later = _now()
    for n, city in enumerate(["Elsewhere", first_city, "Elsewhere"]):
        with shop_engine.begin() as conn:
            conn.execute(
                update(address)
                .where(address.c.entity_id == billing)
                .values(city=city, updated_at=later + timedelta(seconds=n + 1))
            )
        assert added_by_step(connector) == updated(cid), f"edit {n} to {city}"
