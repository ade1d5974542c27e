"""Commerce reports benchmark: each report's time over a generated history of N storefront events.

Generates a shop history (`koppla.platform.query.commerce_sample.write_history`: about 1.7
storefront events per shopper and day) into one Delta table in a temp directory, as the demo
datastream lands storefront and back-office events in one dataset, then runs every commerce
report `--runs` times through a `QueryEngine` limited to `--threads` threads and prints the
median and best time of each, with the generation and write times. Asserts nothing.

Run:  python bench/commerce_reports.py [--shoppers 200000] [--days 30] [--threads 2] [--runs 5]
      (200,000 shoppers over 30 days is about 10 million storefront events)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from koppla.platform.query import commerce
from koppla.platform.query.commerce_sample import write_history
from koppla.platform.query.engine import QueryEngine

TABLE = "demo_events"


def main() -> None:
    """Generate, write, then time each report."""
    args = _arguments()
    with tempfile.TemporaryDirectory(prefix="koppla-commerce-bench-") as temp:
        path = str(Path(temp) / TABLE)
        started = time.perf_counter()
        expected = write_history(path, path, args.shoppers, args.days, seed=1)
        written = time.perf_counter() - started
        print(
            f"history: {expected.events:,} storefront + {expected.orders_events:,} back-office "
            f"events, generated and written in {written:.1f} s"
        )
        tables = commerce.CommerceTables(TABLE, TABLE)
        params = {"until": expected.end.isoformat(), "days": str(args.days)}
        with QueryEngine(
            lambda: {TABLE: path},
            threads=args.threads,
            memory_limit=args.memory,
            timeout_s=300,
            data_roots=[Path(temp)],  # read natively, as `koppla up` reads `<home>/datasets`
        ) as engine:
            for report in commerce.REPORTS:
                names = {p.name for p in report.parameters}
                sql = report.sql(tables, {k: v for k, v in params.items() if k in names})
                times = []
                for _run in range(args.runs):
                    result = engine.run(sql, max_rows=100)
                    times.append(result.elapsed_ms)
                print(
                    f"{report.name:18} median {statistics.median(times):8.1f} ms   "
                    f"best {min(times):8.1f} ms   rows {len(result.rows)}"
                )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory", default="2GB", help="the engine's memory limit")
    parser.add_argument("--runs", type=int, default=5)
    return parser.parse_args()


if __name__ == "__main__":
    main()
