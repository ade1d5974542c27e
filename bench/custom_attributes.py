"""Custom attribute rename benchmark: a renamed attribute in a shop order → the Custom Order
Attributes table showing the new name; and a field added to the schema → the match showing.

For each of `--renames` trials it gives the next order of the demo shop a custom order attribute
with a new name (`note<n>` in `sales_order_payment.additional_information`, as a merchant's
rename would), commits the order, and polls the table's JSON twin
(`GET /api/v1/connector/custom-attributes`) every 20 ms until the new name shows. The connector
runs at its default settings (triggers, `poll_interval_s` = 1 s) against its own
`koppla up --demo`; the shop is the SQLite demo store, then MariaDB when it is there. Adobe's
figure for the same is about 60 minutes.

(b) then adds each of those names to the demo schema's field group through the registry API and
polls until the table marks it as a match.

Prints p50/p90/max; asserts nothing.

Run:  python bench/custom_attributes.py [--renames 20]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from connector_latency import (
    DEMO_ORG,
    Platform,
    describe,
    mariadb_database,
    prepare_shop,
    settings_for,
)
from koppla.connector import schema
from koppla.connector.demo_store import DemoShop, Ids, new_order
from koppla.connector.runner import run_connector
from koppla.connector.settings import ConnectorSettings
from koppla.connector.source import connect
from koppla.core import clock, codec
from koppla.platform.schemas.demo import FIELD_GROUP_TITLE
from koppla.xdm.tenant import namespace, tenant_id


def shows(platform: Platform, name: str) -> bool:
    answer = platform.http.get("/api/v1/connector/custom-attributes")
    return answer.status_code == 200 and any(
        row["commerce"] == name for row in answer.json()["attributes"]
    )


def place_with(shop: DemoShop, name: str) -> None:
    """Place an order whose payment carries `{name: ...}` in one transaction, so the connector
    never sees the order without the attribute."""
    when = clock.now().replace(tzinfo=None, microsecond=0)
    with shop.engine.begin() as conn:
        draft = new_order(shop.rng, Ids.from_db(conn), when)
        for payment in draft.new.get("sales_order_payment", []):
            payment["additional_information"] = codec.dumps({name: "rename bench"}).decode()
        for table in schema.metadata.sorted_tables:
            if draft.new.get(table.name):
                conn.execute(table.insert(), draft.new[table.name])


def measure(platform: Platform, settings: ConnectorSettings, renames: int) -> list[float]:
    stop = threading.Event()
    thread = threading.Thread(target=run_connector, args=(settings.home, stop, settings))
    thread.start()
    engine = connect(settings.dsn)
    shop = DemoShop(engine, seed=3)
    rng = random.Random(2)
    took: list[float] = []
    try:
        time.sleep(2.0)  # let the initial sync settle
        for n in range(renames):
            name = f"note{n}_{settings.home.name}"
            time.sleep(rng.uniform(0, settings.poll_interval_s))  # not in step with the loop
            began = time.monotonic()
            place_with(shop, name)
            while not shows(platform, name):
                if time.monotonic() - began > 60:
                    raise RuntimeError(f"{name} not in the table after 60 s")
                time.sleep(0.02)
            took.append(time.monotonic() - began)
    finally:
        stop.set()
        thread.join(timeout=30)
        engine.dispose()
    return took


def matches(platform: Platform, name: str) -> bool:
    answer = platform.http.get("/api/v1/connector/custom-attributes")
    return answer.status_code == 200 and any(
        row["commerce"] == name and row["match"] for row in answer.json()["attributes"]
    )


def measure_platform_side(platform: Platform, names: list[str]) -> list[float]:
    """(b): each name the store sent is added to the demo schema's field group through the
    registry API (a JSON Patch `add`); seconds from the PATCH's answer to the match showing."""
    registry = "/data/foundation/schemaregistry/tenant/fieldgroups"
    listed = platform.http.get(registry, headers={"accept": "application/vnd.adobe.xed+json"})
    group = next(g for g in listed.json()["results"] if g["title"] == FIELD_GROUP_TITLE)
    tenant = namespace(tenant_id(DEMO_ORG))
    path = (
        "/definitions/customOrderAttributes/properties/commerce/properties/order/properties/"
        f"{tenant}/properties"
    )
    took: list[float] = []
    for name in names:
        patch = [{"op": "add", "path": f"{path}/{name}", "value": {"type": "string"}}]
        answer = platform.http.patch(f"{registry}/{quote(group['$id'], safe='')}", json=patch)
        answer.raise_for_status()
        began = time.monotonic()
        while not matches(platform, name):
            if time.monotonic() - began > 60:
                raise RuntimeError(f"{name} does not match after 60 s")
            time.sleep(0.02)
        took.append(time.monotonic() - began)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renames", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(
        prefix="koppla-rename-bench-", ignore_cleanup_errors=True
    ) as tmp:
        root = Path(tmp)
        platform = Platform(root / "platform")
        try:
            print(f"renamed attribute -> shown in the table, {args.renames} renames, poll 1 s")
            dsn = f"sqlite:///{root / 'shop.sqlite'}"
            prepare_shop(dsn)
            print(
                "    "
                + describe(
                    "SQLite demo store",
                    measure(platform, settings_for(root / "c1", dsn, platform), args.renames),
                )
            )
            with mariadb_database() as url:
                if url is not None:
                    prepare_shop(url)
                    lat = measure(platform, settings_for(root / "c2", url, platform), args.renames)
                    print("    " + describe("MariaDB", lat))
            names = [f"note{n}_c1" for n in range(args.renames)]
            print("(b) a field added to the schema -> the match shown in the table")
            print("    " + describe("registry PATCH", measure_platform_side(platform, names)))
        finally:
            platform.stop()


if __name__ == "__main__":
    main()
