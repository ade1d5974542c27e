"""History sync benchmark: years of orders from MariaDB into datasets, through the queue.

What it measures, on one generated shop (Koppla's subset of the Magento tables in a throwaway
MariaDB database `koppla_bench_<random>`, `--orders` orders over `--years` years, spread over two
websites that go to two datasets):

(a) the history sync (`koppla connector history:sync`), once with the embedded queue and once
    with RabbitMQ: seconds from the request to every batch processed on the platform, orders/s
    overall and per consumer process, events/s, rows checked with SQL (count and distinct `_id`),
    and the history ledger's bytes per order;
(b) for comparison, the existing path on the same data: the live connector's initial sync
    (read, snapshot, events into the outbox, streamed to the platform) until every event is
    queryable, and the connector state's bytes per order.

It starts its own `koppla up --demo --no-demo-shop` (temp home, free port) and stops it at the
end. It prints its figures and asserts nothing.

Run:  python bench/history.py [--orders 100000] [--years 5] [--workers 2] [--skip-live]
      KOPPLA_TEST_MARIADB_URL=mysql+pymysql://root@127.0.0.1:3306/test (default)
      KOPPLA_TEST_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/ (default)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from connector_latency import MARIADB_URL, Platform, mariadb_database
from koppla.connector.demo_store import create_demo_schema
from koppla.connector.history.processes import spawn_workers, stop_workers
from koppla.connector.history.sync import HistorySync, ledger_path, open_history_queue
from koppla.connector.history_demo import add_website, generate_history
from koppla.connector.runner import Connector
from koppla.connector.settings import ConnectorSettings, load_settings
from koppla.connector.source import connect
from koppla.core import clock

RABBITMQ_URL = os.environ.get("KOPPLA_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
ORG = "KOPPLADEMO00000000000000@AdobeOrg"
DATASTREAM = "6d3b1f0e-8c2a-4e7b-9a41-0d2f6a1c5e90"


def create_dataset(platform: Platform, name: str) -> str:
    response = platform.http.post("/api/v1/datasets", json={"name": name})
    response.raise_for_status()
    return str(response.json()["id"])


def count(platform: Platform, dataset: str) -> tuple[int, int]:
    response = platform.http.post(
        "/api/v1/query", json={"sql": f"SELECT count(*), count(DISTINCT _id) FROM {dataset}"}
    )
    if response.status_code != 200:
        return 0, 0
    row = response.json()["rows"][0]
    return int(row[0]), int(row[1])


def settings_for(
    home: Path,
    dsn: str,
    platform: Platform,
    datasets: tuple[str, str],
    queue_url: str,
    **extra: object,
) -> ConnectorSettings:
    site = {"org_id": ORG, "datastream_id": DATASTREAM, "environment_id": "bench"}
    return load_settings(
        home,
        token=platform.token,
        source_dsn=dsn,
        platform_url=platform.url,
        queue_url=queue_url,
        queue_name=f"koppla-bench-{secrets.token_hex(4)}",
        websites=[
            {**site, "website_code": "base", "dataset_id": datasets[0]},
            {**site, "website_code": "eu", "dataset_id": datasets[1]},
        ],
        **extra,
    )


def run_history(settings: ConnectorSettings, years: float, workers: int) -> tuple[float, dict]:
    today = clock.now().date()
    start = today - timedelta(days=int(years * 365) - 1)
    sync = HistorySync(settings)
    began = time.monotonic()
    request = sync.start(start, today)
    processes = spawn_workers(settings, workers)

    async def produce() -> None:
        queue = await open_history_queue(settings)
        try:
            await sync.produce(request, queue)
        finally:
            await queue.close()

    try:
        asyncio.run(produce())
        while True:
            current = sync.progress(request.id)
            if current.request.status in ("done", "failed"):
                break
            time.sleep(0.25)
        took = time.monotonic() - began
    finally:
        stop_workers(processes)
        sync.close()
    return took, current.as_json()


def run_live(settings: ConnectorSettings, platform: Platform, datasets: tuple[str, str]) -> float:
    """The existing path: initial sync into the outbox, delivery, until every event is stored."""
    connector = Connector(settings)
    began = time.monotonic()
    try:
        connector.reindex()
        while connector.state.backlog().pending:
            connector.sender.drain()
        names = list(datasets)
        expected = connector.state.backlog().sent
        while sum(count(platform, n)[0] for n in names) < expected:
            time.sleep(0.25)
    finally:
        connector.close()
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--years", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--backends", default="embedded,rabbitmq")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; MariaDB {MARIADB_URL.split('@')[-1]}")
    with (
        tempfile.TemporaryDirectory(prefix="koppla-history-bench-") as tmp,
        mariadb_database() as url,
    ):
        if url is None:
            return
        root = Path(tmp)
        engine = connect(url)
        create_demo_schema(engine)
        eu = add_website(engine, "eu")
        began = time.monotonic()
        generate_history(
            engine, args.orders, years=args.years, store_ids=(1, eu), seed=1, chunk=5000
        )
        engine.dispose()
        took = time.monotonic() - began
        print(f"generated {args.orders:,} orders over {args.years:g} years in {took:.0f} s")
        platform = Platform(root / "platform")
        try:
            for n, backend in enumerate(args.backends.split(",")):
                queue_url = RABBITMQ_URL if backend == "rabbitmq" else ""
                names = (f"hist_base_{n}", f"hist_eu_{n}")
                ids = (create_dataset(platform, names[0]), create_dataset(platform, names[1]))
                settings = settings_for(root / f"c{n}", url, platform, ids, queue_url)
                took, shown = run_history(settings, args.years, args.workers)
                orders = shown["orders"]
                stored = [count(platform, name) for name in names]
                ledger = ledger_path(settings)
                size = sum(p.stat().st_size for p in ledger.parent.glob("history.sqlite*"))
                done, rate = orders["done"], orders["done"] / took
                batches = shown["batches"]
                print(
                    f"(a) history sync, {backend} queue, {args.workers} consumers: {done:,} orders "
                    f"({orders['failed']} failed), {shown['events']:,} events in {took:.1f} s = "
                    f"{rate:,.0f} orders/s ({rate / args.workers:,.0f} per consumer), "
                    f"{shown['events'] / took:,.0f} events/s; batches {batches['succeeded']}/"
                    f"{batches['created']} succeeded; stored rows/distinct ids {stored}; ledger "
                    f"{size / max(1, orders['found']):.1f} bytes/order"
                )
            if not args.skip_live:
                names = ("live_base", "live_eu")
                ids = (create_dataset(platform, names[0]), create_dataset(platform, names[1]))
                settings = settings_for(root / "live", url, platform, ids, "")
                took = run_live(settings, platform, names)
                state = settings.state_path
                size = sum(p.stat().st_size for p in state.parent.glob("state.sqlite*"))
                stored = [count(platform, name) for name in names]
                print(
                    f"(b) existing path (initial sync + streaming): {args.orders:,} orders in "
                    f"{took:.1f} s = {args.orders / took:,.0f} orders/s; stored rows/distinct ids "
                    f"{stored}; connector state {size / args.orders:.1f} bytes/order"
                )
        finally:
            platform.stop()


if __name__ == "__main__":
    main()
