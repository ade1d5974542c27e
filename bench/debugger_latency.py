"""Live debugger latency: seconds from sending an event to seeing it on the debugger stream.

Starts `koppla up --demo --no-demo-shop` (temp home, free port), opens
`GET /api/v1/datastreams/{id}/debug`, sends `--events` single-event requests one at a time and
prints p50/p90/max of send → shown. Prints figures only.  Run: `python bench/debugger_latency.py`.
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.server import Koppla, free_port

from koppla.core import codec

DATASTREAM = "6d3b1f0e-8c2a-4e7b-9a41-0d2f6a1c5e90"


def watch(
    url: str, token: str, seen: queue.Queue[tuple[str, float]], ready: threading.Event
) -> None:
    """Put (marker, time seen) for every event the debugger shows."""
    headers = {"authorization": f"Bearer {token}"}
    with (
        contextlib.suppress(httpx.HTTPError),
        httpx.stream(
            "GET", f"{url}/api/v1/datastreams/{DATASTREAM}/debug", headers=headers, timeout=None
        ) as response,
    ):
        for line in response.iter_lines():
            if line.startswith(": watching"):
                ready.set()
            elif line.startswith("data: "):
                entry = codec.loads(line[6:])
                name = entry["xdm"].get("web", {}).get("webPageDetails", {}).get("name", "")
                seen.put((name, time.perf_counter()))


def main() -> None:
    """Run the measurement and print it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="koppla-debug-bench-") as tmp:
        server = Koppla(Path(tmp) / "home", free_port())
        server.start()
        try:
            seen: queue.Queue[tuple[str, float]] = queue.Queue()
            ready = threading.Event()
            threading.Thread(
                target=watch, args=(server.url, server.token(), seen, ready), daemon=True
            ).start()
            ready.wait(10)
            delays: list[float] = []
            with httpx.Client(base_url=server.url) as client:
                for n in range(args.events):
                    marker = f"debug-{n}"
                    event = {
                        "eventType": "web.webpagedetails.pageViews",
                        "timestamp": "2026-12-01T10:00:00Z",
                        "web": {"webPageDetails": {"name": marker}},
                    }
                    sent = time.perf_counter()
                    client.post(
                        f"/ee/v1/interact?configId={DATASTREAM}",
                        content=codec.dumps({"events": [{"xdm": event}]}),
                    )
                    name, shown = seen.get(timeout=10)
                    if name == marker:
                        delays.append(shown - sent)
            delays.sort()
            p50, p90 = statistics.median(delays), delays[int(len(delays) * 0.9) - 1]
            print(
                f"debugger: n={len(delays)} send->shown p50={p50 * 1000:.1f} ms "
                f"p90={p90 * 1000:.1f} ms max={delays[-1] * 1000:.1f} ms"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
