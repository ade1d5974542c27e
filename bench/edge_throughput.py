"""Edge throughput benchmark: how fast Koppla acknowledges alloy requests, and how soon they query.

What it measures, against a Koppla on 127.0.0.1:

1. Throughput of `POST /ee/v1/interact` with realistic alloy bodies (page views, product views,
   add-to-cart, checkouts, purchases), driven from `--procs` load-generator processes holding
   `--conns` keep-alive connections in total (raw asyncio HTTP/1.1, see `loadgen.py`). Two
   phases, each `--seconds` long after a 2 s warm-up: single-event requests, then requests of
   `--batch` events. For each: requests/s, acknowledged events/s (200s only), errors by status,
   p50/p90/p99/max latency of acknowledged requests.
2. Backlog drain: how long after the load ends until `SELECT count(*) FROM demo_events` holds
   every acknowledged event (gives up after 120 s).
3. Ack -> queryable latency: `--probes` single events sent one at a time to an idle server, each
   polled through the query API every 20 ms until it is visible.

By default it starts its own `koppla up --demo` (temp home, free port) and stops it at the end;
`--url` and `--token` target a running Koppla instead. It prints a plain-text report and writes
it as JSON to `bench/results/edge_throughput-<UTC timestamp>.json`. It asserts nothing.

Run:  python bench/edge_throughput.py [--seconds 10] [--procs 1] [--conns 16] [--batch 10]
      KOPPLA_SPOOL_FSYNC=false python bench/edge_throughput.py   # server inherits the variable
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import queue
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from loadgen import LoadSpec, WorkerResult, request_body, worker_main, xdm_event

DEMO_DATASTREAM = "6d3b1f0e-8c2a-4e7b-9a41-0d2f6a1c5e90"
DATASET = "demo_events"
WARMUP_S = 2.0
START_DELAY_S = 1.0
STARTUP_TIMEOUT_S = 60.0
BACKLOG_TIMEOUT_S = 120.0
PROBE_TIMEOUT_S = 30.0
POLL_S = 0.02
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Target:
    """The Koppla under test."""

    host: str
    port: int
    token: str
    datastream: str
    pid: int | None  # the server's pid when this script started it

    @property
    def base_url(self) -> str:
        """`http://host:port`."""
        return f"http://{self.host}:{self.port}"


# --- the server -------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(base_url: str, server: subprocess.Popen[bytes] | None) -> None:
    """Poll `/api/v1/health` until it answers 200 (bounded by `STARTUP_TIMEOUT_S`)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise RuntimeError(f"koppla exited with {server.returncode} during start-up")
        try:
            if httpx.get(f"{base_url}/api/v1/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"koppla did not become healthy within {STARTUP_TIMEOUT_S:.0f} s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then after 20 s SIGKILL to the server's own process group (its pipeline too)."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


@contextmanager
def own_server() -> Iterator[Target]:
    """Start `koppla up --demo` in a temp home on a free port; stop it on exit."""
    with tempfile.TemporaryDirectory(prefix="koppla-bench-", ignore_cleanup_errors=True) as home:
        port = free_port()
        log = Path(home) / "server.log"
        command = [
            sys.executable,
            "-m",
            "koppla",
            "up",
            "--demo",
            "--no-demo-shop",
            "--home",
            home,
            "--port",
            str(port),
        ]
        with log.open("wb") as out:
            server = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_healthy(f"http://127.0.0.1:{port}", server)
            token = (
                subprocess.run(
                    [sys.executable, "-m", "koppla", "token", "create", "--home", home],
                    check=True,
                    capture_output=True,
                    timeout=60,
                )
                .stdout.decode()
                .strip()
            )
            yield Target("127.0.0.1", port, token, DEMO_DATASTREAM, server.pid)
        except BaseException:
            sys.stderr.write(log.read_text(errors="replace")[-4000:])
            raise
        finally:
            stop_server(server)


def given_server(url: str, token: str, datastream: str) -> Target:
    """A Koppla someone else runs (only 127.0.0.1 is allowed)."""
    parsed = httpx.URL(url)
    if parsed.host not in ("127.0.0.1", "localhost"):
        raise SystemExit("--url must point at 127.0.0.1")
    target = Target("127.0.0.1", parsed.port or 80, token, datastream, None)
    wait_healthy(target.base_url, None)
    return target


# --- load phases ------------------------------------------------------------------------------


def run_phase(target: Target, args: argparse.Namespace, phase: str, batch: int) -> dict[str, Any]:
    """Run one load phase across `--procs` processes and summarise it."""
    context = multiprocessing.get_context("spawn")
    results: Any = context.Queue()
    start_at = time.time() + START_DELAY_S + 0.5 * args.procs
    per_proc = split(args.conns, args.procs)
    workers = []
    for index, conns in enumerate(per_proc):
        spec = LoadSpec(
            target.host,
            target.port,
            target.datastream,
            phase,
            batch,
            conns,
            index,
            args.run_tag,
            start_at,
            WARMUP_S,
            args.seconds,
            args.mix == "all",
        )
        process = context.Process(target=worker_main, args=(spec, results), daemon=True)
        process.start()
        workers.append(process)
    collected = collect(results, len(workers), start_at + WARMUP_S + args.seconds + 60)
    for process in workers:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
    return summarise(phase, batch, args.seconds, collected, len(workers))


def split(total: int, parts: int) -> list[int]:
    """`total` connections spread over `parts` processes as evenly as possible."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def collect(results: Any, expected: int, deadline: float) -> list[WorkerResult]:
    """The workers' results, waiting at most until the wall-clock `deadline`."""
    collected: list[WorkerResult] = []
    while len(collected) < expected and time.time() < deadline:
        try:
            collected.append(results.get(timeout=max(0.1, deadline - time.time())))
        except queue.Empty:
            break
    return collected


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


def summarise(
    phase: str, batch: int, seconds: float, collected: list[WorkerResult], workers: int
) -> dict[str, Any]:
    """One phase's figures from the workers' results."""
    latencies = sorted(x for r in collected for x in r.latencies_ms)
    errors: dict[str, int] = {}
    for result in collected:
        for key, count in result.errors.items():
            errors[key] = errors.get(key, 0) + count
    requests = sum(r.measured_requests for r in collected)
    acked_events = sum(r.measured_acked_events for r in collected)
    return {
        "phase": phase,
        "events_per_request": batch,
        "seconds": seconds,
        "workers_reporting": f"{len(collected)}/{workers}",
        "requests": requests,
        "requests_per_s": requests / seconds,
        "acked_events_per_s": acked_events / seconds,
        "errors": errors,
        "latency_ms": {
            name: percentile(latencies, q)
            for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
        },
        "total_acked_events": sum(r.total_acked_events for r in collected),
    }


# --- the query side ---------------------------------------------------------------------------


def count(client: httpx.Client, where: str = "") -> int | None:
    """`count(*)` of the dataset (with an optional WHERE), or None if the query failed."""
    response = client.post("/api/v1/query", json={"sql": f"SELECT count(*) FROM {DATASET}{where}"})
    if response.status_code != 200:
        return None
    return int(orjson.loads(response.content)["rows"][0][0])


def wait_backlog(client: httpx.Client, expected: int, load_ended: float) -> dict[str, Any]:
    """Seconds from the end of the load until every acknowledged event is queryable."""
    deadline = load_ended + BACKLOG_TIMEOUT_S
    seen: int | None = None
    while time.monotonic() < deadline:
        seen = count(client)
        if seen is not None and seen >= expected:
            return {"expected": expected, "seen": seen, "seconds": time.monotonic() - load_ended}
        time.sleep(POLL_S)
    return {
        "expected": expected,
        "seen": seen,
        "seconds": None,
        "note": f"gave up after {BACKLOG_TIMEOUT_S:.0f} s",
    }


def probe_body(marker: str) -> bytes:
    """A single page-view request whose page name is `marker`."""
    event = orjson.dumps(xdm_event(0, 0, name=marker))
    now_ms = time.time_ns() // 1_000_000
    second = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ms // 1000))
    stamp = f"{second}.{now_ms % 1000:03d}Z"
    event = event.replace(b"@@SEQ@@", marker.encode()).replace(b"@@TS@@", stamp.encode())
    return request_body([event])


def one_probe(edge: httpx.Client, api: httpx.Client, target: Target, marker: str) -> float | None:
    """Seconds from the 200 of one probe event until the query API sees it (None: never)."""
    response = edge.post(
        f"/ee/v1/interact?configId={target.datastream}&requestId={marker}",
        content=probe_body(marker),
        headers={"Content-Type": "text/plain; charset=UTF-8"},
    )
    acked = time.monotonic()
    if response.status_code != 200:
        return None
    where = f" WHERE web.webPageDetails.name = '{marker}'"
    while time.monotonic() - acked < PROBE_TIMEOUT_S:
        if count(api, where) == 1:
            return time.monotonic() - acked
        time.sleep(POLL_S)
    return None


def run_probes(target: Target, probes: int, run_tag: str) -> dict[str, Any]:
    """Ack -> queryable seconds over `probes` sequential probe events."""
    headers = {"Authorization": f"Bearer {target.token}"}
    with (
        httpx.Client(base_url=target.base_url, timeout=30) as edge,
        httpx.Client(base_url=target.base_url, timeout=30, headers=headers) as api,
    ):
        found = [one_probe(edge, api, target, f"probe-{run_tag}-{i}") for i in range(probes)]
    seconds = sorted(x for x in found if x is not None)
    return {
        "probes": probes,
        "lost": probes - len(seconds),
        "seconds": {
            name: percentile(seconds, q) for name, q in (("p50", 0.5), ("p90", 0.9), ("max", 1.0))
        },
    }


# --- report -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU count, model and Python version of this machine."""
    model = "unknown"
    with Path("/proc/cpuinfo").open() as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for the report, `-` for none."""
    return "-" if value is None else f"{value:.{digits}f}"


def render(report: dict[str, Any]) -> str:
    """The plain-text report."""
    m, s = report["machine"], report["settings"]
    lines = [
        "Koppla edge throughput",
        f"machine:  nproc={m['nproc']}  cpu={m['cpu_model']}  python={m['python']}",
        f"settings: {' '.join(f'{k}={v}' for k, v in s.items())}",
        "",
        f"{'phase':<8}{'ev/req':>7}{'req/s':>10}{'events/s':>11}"
        f"{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}  errors",
    ]
    for p in report["phases"]:
        lat = p["latency_ms"]
        lines.append(
            f"{p['phase']:<8}{p['events_per_request']:>7}{p['requests_per_s']:>10.0f}"
            f"{p['acked_events_per_s']:>11.0f}{fmt(lat['p50']):>9}{fmt(lat['p90']):>9}"
            f"{fmt(lat['p99']):>9}{fmt(lat['max']):>9}  {p['errors'] or 'none'}"
        )
    b = report["backlog"]
    drained = (
        f"after {fmt(b['seconds'], 2)} s"
        if b["seconds"] is not None
        else (f"NOT within {BACKLOG_TIMEOUT_S:.0f} s (saw {b['seen']})")
    )
    lines += ["", f"backlog:  {b['expected']} acknowledged events queryable {drained}"]
    q = report["probes"]
    lines.append(
        f"ack->queryable over {q['probes']} probes: p50 {fmt(q['seconds']['p50'], 3)} s, "
        f"p90 {fmt(q['seconds']['p90'], 3)} s, max {fmt(q['seconds']['max'], 3)} s"
        f"{'' if not q['lost'] else ', ' + str(q['lost']) + ' never seen'}"
    )
    return "\n".join(lines)


def save(report: dict[str, Any]) -> Path:
    """Write the report as JSON under `bench/results/`."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"edge_throughput-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return path


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="Target a running Koppla (http://127.0.0.1:PORT).")
    parser.add_argument("--token", help="API token for --url.")
    parser.add_argument("--datastream", default=DEMO_DATASTREAM, help="configId for --url.")
    parser.add_argument("--procs", type=int, default=1, help="Load-generator processes.")
    parser.add_argument("--conns", type=int, default=16, help="Connections in total.")
    parser.add_argument("--seconds", type=float, default=10.0, help="Measured seconds per phase.")
    parser.add_argument("--batch", type=int, default=10, help="Events per batched request.")
    parser.add_argument("--probes", type=int, default=20, help="Ack->queryable probe events.")
    parser.add_argument(
        "--mix",
        choices=("common", "all"),
        default="common",
        help="Event types: the six commonest, or every storefront type of domain.md §4.1.",
    )
    args = parser.parse_args(argv)
    if args.url and not args.token:
        parser.error("--url needs --token")
    if not (1 <= args.procs <= args.conns <= 4096 and 1 <= args.batch <= 1000):
        parser.error("need 1 <= procs <= conns <= 4096 and 1 <= batch <= 1000")
    if not (1 <= args.seconds <= 600 and 0 <= args.probes <= 1000):
        parser.error("need 1 <= seconds <= 600 and 0 <= probes <= 1000")
    args.run_tag = secrets.token_hex(4)
    return args


def benchmark(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    """All phases against `target`; the report as a dict."""
    headers = {"Authorization": f"Bearer {target.token}"}
    with httpx.Client(base_url=target.base_url, timeout=30, headers=headers) as api:
        baseline = count(api) or 0
        phases = [
            run_phase(target, args, "single", 1),
            run_phase(target, args, "batch", args.batch),
        ]
        load_ended = time.monotonic()
        acked = sum(p["total_acked_events"] for p in phases)
        backlog = wait_backlog(api, baseline + acked, load_ended)
        backlog["expected"] -= baseline
        if backlog["seen"] is not None:
            backlog["seen"] -= baseline
    probes = run_probes(target, args.probes, args.run_tag)
    settings = {
        "procs": args.procs,
        "conns": args.conns,
        "seconds": args.seconds,
        "warmup_s": WARMUP_S,
        "batch": args.batch,
        "probes": args.probes,
        "mix": args.mix,
        "server": "own" if target.pid else target.base_url,
        "server_pid": target.pid,
        **{k: v for k, v in sorted(os.environ.items()) if k.startswith("KOPPLA_")},
    }
    return {
        "machine": machine(),
        "settings": settings,
        "phases": phases,
        "backlog": backlog,
        "probes": probes,
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the report."""
    args = parse_args(argv)
    if args.url:
        report = benchmark(given_server(args.url, args.token, args.datastream), args)
    else:
        with own_server() as target:
            print(f"koppla started on port {target.port}, pid {target.pid}", flush=True)
            report = benchmark(target, args)
    print(render(report))
    print(f"\nJSON: {save(report)}")


if __name__ == "__main__":
    main()
