"""Koppla's edge beside a minimal baseline edge, driven by the same load generator in one run.

The baseline (`baseline_edge.py`) accepts `POST /ee/v1/interact`, group-commits the body to an
fdatasync'd log and answers 200: the floor of what any durable edge in Python costs on this
machine. Koppla is `koppla up --demo` in a temp home (as `edge_throughput.py` starts it), edge and
pipeline together. Each is measured with `loadgen.py` (`--conns` keep-alive connections, alloy
capture bodies): single-event requests, then `--batch`-event requests, each `--seconds` long after
a 2 s warm-up. The report gives acknowledged events/s for both and the ratio Koppla/baseline.

For Koppla it also says whether the pipeline kept up: after each phase, how many acknowledged
events were not yet queryable (`count(*)` of `demo_events`) and how long they took to drain.
Per phase it also gives the CPU time each process used per acknowledged event (from
`/proc/<pid>/stat`), which the other load on a shared machine disturbs far less than the rates.
`--long` adds a 60 s single-event phase during which `/api/v1/health` is sampled every 5 s: the
backlog (`backlogBytes`, `lagS`) must not grow over the minute.

The Koppla server inherits `KOPPLA_*` variables; `--edge-workers N` sets `KOPPLA_EDGE_WORKERS`.
The per-datastream rate limit (`edge_datastream_rate`, 50,000 events/s by default) is switched
off for the run, since it would cap the batched phase by policy, not by cost.

Run:  python bench/edge_vs_baseline.py [--seconds 15] [--conns 64] [--batch 50] [--long]
      python bench/edge_vs_baseline.py --baseline-procs 2 --edge-workers 2
Writes JSON to `bench/results/edge_vs_baseline-<UTC timestamp>.json`. It asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

from edge_throughput import (
    DEMO_DATASTREAM,
    RESULTS_DIR,
    Target,
    count,
    free_port,
    machine,
    own_server,
    run_phase,
    wait_backlog,
)

BASELINE = Path(__file__).resolve().parent / "baseline_edge.py"
LONG_S = 60.0
SAMPLE_EVERY_S = 5.0
SETTLE_S = 5.0


@contextmanager
def baseline_server(procs: int) -> Iterator[Target]:
    """Start `baseline_edge.py` on a free port; stop it (its process group) on exit."""
    with tempfile.TemporaryDirectory(prefix="baseline-edge-", ignore_cleanup_errors=True) as home:
        port = free_port()
        command = [sys.executable, str(BASELINE), "--port", str(port), "--procs", str(procs)]
        command += ["--dir", home]
        server = subprocess.Popen(command, start_new_session=True)
        try:
            wait_listening(port, server)
            yield Target("127.0.0.1", port, "", DEMO_DATASTREAM, server.pid)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)


def wait_listening(port: int, server: subprocess.Popen[bytes]) -> None:
    """Wait until something accepts connections on `port` (at most 20 s)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"baseline exited with {server.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                time.sleep(1.0)  # every --procs child binds by then
                return
        time.sleep(0.1)
    raise RuntimeError("baseline did not listen within 20 s")


def load_args(args: argparse.Namespace, seconds: float) -> argparse.Namespace:
    """What `edge_throughput.run_phase` reads from its arguments."""
    return argparse.Namespace(
        procs=args.procs, conns=args.conns, seconds=seconds, run_tag=args.run_tag, mix="common"
    )


def measure_baseline(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Single and batched phases against the baseline edge."""
    phases = []
    with baseline_server(args.baseline_procs) as target:
        assert target.pid is not None
        for phase, batch in (("single", 1), ("batch", args.batch)):
            before = cpu_seconds(target.pid, ())
            phases.append(run_phase(target, load_args(args, args.seconds), phase, batch))
            after = cpu_seconds(target.pid, ())
            phases[-1]["cpu_us_per_event"] = cpu_per_event(
                before, after, phases[-1]["total_acked_events"]
            )
            print(f"baseline {phase}: {phases[-1]['acked_events_per_s']:.0f} events/s", flush=True)
    return phases


_LABELS: dict[int, str] = {}  # pid -> label, fixed when a process is first seen


def cpu_seconds(
    root: int, names: tuple[str, ...] = ("pipeline", "profiles", "pgwire")
) -> dict[str, float]:
    """CPU seconds (user + system) used so far by `root` and each of its child processes.

    Koppla's children are labelled in the order `koppla up` starts them (pipeline, profile
    stage, PostgreSQL wire server), as first seen; a child started later (a restart, an edge
    worker) is `child-<pid>`: a bench's guess, not an API.
    """
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    fresh = root not in _LABELS
    labels = iter(names if fresh else ())
    for pid in [root, *children_of(root)]:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" in command:
            continue
        if pid not in _LABELS:
            _LABELS[pid] = "server" if pid == root else next(labels, f"child-{pid}")
        found[_LABELS[pid]] = (int(stat[11]) + int(stat[12])) / tick
    return found


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, oldest first."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return sorted(int(p) for p in text.split())


def cpu_per_event(
    before: dict[str, float], after: dict[str, float], events: int
) -> dict[str, float | None]:
    """CPU microseconds per acknowledged event, per process, over a phase."""
    return {
        name: (1e6 * (after[name] - before[name]) / events if events else None)
        for name in after
        if name in before
    }


class HealthSampler:
    """Samples `backlogBytes` and `lagS` from `/api/v1/health` every few seconds, in a thread."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._began = time.monotonic()

    def __enter__(self) -> HealthSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with httpx.Client(base_url=self._target.base_url, timeout=10) as client:
            while not self._stop.wait(SAMPLE_EVERY_S):
                try:
                    body = orjson.loads(client.get("/api/v1/health").content)
                except (httpx.HTTPError, orjson.JSONDecodeError):
                    continue
                self.samples.append(
                    {
                        "t_s": round(time.monotonic() - self._began, 1),
                        "backlogBytes": body.get("backlogBytes"),
                        "lagS": body.get("lagS"),
                    }
                )


def koppla_phase(
    target: Target, api: httpx.Client, args: argparse.Namespace, phase: str, batch: int, s: float
) -> dict[str, Any]:
    """One phase against Koppla, then what was left for the pipeline and how long it took."""
    before = count(api) or 0
    assert target.pid is not None
    cpu_before = cpu_seconds(target.pid)
    with HealthSampler(target) as sampler:
        result = run_phase(target, load_args(args, s), phase, batch)
    ended = time.monotonic()
    cpu_after = cpu_seconds(target.pid)
    seen = count(api)
    acked = result["total_acked_events"]
    result["backlog_at_end"] = None if seen is None else before + acked - seen
    drain = wait_backlog(api, before + acked, ended)
    result["drain_s"] = drain["seconds"]
    result["health_samples"] = sampler.samples
    # the pipeline's share is only what it did during the load; `drain_s` says what was left
    result["cpu_us_per_event"] = cpu_per_event(cpu_before, cpu_after, acked)
    print(f"koppla {phase}: {result['acked_events_per_s']:.0f} events/s", flush=True)
    return result


def measure_koppla(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Single, batched and (with `--long`) a 60 s single phase against `koppla up --demo`."""
    os.environ.setdefault("KOPPLA_EDGE_DATASTREAM_RATE", "0")
    if args.edge_workers:
        os.environ["KOPPLA_EDGE_WORKERS"] = str(args.edge_workers)
    with own_server() as target:
        headers = {"Authorization": f"Bearer {target.token}"}
        with httpx.Client(base_url=target.base_url, timeout=30, headers=headers) as api:
            settle(api)
            phases = [
                koppla_phase(target, api, args, "single", 1, args.seconds),
                koppla_phase(target, api, args, "batch", args.batch, args.seconds),
            ]
            if args.long:
                phases.append(koppla_phase(target, api, args, "long", 1, LONG_S))
            return phases


def settle(api: httpx.Client) -> None:
    """Wait until the pipeline runs, then a few seconds more: the children's start-up work
    (imports, opening tables) must not count as the first phase's CPU."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if orjson.loads(api.get("/api/v1/health").content).get("pipeline") == "running":
            break
        time.sleep(0.5)
    time.sleep(SETTLE_S)


def grows(samples: list[dict[str, Any]]) -> bool | None:
    """True when the backlog at the end of a phase is well above its level early on."""
    values = [int(s["backlogBytes"]) for s in samples if s["backlogBytes"] is not None]
    if len(values) < 4:
        return None
    early, late = values[: len(values) // 3], values[-(len(values) // 3) :]
    return min(late) > 2 * max(early) + 1_000_000


def render(report: dict[str, Any]) -> str:
    """The plain-text report."""
    lines = [
        "Koppla edge vs baseline edge (same load generator, same run)",
        f"machine: {report['machine']}",
        f"settings: {report['settings']}",
        "",
        f"{'phase':<8}{'ev/req':>7}{'baseline ev/s':>15}{'koppla ev/s':>13}{'ratio':>7}"
        f"{'k p50 ms':>10}{'k p99 ms':>10}{'left':>9}{'drain s':>9}  errors",
    ]
    base = {p["phase"]: p for p in report["baseline"]}
    for k in report["koppla"]:
        b = base.get("single" if k["phase"] == "long" else k["phase"])
        b_rate = b["acked_events_per_s"] if b else None
        ratio = k["acked_events_per_s"] / b_rate if b_rate else None
        drain = "-" if k["drain_s"] is None else f"{k['drain_s']:.1f}"
        lines.append(
            f"{k['phase']:<8}{k['events_per_request']:>7}"
            f"{'-' if b_rate is None else f'{b_rate:.0f}':>15}{k['acked_events_per_s']:>13.0f}"
            f"{'-' if ratio is None else f'{ratio:.2f}':>7}"
            f"{k['latency_ms']['p50'] or 0:>10.1f}{k['latency_ms']['p99'] or 0:>10.1f}"
            f"{k['backlog_at_end'] if k['backlog_at_end'] is not None else '-':>9}{drain:>9}"
            f"  {k['errors'] or 'none'}"
            + (f"  baseline errors {b['errors']}" if b and b["errors"] else "")
        )
        lines.append(
            "  cpu us/event (during the load): koppla "
            + ", ".join(f"{n} {v:.0f}" for n, v in k["cpu_us_per_event"].items() if v)
            + (
                "; baseline " + ", ".join(f"{v:.0f}" for v in b["cpu_us_per_event"].values() if v)
                if b
                else ""
            )
        )
        if k["phase"] == "long":
            lines.append(
                f"  backlog over the minute (t s, bytes, lag s): "
                f"{[(s['t_s'], s['backlogBytes'], s['lagS']) for s in k['health_samples']]}"
                f"; grows: {grows(k['health_samples'])}"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="Measured seconds per phase.")
    parser.add_argument("--conns", type=int, default=64, help="Connections in total.")
    parser.add_argument("--procs", type=int, default=1, help="Load-generator processes.")
    parser.add_argument("--batch", type=int, default=50, help="Events per batched request.")
    parser.add_argument("--baseline-procs", type=int, default=1, help="Baseline processes.")
    parser.add_argument("--edge-workers", type=int, default=0, help="KOPPLA_EDGE_WORKERS.")
    parser.add_argument("--long", action="store_true", help="Add a 60 s single-event phase.")
    parser.add_argument("--skip-baseline", action="store_true", help="Measure Koppla only.")
    args = parser.parse_args(argv)
    args.run_tag = secrets.token_hex(4)
    return args


def main(argv: list[str] | None = None) -> None:
    """Measure both, print the report, save it as JSON."""
    args = parse_args(argv)
    baseline = [] if args.skip_baseline else measure_baseline(args)
    koppla = measure_koppla(args)
    report = {
        "machine": machine() | {"load_avg": os.getloadavg()},
        "settings": {
            k: v for k, v in vars(args).items() if k != "run_tag" and not k.startswith("skip")
        }
        | {k: v for k, v in sorted(os.environ.items()) if k.startswith("KOPPLA_")},
        "baseline": baseline,
        "koppla": koppla,
    }
    print(render(report))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"edge_vs_baseline-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(f"\nJSON: {path}")


if __name__ == "__main__":
    main()
