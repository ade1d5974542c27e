"""Connector benchmark: shop change → queryable back-office event, and full-reindex throughput.

What it measures:

(a) Latency: seconds from a business action committed in the shop database (place, invoice,
    ship, cancel, written the way Magento does) to its back-office event being queryable on the
    platform (`SELECT ... FROM demo_events` through the query API, polled every 20 ms), with the
    connector loop running at its default settings (triggers, `poll_interval_s` = 1 s). p50/p90/
    max over `--changes` changes, on the SQLite demo store and on MariaDB (Koppla's own subset of
    the Magento tables in a throwaway database `koppla_bench_<random>`).
(b) Throughput: orders per second through a full reindex (`index:reindex
    sales_order_data_exporter_v2`: read, snapshot, hash, derive events, commit to the outbox) of
    `--orders` generated orders on the SQLite demo store, and on MariaDB with `--mariadb-reindex`;
    and the connector's state file (with the undelivered outbox) per order.
(c) Initial sync end to end (`--e2e-orders N`): N orders of two websites, interleaved, each
    website with its own datastream and dataset, on MariaDB (SQLite when MariaDB is missing):
    seconds from the connector's first step to every event queryable, the HTTP requests the
    delivery took, and the state file per order once everything is delivered.

It starts its own `koppla up --demo` (temp home, free port) and stops it at the end. It prints
its figures and asserts nothing.

Run:  python bench/connector_latency.py [--changes 20] [--orders 100000] [--mariadb-reindex]
                                        [--skip-latency] [--e2e-orders 20000]
      KOPPLA_TEST_MARIADB_URL=mysql+pymysql://root@127.0.0.1:3306/test (default)
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from koppla.connector import schema
from koppla.connector.changelog import install_triggers, uninstall_triggers
from koppla.connector.demo import demo_settings
from koppla.connector.demo_store import (
    LIFECYCLES,
    DemoShop,
    Ids,
    create_demo_schema,
    live,
    new_order,
)
from koppla.connector.history_demo import add_website
from koppla.connector.runner import Connector, run_connector
from koppla.connector.settings import ConnectorSettings
from koppla.connector.source import connect

DEMO_ORG = "KOPPLADEMO00000000000000@AdobeOrg"
MARIADB_URL = os.environ.get("KOPPLA_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Platform:
    def __init__(self, home: Path) -> None:
        self.home, self.port = home, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = (home.parent / "koppla.log").open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "koppla",
                "up",
                "--demo",
                "--no-demo-shop",
                "--home",
                str(home),
                "--port",
                str(self.port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        out = subprocess.run(
            [sys.executable, "-m", "koppla", "token", "create", "--home", str(home)],
            check=True,
            capture_output=True,
        )
        self.token = out.stdout.decode().strip()
        self.http = httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {self.token}"}, timeout=30
        )
        self.dataset_id = str(self.http.get("/api/v1/datasets/demo_events").json()["id"])

    def count(self, where: str) -> int:
        return self.count_in("demo_events", where)

    def count_in(self, dataset: str, where: str = "true") -> int:
        response = self.http.post(
            "/api/v1/query", json={"sql": f"SELECT count(*) FROM {dataset} WHERE {where}"}
        )
        if response.status_code != 200:
            return 0
        return int(response.json()["rows"][0][0])

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


@contextmanager
def mariadb_database() -> Iterator[str | None]:
    admin = create_engine(MARIADB_URL)
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as error:
        print(f"MariaDB unavailable ({type(error).__name__}); skipping its figures")
        yield None
        return
    name = f"koppla_bench_{secrets.token_hex(4)}"
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}`"))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def prepare_shop(dsn: str) -> None:
    engine = connect(dsn)
    create_demo_schema(engine)
    install_triggers(engine)
    engine.dispose()


def purchase_id(shop: DemoShop, order: int) -> str:
    with shop.engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT increment_id FROM sales_order WHERE entity_id = :id"), {"id": order}
            ).scalar_one()
        )


def measure_latency(platform: Platform, settings: ConnectorSettings, changes: int) -> list[float]:
    stop = threading.Event()
    thread = threading.Thread(target=run_connector, args=(settings.home, stop, settings))
    thread.start()
    engine = connect(settings.dsn)
    shop = DemoShop(engine, seed=42)
    latencies: list[float] = []
    rng = random.Random(1)
    try:
        time.sleep(2.0)  # let the initial sync settle
        order = 0
        plan = ["place", "invoice", "ship", "place", "cancel"]
        for n in range(changes):
            action = plan[n % len(plan)]
            time.sleep(rng.uniform(0, settings.poll_interval_s))  # not in step with the loop
            began = time.monotonic()
            if action == "place":
                order = shop.place()
                event = "commerce.backofficeOrderPlaced"
            else:
                shop.act(order, action)
                event = {
                    "invoice": "commerce.backofficeOrderInvoiced",
                    "ship": "commerce.backofficeOrderItemsShipped",
                    "cancel": "commerce.backofficeOrderCancelled",
                }[action]
            where = (
                f"eventType = '{event}' AND "
                f"commerce.order.purchaseID = '{purchase_id(shop, order)}' AND "
                f"commerce.commerceScope.environmentID = '{settings.websites[0].environment_id}'"
            )
            while platform.count(where) < 1:
                if time.monotonic() - began > 60:
                    raise RuntimeError(f"{action} of order {order} not queryable after 60 s")
                time.sleep(0.02)
            latencies.append(time.monotonic() - began)
    finally:
        stop.set()
        thread.join(timeout=30)
        engine.dispose()
    return latencies


def measure_reindex(settings: ConnectorSettings, orders: int) -> tuple[float, float, int]:
    engine = connect(settings.dsn)
    began = time.monotonic()
    DemoShop(engine, seed=7).generate(orders, chunk=5000)
    generated = time.monotonic() - began
    engine.dispose()
    connector = Connector(settings)
    try:
        began = time.monotonic()
        report = connector.reindex()
        took = time.monotonic() - began
    finally:
        connector.close()
    size = state_bytes(settings)
    print(f"    state after the reindex: {size / 1e6:.1f} MB = {size / orders:,.0f} bytes/order")
    return generated, took, report.events


def state_bytes(settings: ConnectorSettings) -> int:
    """The connector's state file with its write-ahead log."""
    return sum(p.stat().st_size for p in settings.state_path.parent.glob("state.sqlite*"))


def generate_interleaved(dsn: str, orders: int, store_ids: tuple[int, ...]) -> None:
    """`orders` orders in every state, placed in turn in each of `store_ids`."""
    rng = random.Random(11)
    engine = connect(dsn)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    DemoShop(engine, seed=11).generate_customers(now)
    done = 0
    while done < orders:
        count = min(5000, orders - done)
        with engine.begin() as conn:
            ids = Ids.from_db(conn)
            rows: dict[str, list[dict[str, object]]] = {}
            for n in range(count):
                when = now - timedelta(days=90) + timedelta(seconds=rng.randrange(80 * 86400))
                draft = new_order(rng, ids, when, store_ids[(done + n) % len(store_ids)])
                live(draft, ids, when, rng, rng.choice(LIFECYCLES))
                for name, new in draft.new.items():
                    rows.setdefault(name, []).extend(new)
            for table in schema.metadata.sorted_tables:
                if rows.get(table.name):
                    conn.execute(table.insert(), rows[table.name])
        done += count
    engine.dispose()


def measure_end_to_end(platform: Platform, root: Path, dsn: str, orders: int) -> None:
    """(c): two websites, their own datastreams and datasets; first step → all queryable."""
    prepare_shop(dsn)
    engine = connect(dsn)
    store = add_website(engine, "second")
    engine.dispose()
    generate_interleaved(dsn, orders, (1, store))
    second = platform.http.post(
        "/api/v1/datasets", json={"name": "second_events", "description": "bench"}
    ).json()["id"]
    stream = platform.http.post(
        "/api/v1/datastreams",
        json={"orgId": DEMO_ORG, "eventDataset": second, "name": "second website"},
    ).json()["id"]
    base = settings_for(root, dsn, platform)
    site = base.websites[0]
    settings = base.model_copy(
        update={
            "websites": [
                site,
                site.model_copy(
                    update={"website_code": "second", "datastream_id": stream, "dataset_id": second}
                ),
            ]
        }
    )
    requests = [0]

    def count(_request: httpx.Request) -> None:
        requests[0] += 1

    client = httpx.Client(timeout=httpx.Timeout(60.0), event_hooks={"request": [count]})
    connector = Connector(settings, client)
    try:
        began = time.monotonic()
        queued = connector.step().sync.events
        while connector.state.backlog().pending:
            connector.sender.backoff.not_before = 0.0
            connector.step()
        sent = time.monotonic() - began
        while (landed := platform.count("true") + platform.count_in("second_events")) < queued:
            if time.monotonic() - began > 1800:
                raise RuntimeError(f"only {landed} of {queued} events queryable after 30 min")
            time.sleep(0.2)
        took = time.monotonic() - began
    finally:
        connector.close()
    size = state_bytes(settings)
    print(
        f"(c) initial sync end to end, {orders} orders of 2 interleaved websites: {queued} events "
        f"delivered in {sent:.1f} s in {requests[0]} requests ({queued / max(requests[0], 1):.0f} "
        f"per request); all queryable after {took:.1f} s = {orders / took:,.0f} orders/s; state "
        f"after delivery {size / 1e6:.1f} MB = {size / orders:,.0f} bytes/order"
    )


def describe(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[max(0, round(0.9 * len(ordered)) - 1)]
    return (
        f"{name}: n={len(values)} p50={statistics.median(ordered):.2f} s "
        f"p90={p90:.2f} s max={ordered[-1]:.2f} s"
    )


def settings_for(home: Path, dsn: str, platform: Platform) -> ConnectorSettings:
    return demo_settings(
        home,
        environment_id=home.name,
        platform_url=platform.url,
        token=platform.token,
        dataset_id=platform.dataset_id,
        source_dsn=dsn,
    )


def timed(label: str, action: Callable[[], tuple[float, float, int]], orders: int) -> None:
    generated, took, events = action()
    print(
        f"{label}: generated {orders} orders in {generated:.1f} s; reindexed in {took:.1f} s "
        f"= {orders / took:,.0f} orders/s ({events} events queued)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--mariadb-reindex", action="store_true")
    parser.add_argument("--skip-latency", action="store_true", help="skip (a)")
    parser.add_argument("--skip-reindex", action="store_true", help="skip (b)")
    parser.add_argument("--e2e-orders", type=int, default=0, help="run (c) with N orders")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(
        prefix="koppla-connector-bench-", ignore_cleanup_errors=True
    ) as tmp:
        root = Path(tmp)
        platform = Platform(root / "platform")
        try:
            if args.e2e_orders:
                with mariadb_database() as url:
                    dsn = url or f"sqlite:///{root / 'e2e-shop.sqlite'}"
                    measure_end_to_end(platform, root / "c5", dsn, args.e2e_orders)
            run(args, root, platform)
        finally:
            platform.stop()


def run(args: argparse.Namespace, root: Path, platform: Platform) -> None:
    """(a) and (b), as asked."""
    if not args.skip_latency:
        latency(args, root, platform)
    if args.skip_reindex:
        return
    if args.mariadb_reindex:
        with mariadb_database() as url:
            if url is not None:
                prepare_shop(url)
                engine = connect(url)
                uninstall_triggers(engine)  # bulk generation need not fill a changelog
                engine.dispose()
                timed(
                    "(b) MariaDB full reindex",
                    lambda: measure_reindex(settings_for(root / "c4", url, platform), args.orders),
                    args.orders,
                )
    big = f"sqlite:///{root / 'reindex-shop.sqlite'}"
    engine = connect(big)
    schema.metadata.create_all(engine)
    create_demo_schema(engine)
    engine.dispose()
    timed(
        "(b) SQLite demo store full reindex",
        lambda: measure_reindex(settings_for(root / "c3", big, platform), args.orders),
        args.orders,
    )


def latency(args: argparse.Namespace, root: Path, platform: Platform) -> None:
    """(a) on SQLite, then on MariaDB if it is there."""
    print(f"(a) change -> queryable event, {args.changes} changes, default poll 1 s")
    sqlite_dsn = f"sqlite:///{root / 'latency-shop.sqlite'}"
    prepare_shop(sqlite_dsn)
    lat = measure_latency(platform, settings_for(root / "c1", sqlite_dsn, platform), args.changes)
    print("    " + describe("SQLite demo store", lat))
    with mariadb_database() as url:
        if url is not None:
            prepare_shop(url)
            lat = measure_latency(platform, settings_for(root / "c2", url, platform), args.changes)
            print("    " + describe("MariaDB", lat))


if __name__ == "__main__":
    main()
