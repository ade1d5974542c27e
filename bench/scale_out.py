"""Scale-out benchmark: Koppla as roles on one machine, on RabbitMQ Streams and PostgreSQL.

It starts `--edges` edge processes, `--workers` pipeline workers and one API process
(`koppla up --role ...`) sharing a fresh PostgreSQL schema, a fresh RabbitMQ virtual host and a
temp home, then drives the same alloy load as `edge_throughput.py` (`loadgen.py`, one load
process per edge, `--conns` connections in total), first single-event requests, then requests of
`--batch` events, each `--seconds` long. For each phase it prints acknowledged events/s and how
long the workers took to store everything acknowledged (polling `count(*)` through the API's
SQL), so stored events/s = acknowledged events / (load + drain). It asserts nothing.

Needs: PostgreSQL (`KOPPLA_TEST_POSTGRES_URL`, default postgresql://postgres@127.0.0.1/postgres),
RabbitMQ with the stream plugin on 127.0.0.1:5552 and `rabbitmqctl` (to make the vhost).

Run:  python bench/scale_out.py [--seconds 15] [--edges 2] [--workers 2] [--conns 64] [--batch 50]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from edge_throughput import Target, run_phase

DATASTREAM = "6d3b1f0e-8c2a-4e7b-9a41-0d2f6a1c5e90"
POSTGRES_URL = os.environ.get(
    "KOPPLA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
).replace("postgresql+psycopg://", "postgresql://")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Roles:
    """The processes of one deployment, each `koppla up --role` in its own process group."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "koppla", "up", *args],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def koppla(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "koppla", *args], env=self.env, capture_output=True, check=True
        )
        return done.stdout.decode()

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def deployment(args: argparse.Namespace) -> Iterator[tuple[Roles, list[int], str, str]]:
    tag = uuid.uuid4().hex[:10]
    vhost, schema = f"koppla-bench-{tag}", f"koppla_bench_{tag}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
    )
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    temp = Path(tempfile.mkdtemp(prefix="koppla-scale-"))
    joiner = "&" if "?" in POSTGRES_URL else "?"
    env = dict(os.environ)
    env.update(
        KOPPLA_HOME=str(temp / "home"),
        KOPPLA_CATALOG_URL=f"{POSTGRES_URL}{joiner}options=-csearch_path%3D{schema}",
        KOPPLA_SPOOL_URL=f"rabbitmq-stream://guest:guest@127.0.0.1:5552/{vhost}",
        KOPPLA_SPOOL_PARTITIONS=str(args.partitions),
        KOPPLA_QUERY_PG_PORT="0",
        KOPPLA_LOG_LEVEL="warning",
    )
    roles = Roles(env, temp)
    try:
        roles.koppla("demo")
        token = roles.koppla("token", "create", "--name", "bench").strip().split()[-1]
        edge_ports = [free_port() for _ in range(args.edges)]
        api_port = free_port()
        for i, port in enumerate(edge_ports):
            roles.start(f"edge{i}", "--role", "edge", "--port", str(port))
        for i in range(args.workers):
            roles.start(f"worker{i}", "--role", "pipeline")
        roles.start("api", "--role", "api", "--port", str(api_port))
        for port in [*edge_ports, api_port]:
            wait_answering(port)
        yield roles, edge_ports, f"http://127.0.0.1:{api_port}", token
    finally:
        roles.stop()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        print(f"(logs in {temp})")


def wait_answering(port: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).status_code < 600:
                return
        time.sleep(0.3)
    raise SystemExit(f"port {port} did not answer")


def stored(api: str, token: str) -> int:
    response = httpx.post(
        f"{api}/api/v1/query",
        json={"sql": "SELECT count(*) FROM demo_events"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    response.raise_for_status()
    return int(response.json()["rows"][0][0])


def phase(
    args: argparse.Namespace, ports: list[int], api: str, token: str, name: str, batch: int
) -> dict[str, Any]:
    """Load every edge at once (one loadgen run per edge, in parallel) and wait for the drain."""
    import threading

    before = stored(api, token)
    results: list[dict[str, Any]] = []
    conns = max(1, args.conns // len(ports))

    def drive(port: int) -> None:
        target = Target("127.0.0.1", port, token, DATASTREAM, None)
        load = argparse.Namespace(
            procs=1, conns=conns, seconds=args.seconds, run_tag=uuid.uuid4().hex[:8], mix="common"
        )
        results.append(run_phase(target, load, name, batch))

    threads = [threading.Thread(target=drive, args=(port,)) for port in ports]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load_s = time.monotonic() - began
    acked = sum(r["total_acked_events"] for r in results)
    measured = sum(r["acked_events_per_s"] for r in results)
    drain_began = time.monotonic()
    count = stored(api, token) - before
    while count < acked and time.monotonic() - drain_began < args.drain_limit:
        time.sleep(0.5)
        count = stored(api, token) - before
    drain_s = time.monotonic() - drain_began
    return {
        "phase": name,
        "batch": batch,
        "acked_events_per_s": round(measured),
        "acked_events": acked,
        "stored_events": count,
        "drain_s": round(drain_s, 1),
        "stored_events_per_s": round(count / (load_s + drain_s)) if count else 0,
        "errors": [r["errors"] for r in results],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--edges", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--conns", type=int, default=64)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--drain-limit", type=float, default=300)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, python "
        f"{platform.python_version()}; {args.edges} edges, {args.workers} workers, "
        f"{args.partitions} partitions, {args.conns} connections, {args.seconds:.0f} s per phase"
    )
    with deployment(args) as (_roles, ports, api, token):
        for name, batch in (("single", 1), ("batched", args.batch)):
            row = phase(args, ports, api, token, name, batch)
            print(
                f"{row['phase']:8} batch={row['batch']:<3} acked {row['acked_events_per_s']:>8,}"
                f" events/s ({row['acked_events']:,} in all); stored {row['stored_events']:,} "
                f"after {row['drain_s']} s of drain -> {row['stored_events_per_s']:,} events/s "
                f"stored; errors {row['errors']}"
            )


if __name__ == "__main__":
    main()
