"""Profiles benchmark: record-to-lookup latency, link updates/s, lookup p99, bytes per profile.

What it measures:

1. `latency` — against its own `koppla up --demo --no-demo-shop` (temp home, free port): a profile
   record posted to `POST /collection/{datastream}` (the demo profile dataset), then
   `GET /data/core/ups/access/entities?...&entityIdNS=CustomerId` polled every 10 ms until the
   record's new first name shows. `--probes` records, one at a time; seconds from the POST's
   acknowledgement to the lookup returning it (Adobe's figure is about 10 minutes).
1b. `shop` — the same server with the store connector (poll interval 1 s) on a SQLite demo shop
   (`--mariadb`: on MariaDB): a customer's name edited in the shop database, then a customer
   deleted; seconds until the profile lookup shows the new name / no record data any more.
2. `links` — in process, on a fresh store (SQLite by default, `--store-url` for PostgreSQL): the
   profile stage applying `--shoppers` shoppers' observations in chunks of `--chunk` (20,000,
   what the runner reads at once), each one a link update (identities seen together: a sign-in
   with ECID and email, the shop's record with customer id and email, a second device's
   sign-in); link updates per second, storage included. Then as many sign-ins of known
   shoppers on known devices (links known, times move on).
3. `lookup` — a store filled with `--profiles` profiles (bulk-written in the stage's own row
   shapes: three identities, two links, one record, one activity row and two events each), then
   `--lookups` random lookups by email through `ProfileLookup.profile` (merge on read included):
   p50/p99/max milliseconds.
   Then how long the SQL tables `profiles` and `identities` take to read from that store (each
   query naming them reads them afresh).
4. `size` — the store's bytes on disk per profile after step 3 (and after step 2, where each
   shopper's profile also holds three timeline events).

Run:  python bench/profiles.py                       # all four, 1M profiles
      python bench/profiles.py --only links --store-url postgresql+psycopg://postgres@127.0.0.1/test
It prints a plain-text report and asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from edge_throughput import machine, own_server
from koppla.platform.profiles.graph import Limits, Link
from koppla.platform.profiles.identity import Identity
from koppla.platform.profiles.lookup import ProfileLookup
from koppla.platform.profiles.observation import Observation, observe
from koppla.platform.profiles.policies import PolicyBook
from koppla.platform.profiles.sql import identities_table, profiles_table
from koppla.platform.profiles.stage import ProfileStage
from koppla.platform.profiles.store import ProfileStore
from koppla.platform.profiles.stored import (
    Activity,
    Member,
    ProfileRow,
    StoredEvent,
    StoredFragment,
    Write,
)
from koppla.xdm.profile import PROFILE_SCHEMA_ID

T0 = 1_780_000_000_000
CONTENT_TYPE = "application/vnd.adobe.xed-full+json;version=1"


def pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# --- 1. record posted -> lookup returns it ----------------------------------------------------


def latency(probes: int) -> dict[str, Any]:
    seconds: list[float] = []
    with own_server() as target:
        auth = {"authorization": f"Bearer {target.token}"}
        with httpx.Client(base_url=target.base_url, headers=auth, timeout=10) as http:
            for n in range(probes):
                customer = f"bench-{int(time.time())}-{n}"
                marker = f"First{n}"
                record = {
                    "identityMap": {
                        "CustomerId": [{"id": customer, "primary": True}],
                        "Email": [{"id": f"{customer}@example.com", "primary": False}],
                    },
                    "person": {"name": {"firstName": marker, "lastName": "Bench"}},
                }
                ref = {"id": PROFILE_SCHEMA_ID, "contentType": CONTENT_TYPE}
                message = {
                    "header": {"schemaRef": ref, "datasetId": "demo_profiles"},
                    "body": {"xdmMeta": {"schemaRef": ref}, "xdmEntity": record},
                }
                response = http.post(f"/collection/{target.datastream}", json=message)
                response.raise_for_status()
                acked = time.monotonic()
                params = {
                    "schema.name": "_xdm.context.profile",
                    "entityId": customer,
                    "entityIdNS": "CustomerId",
                }
                while time.monotonic() - acked < 30:
                    found = http.get("/data/core/ups/access/entities", params=params)
                    if found.status_code == 200 and marker in found.text:
                        seconds.append(time.monotonic() - acked)
                        break
                    time.sleep(0.01)
    return {
        "probes": probes,
        "found": len(seconds),
        "p50_s": pct(seconds, 0.5),
        "p90_s": pct(seconds, 0.9),
        "max_s": max(seconds),
    }


# --- 1b. customer edited / deleted in the shop database -> profile changed -------------------


def shop_changes(probes: int, mariadb: bool) -> dict[str, Any]:
    """Edit a customer's name, then delete a customer, in the shop database (SQLite demo store
    or MariaDB); seconds until the profile lookup shows the new name / no record data."""
    import threading

    from connector_latency import Platform, mariadb_database, prepare_shop
    from koppla.connector.demo import demo_settings
    from koppla.connector.demo_store import DemoShop
    from koppla.connector.runner import run_connector
    from koppla.connector.source import connect

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="koppla-profiles-shop-") as tmp:
        platform = Platform(Path(tmp) / "platform")
        try:
            with mariadb_database() as maria:
                dsn = maria if mariadb and maria else f"sqlite:///{tmp}/shop.sqlite"
                prepare_shop(dsn)
                engine = connect(dsn)
                shop = DemoShop(engine, seed=5)
                customers = [shop.create_customer() for _ in range(2 * probes)]
                profiles = str(platform.http.get("/api/v1/datasets/demo_profiles").json()["id"])
                settings = demo_settings(
                    Path(tmp) / "connector",
                    environment_id="bench",
                    platform_url=platform.url,
                    token=platform.token,
                    dataset_id=platform.dataset_id,
                    profile_dataset_id=profiles,
                    source_dsn=dsn,
                    poll_interval_s=1.0,
                )
                stop = threading.Event()
                thread = threading.Thread(
                    target=run_connector, args=(settings.home, stop, settings)
                )
                thread.start()
                try:
                    for cid in customers:
                        _wait(lambda c=cid: _name(platform.http, c) is not None, 120)
                    edits, deletes = [], []
                    for cid in customers[:probes]:
                        before = _name(platform.http, cid)
                        time.sleep(random.random())
                        shop.edit_customer(cid, "name")
                        began = time.monotonic()
                        _wait(lambda c=cid, b=before: _name(platform.http, c) not in (b, None), 30)
                        edits.append(time.monotonic() - began)
                    for cid in customers[probes:]:
                        time.sleep(random.random())
                        shop.delete_customer(cid)
                        began = time.monotonic()
                        _wait(lambda c=cid: _name(platform.http, c) == "", 30)
                        deletes.append(time.monotonic() - began)
                finally:
                    stop.set()
                    thread.join(timeout=30)
                    engine.dispose()
                out = {"store": "MariaDB" if mariadb and maria else "SQLite demo store"}
                out.update(edit=edits, delete=deletes)
        finally:
            platform.stop()
    return out


def _name(http: httpx.Client, customer: int) -> str | None:
    """The profile's last name; "" when the profile has no record data; None when unknown."""
    params = {
        "schema.name": "_xdm.context.profile",
        "entityId": str(customer),
        "entityIdNS": "CustomerId",
    }
    found = http.get("/data/core/ups/access/entities", params=params)
    if found.status_code != 200:
        return None
    (entity,) = found.json().values()
    person = entity["entity"].get("person")
    return "" if person is None else str(person.get("name", {}).get("lastName", ""))


def _wait(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("the change did not show in time")
        time.sleep(0.02)


# --- 2. link updates per second through the stage ---------------------------------------------


def shopper(n: int) -> list[Observation]:
    email = f"shopper{n}@example.com"
    first = {
        "_id": f"login-{n}",
        "timestamp": "2026-06-01T10:00:00.000Z",
        "eventType": "userAccount.login",
        "identityMap": {"ECID": [{"id": f"{n:038d}", "primary": True}], "Email": [{"id": email}]},
    }
    record = {
        "_id": f"rec-{n}",
        "identityMap": {
            "CustomerId": [{"id": str(n), "primary": True}],
            "Email": [{"id": email}],
        },
        "person": {"name": {"firstName": f"F{n}", "lastName": f"L{n}"}},
        "personalEmail": {"address": email},
    }
    second = {**first, "_id": f"login2-{n}", "timestamp": "2026-06-02T10:00:00.000Z"}
    second["identityMap"] = {
        "ECID": [{"id": f"9{n:037d}", "primary": True}],
        "Email": [{"id": email}],
    }
    out = [
        observe("events", "event", first, T0),
        observe("profiles", "record", record, T0 + 1),
        observe("events", "event", second, T0 + 2),
    ]
    return [o for o in out if o is not None]


def returning(n: int, visit: int) -> Observation | None:
    """A known shopper signing in again on a known device: links known, times move on."""
    body = {
        "_id": f"again-{visit}-{n}",
        "timestamp": f"2026-07-{1 + visit % 28:02d}T10:00:00.000Z",
        "eventType": "userAccount.login",
        "identityMap": {
            "ECID": [{"id": f"{n:038d}", "primary": True}],
            "Email": [{"id": f"shopper{n}@example.com"}],
        },
    }
    return observe("events", "event", body, T0 + 10 + visit)


def timed(stage: ProfileStage, observations: list[Observation], chunk: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(observations), chunk):
        stage.apply(observations[start : start + chunk], {"events": start})
    return time.perf_counter() - started


def links(store_url: str | None, shoppers: int, chunk: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="koppla-profiles-") as tmp:
        url = store_url or f"sqlite:///{tmp}/profiles.sqlite"
        store = ProfileStore(url)
        stage = ProfileStage(store, limits=Limits(), policy=PolicyBook(store).default)
        observations = [o for n in range(shoppers) for o in shopper(n)]
        random.Random(7).shuffle(observations)
        new_s = timed(stage, observations, chunk)
        counts = store.counts()
        size = _sqlite_bytes(url)
        rng = random.Random(11)
        again = [returning(rng.randrange(1, shoppers), v) for v in range(len(observations))]
        known = [o for o in again if o is not None]
        known_s = timed(stage, known, chunk)
        store.close()
    return {
        "store": "postgresql" if store_url else "sqlite",
        "observations": len(observations),
        "seconds": new_s,
        "link_updates_per_s": len(observations) / new_s,
        "known": len(known),
        "known_seconds": known_s,
        "known_per_s": len(known) / known_s,
        "profiles": counts["profiles"],
        "identities": counts["identities"],
        "bytes_per_profile": size / counts["profiles"] if size else None,
    }


# --- 3. lookups with many profiles stored -----------------------------------------------------


def bulk(store: ProfileStore, profiles: int, batch: int = 20_000) -> None:
    node = 1
    record_body = {"person": {"name": {"firstName": "F", "lastName": "L"}}}
    for start in range(0, profiles, batch):
        change = Write()
        for n in range(start, min(profiles, start + batch)):
            graph = f"{n:032x}"
            ecid = Identity("ECID", f"{n:038d}")
            email = Identity("Email", f"shopper{n}@example.com")
            customer = Identity("CustomerId", str(n))
            for offset, identity in enumerate((ecid, email, customer)):
                change.members[identity] = Member(identity, node + offset, graph, T0, T0 + 5)
            change.links[(node, node + 1)] = Link(ecid, email, T0, T0)
            change.links[(node + 1, node + 2)] = Link(customer, email, T0 + 1, T0 + 1)
            body = {**record_body, "personalEmail": {"address": email.id}}
            change.fragments[("profiles", customer)] = StoredFragment(
                "profiles", customer, f"rec-{n}", body, T0 + 1
            )
            change.activity[node] = Activity(T0, T0 + 5, 2, None, None)
            for k in range(2):
                change.events.append(
                    StoredEvent(
                        f"ev-{n}-{k}",
                        node,
                        "events",
                        T0 + k,
                        "commerce.productViews",
                        {
                            "eventType": "commerce.productViews",
                            "productListItems": [{"SKU": "MJ01"}],
                        },
                    )
                )
            change.profiles.append(
                ProfileRow(
                    graph,
                    body,
                    [str(ecid), str(email), str(customer)],
                    ["profiles"],
                    T0,
                    T0 + 5,
                    0,
                    0.0,
                    None,
                    T0,
                )
            )
            node += 3
        store.write(change)


def lookups(store: ProfileStore, profiles: int, count: int) -> dict[str, Any]:
    lookup = ProfileLookup(store)
    rng = random.Random(3)
    times: list[float] = []
    missing = 0
    for _ in range(count):
        email = Identity("Email", f"shopper{rng.randrange(profiles)}@example.com")
        began = time.perf_counter()
        found = lookup.profile(email)
        times.append((time.perf_counter() - began) * 1000)
        missing += found is None
    return {
        "lookups": count,
        "missing": missing,
        "p50_ms": pct(times, 0.5),
        "p99_ms": pct(times, 0.99),
        "max_ms": max(times),
    }


def lookup_phase(store_url: str | None, profiles: int, count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="koppla-profiles-") as tmp:
        url = store_url or f"sqlite:///{tmp}/profiles.sqlite"
        store = ProfileStore(url)
        began = time.perf_counter()
        bulk(store, profiles)
        filled = time.perf_counter() - began
        result = lookups(store, profiles, count)
        began = time.perf_counter()
        rows = profiles_table(store).num_rows
        result.update(sql_profiles_s=time.perf_counter() - began, sql_rows=rows)
        began = time.perf_counter()
        rows = identities_table(store).num_rows
        result.update(sql_identities_s=time.perf_counter() - began, sql_identity_rows=rows)
        result.update(
            profiles=store.counts()["profiles"],
            fill_seconds=filled,
            bytes_per_profile=(_sqlite_bytes(url) or 0) / profiles or None,
        )
        store.close()
    return result


def _sqlite_bytes(url: str) -> int | None:
    """The SQLite store's size on disk once its write-ahead log is folded in."""
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["latency", "shop", "links", "lookup"], default=None)
    parser.add_argument("--mariadb", action="store_true", help="shop phase on MariaDB")
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--shoppers", type=int, default=50_000)
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--store-url", default=None)
    args = parser.parse_args()
    info = machine()
    print(f"machine: {info['nproc']} cores, {info['cpu_model']}, Python {info['python']}")
    if args.only in (None, "latency"):
        r = latency(args.probes)
        print(
            f"record posted -> lookup returns it: {r['found']}/{r['probes']} probes, "
            f"p50 {r['p50_s']:.3f} s, p90 {r['p90_s']:.3f} s, max {r['max_s']:.3f} s"
        )
    if args.only in (None, "shop"):
        r = shop_changes(max(5, args.probes // 2), args.mariadb)
        for kind, done in (("edit", "edited"), ("delete", "deleted")):
            values = r[kind]
            print(
                f"customer {done} in the shop ({r['store']}, connector poll 1 s) -> profile "
                f"shows it: n={len(values)} p50 {pct(values, 0.5):.2f} s, "
                f"p90 {pct(values, 0.9):.2f} s, max {max(values):.2f} s"
            )
    if args.only in (None, "links"):
        r = links(args.store_url, args.shoppers, args.chunk)
        size = f"{r['bytes_per_profile']:.0f} B/profile" if r["bytes_per_profile"] else "n/a"
        print(
            f"link updates ({r['store']}): {r['observations']} in {r['seconds']:.2f} s = "
            f"{r['link_updates_per_s']:.0f}/s; {r['profiles']} profiles, "
            f"{r['identities']} identities; store {size} (with 3 timeline events each)"
        )
        print(
            f"link updates of known shoppers ({r['store']}): {r['known']} in "
            f"{r['known_seconds']:.2f} s = {r['known_per_s']:.0f}/s (sign-ins on known devices)"
        )
    if args.only in (None, "lookup"):
        r = lookup_phase(args.store_url, args.profiles, args.lookups)
        size = f"{r['bytes_per_profile']:.0f} B/profile" if r["bytes_per_profile"] else "n/a"
        print(
            f"lookup with {r['profiles']} profiles stored (filled in {r['fill_seconds']:.0f} s): "
            f"{r['lookups']} lookups, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
            f"max {r['max_ms']:.2f} ms, {r['missing']} missing; store {size}"
        )
        print(
            f"SQL tables read from the store: profiles {r['sql_rows']} rows in "
            f"{r['sql_profiles_s']:.2f} s, identities {r['sql_identity_rows']} rows in "
            f"{r['sql_identities_s']:.2f} s"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
