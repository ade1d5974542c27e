"""Query Service benchmark: SQL over 10 million generated storefront events, and psql streaming.

What it measures, on a shop history generated into the demo dataset of a temporary home
(`koppla.platform.query.commerce_sample.write_history`: about 1.7 storefront events per shopper
and day, plus the back-office events, written in 64k-row groups as Koppla's compaction writes):

(a) through the query engine `koppla up` runs (`build_services`, `query_threads` threads, the
    datasets read by DuckDB's Parquet reader): the funnel over the whole history and the
    abandoned-cart report (its default: the last 24 hours), the seed
    query `SELECT * ... ORDER BY timestamp DESC LIMIT 100`, and a one-day time-range count:
    median and best of `--runs` runs each;
(b) rows per second streamed to the real `psql` over the PostgreSQL wire protocol (TLS) for a
    large result (`--stream-rows` rows of three columns), the output discarded.

It prints its figures and asserts nothing.

Run:  python bench/query.py [--shoppers 200000] [--days 30] [--runs 5] [--stream-rows 5000000]
      (200,000 shoppers over 30 days is about 10 million storefront events)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.demo import ensure_demo
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.tables import provision
from koppla.platform.query import commerce
from koppla.platform.query.commerce_sample import write_history
from koppla.platform.query.pgwire.server import PgServer
from koppla.platform.query.pgwire.tls import certificate_files, server_context
from koppla.web.services import Services, build_services
from koppla.xdm.registry import builtin_registry

TABLE = "demo_events"


def main() -> None:
    """Generate, then time the queries and the stream."""
    args = _arguments()
    with tempfile.TemporaryDirectory(prefix="koppla-query-bench-") as temp:
        home = Path(temp) / "home"
        settings = Settings.load(home=home, query_threads=args.threads, query_timeout_s=300)
        path = _demo_dataset(settings)
        started = time.perf_counter()
        expected = write_history(path, path, args.shoppers, args.days, seed=1)
        print(
            f"history: {expected.events:,} storefront + {expected.orders_events:,} back-office "
            f"events, generated and written in {time.perf_counter() - started:.1f} s"
        )
        services = build_services(settings)
        try:
            _queries(services, args.runs, expected.end, args.days)
            _stream(services, settings, args.stream_rows)
        finally:
            services.close()


def _demo_dataset(settings: Settings) -> str:
    settings.home.mkdir(parents=True)
    layout = Layout(settings.home)
    catalog = Catalog(layout.catalog)
    try:
        dataset = catalog.dataset(ensure_demo(catalog).event_dataset_id)
        provision(layout, builtin_registry(), dataset)
        return str(layout.dataset(dataset.id))
    finally:
        catalog.close()


def _queries(services: Services, runs: int, end: datetime, days: int) -> None:
    tables = commerce.CommerceTables(TABLE, TABLE)
    until = {"until": end.isoformat()}
    day = end.date()
    sqls = {
        f"funnel ({days} days)": commerce.report("funnel").sql(tables, {**until, "days": days}),
        "abandoned_carts": commerce.report("abandoned_carts").sql(tables, until),
        "newest 100 (seed query)": f"SELECT * FROM {TABLE} ORDER BY timestamp DESC LIMIT 100",
        "one-day count": (
            f"SELECT count(*) FROM {TABLE} WHERE timestamp >= TIMESTAMPTZ '{day}' - INTERVAL 1 "
            f"DAY AND timestamp < TIMESTAMPTZ '{day}'"
        ),
    }
    for name, sql in sqls.items():
        times = []
        for _run in range(runs):
            began = time.perf_counter()
            result = services.query.run(sql, max_rows=100)
            times.append((time.perf_counter() - began) * 1000)
        print(
            f"{name:26} median {statistics.median(times):8.1f} ms   best {min(times):8.1f} ms"
            f"   rows {len(result.rows)}"
        )


def _stream(services: Services, settings: Settings, rows: int) -> None:
    org = services.catalog.dataset(TABLE).org_id
    token = services.catalog.add_token("bench", org_id=org, expires_s=3600)
    cert, key = certificate_files(settings.home, None, None)
    server = PgServer(services.query, services.catalog, port=0, tls=server_context(cert, key))
    loop = asyncio.new_event_loop()
    port = loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        sql = f"SELECT _id, eventType, timestamp FROM {TABLE} LIMIT {rows}"
        dsn = f"host=127.0.0.1 port={port} dbname=prod:all user={org} sslmode=require"
        env = {**os.environ, "PGPASSWORD": token}
        command = ["psql", dsn, "-X", "-A", "-t", "-q", "-o", "/dev/null", "-c", sql]
        began = time.perf_counter()
        subprocess.run(command, env=env, check=True, timeout=1800)
        seconds = time.perf_counter() - began
        print(
            f"psql stream: {rows:,} rows (3 columns) in {seconds:.1f} s = "
            f"{rows / seconds:,.0f} rows/s"
        )
    finally:
        _stop(loop, server.close, thread)


def _stop(
    loop: asyncio.AbstractEventLoop,
    close: Callable[[], Coroutine[Any, Any, None]],
    thread: threading.Thread,
) -> None:
    asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shoppers", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stream-rows", type=int, default=5_000_000)
    return parser.parse_args()


if __name__ == "__main__":
    main()
