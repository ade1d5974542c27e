"""A shopper end to end, on the real server and the real shop database (SQLite demo, MariaDB).

Anonymous browsing and a sign-in reach the edge; the shop's order and customer record reach it
through the connector. One profile holds the three identities, the record's attributes and every
event; an edit in the shop database changes the profile, a deletion removes its record data.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select, update

from koppla.connector import schema as t
from koppla.connector.demo_store import DemoShop
from koppla.connector.runner import run_connector
from koppla.core import codec
from koppla.platform.edge import identity_cookie
from tests.connector.conftest import DEMO_DATASTREAM, DEMO_ORG, Platform, settings_for, wait_for
from tests.flow.test_edge_to_sql import alloy_sample
from tests.flow.test_profile_flow import _sign_in

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _interact(platform: Platform, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{platform.url}/ee/v1/interact?configId={DEMO_DATASTREAM}",
        content=codec.dumps(body),
        headers={"content-type": "text/plain"},
        timeout=10,
    )
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def _profile(platform: Platform, ecid: str) -> dict[str, Any] | None:
    response = httpx.get(
        f"{platform.url}/data/core/ups/access/entities",
        params={"schema.name": "_xdm.context.profile", "entityId": ecid, "entityIdNS": "ECID"},
        headers={"authorization": f"Bearer {platform.token}"},
        timeout=10,
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    (entity,) = response.json().values()
    found: dict[str, Any] = entity
    return found


def _timeline(platform: Platform, ecid: str) -> list[str]:
    response = httpx.get(
        f"{platform.url}/data/core/ups/access/entities",
        params={
            "schema.name": "_xdm.context.experienceevent",
            "relatedSchema.name": "_xdm.context.profile",
            "relatedEntityId": ecid,
            "relatedEntityIdNS": "ECID",
        },
        headers={"authorization": f"Bearer {platform.token}"},
        timeout=10,
    )
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return sorted(str(c["entity"].get("eventType")) for c in response.json()["children"])


def test_browse_sign_in_order_and_shop_record_make_one_profile(
    tmp_path: Path, shop_dsn: str, shop_engine: Engine, platform: Platform
) -> None:
    shop = DemoShop(shop_engine, seed=21)
    customer = shop.create_customer()
    with shop_engine.begin() as conn:
        email = conn.execute(
            select(t.customer_entity.c.email).where(t.customer_entity.c.entity_id == customer)
        ).scalar_one()
        order = shop.place()
        conn.execute(
            update(t.sales_order)
            .where(t.sales_order.c.entity_id == order)
            .values(customer_id=customer, customer_email=email, customer_is_guest=0)
        )
    browsed = _interact(platform, alloy_sample())
    ecid = next(h for h in browsed["handle"] if h["type"] == "identity:result")["payload"][0]["id"]
    cookie = (identity_cookie.cookie_name(DEMO_ORG), identity_cookie.encode(ecid))
    signed_in = _sign_in(cookie)
    signed_in["events"][0]["xdm"]["personalEmail"]["address"] = email.upper()
    _interact(platform, signed_in)
    profiles = {"customer_profiles": True, "profile_dataset_id": platform.dataset("demo_profiles")}
    settings = settings_for(tmp_path / "home", shop_dsn, platform, profiles)
    stop = threading.Event()
    thread = threading.Thread(target=run_connector, args=(settings.home, stop, settings))
    thread.start()
    try:
        merged = wait_for(lambda: _stitched(platform, ecid))
        namespaces = sorted(i["namespace"]["code"] for i in merged["entity"]["identities"])
        assert namespaces == ["CustomerId", "ECID", "Email"]
        name = merged["entity"]["person"]["name"]
        assert wait_for(
            lambda: (
                {
                    "commerce.backofficeOrderPlaced",
                    "userAccount.backofficeCreateProfile",
                    "userAccount.login",
                    "web.webpagedetails.pageViews",
                }
                <= set(_timeline(platform, ecid))
            )
        )
        assert merged["computedAttributes"]["orders"] == 1

        shop.edit_customer(customer, "name")
        edited = wait_for(lambda: _renamed(platform, ecid, name["lastName"]))
        assert edited["entity"]["person"]["name"]["firstName"] == name["firstName"]

        shop.delete_customer(customer)
        gone = wait_for(lambda: _without_record(platform, ecid))
        assert "userAccount.backofficeDeleteProfile" in _timeline(platform, ecid)
        assert len(gone["entity"]["identities"]) == 3  # the links stay; the record data goes
    finally:
        stop.set()
        thread.join(timeout=30)


def _stitched(platform: Platform, ecid: str) -> dict[str, Any] | None:
    found = _profile(platform, ecid)
    if found is None or len(found["entity"].get("identities", [])) < 3:
        return None
    return found if "person" in found["entity"] else None


def _renamed(platform: Platform, ecid: str, old_last: str) -> dict[str, Any] | None:
    found = _profile(platform, ecid)
    person = (found or {}).get("entity", {}).get("person", {})
    last = person.get("name", {}).get("lastName")
    return found if last and last != old_last else None


def _without_record(platform: Platform, ecid: str) -> dict[str, Any] | None:
    found = _profile(platform, ecid)
    return found if found is not None and "person" not in found["entity"] else None
