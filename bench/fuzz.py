"""Fuzzing, longer than CI runs it: the OpenAPI contract and hostile edge bodies.

Starts `koppla up --demo --no-demo-shop` (temp home, free port) unless `--url`/`--token` name a
running Koppla, then runs the two fuzzers of `tests/web/test_fuzz.py`:

- schemathesis against `/openapi.json` with a token, every phase and check, `--examples` per
  operation, repeated until `--seconds` pass;
- hostile bodies POSTed to `/ee/v1/interact` (`--examples` at a time, until `--seconds` pass).

Prints the requests tried per target, the 5xx count and the contract failures, then whether the
server still runs and a valid event sent afterwards lands. Prints figures only; asserts nothing.
Run: `python bench/fuzz.py --seconds 30`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.server import Koppla, free_port
from tests.web.fuzzing import (
    FuzzReport,
    a_valid_event_lands,
    alloy_sample,
    contract_fuzz,
    edge_fuzz,
)

DATASTREAM = "6d3b1f0e-8c2a-4e7b-9a41-0d2f6a1c5e90"


@contextmanager
def target(args: argparse.Namespace) -> Iterator[tuple[str, str, Koppla | None]]:
    """(url, token, server) of the Koppla under test; starts one unless `--url` is given."""
    if args.url:
        yield args.url.rstrip("/"), args.token, None
        return
    with tempfile.TemporaryDirectory(prefix="koppla-fuzz-") as home:
        server = Koppla(Path(home) / "home", free_port())
        server.start()
        try:
            yield server.url, server.token(), server
        finally:
            server.stop()


def print_reports(title: str, reports: list[FuzzReport], seconds: float) -> None:
    """Requests tried per target, 5xx and contract failures."""
    print(f"\n== {title} ({seconds:.0f} s)")
    for report in reports:
        print(f"  {report.line()}")
        for failure in report.failures[:3]:
            print("      " + failure.replace("\n", "\n      ")[:600])
    tried = sum(r.requests for r in reports)
    errors = sum(r.server_errors for r in reports)
    failures = sum(len(r.failures) for r in reports)
    print(f"  total: {tried} requests tried, 5xx = {errors}, contract failures = {failures}")


def main(argv: list[str] | None = None) -> None:
    """Run both fuzzers and print what they found."""
    args = parse_args(argv)
    with target(args) as (url, token, server):
        started = time.monotonic()
        reports = contract_fuzz(
            url, token, args.datastream, examples=args.examples, seconds=args.seconds
        )
        print_reports("schemathesis against /openapi.json", reports, time.monotonic() - started)

        started = time.monotonic()
        hostile = edge_fuzz(
            url,
            args.datastream,
            alloy_sample(),
            examples=args.examples,
            seconds=args.seconds,
            on_server_error=lambda body, status: print(f"  {status} for {body[:120]!r}"),
        )
        print_reports("hostile bodies to the edge", [hostile], time.monotonic() - started)

        print("\n== afterwards")
        alive = server is None or (server.proc is not None and server.proc.poll() is None)
        health = httpx.get(f"{url}/api/v1/health", timeout=10).status_code
        print(f"  server process running: {alive}; GET /api/v1/health: {health}")
        lands = a_valid_event_lands(url, token, args.datastream, alloy_sample())
        print(f"  a valid event sent afterwards is queryable: {lands}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="Target a running Koppla (http://127.0.0.1:PORT).")
    parser.add_argument("--token", help="API token for --url.")
    parser.add_argument("--datastream", default=DATASTREAM, help="configId of a datastream.")
    parser.add_argument("--examples", type=int, default=50, help="Examples per operation/round.")
    parser.add_argument("--seconds", type=float, default=30.0, help="Seconds per fuzzer.")
    args = parser.parse_args(argv)
    if args.url and not args.token:
        parser.error("--url needs --token")
    return args


if __name__ == "__main__":
    main()
