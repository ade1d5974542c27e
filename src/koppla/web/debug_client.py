"""`koppla debug`: reads the debugger's server-sent events and prints them as they come."""

from __future__ import annotations

from typing import Any

import httpx
from rich.console import Console

from koppla.core import codec


def _line(entry: dict[str, Any], full: bool) -> str:
    mark = "[green]valid[/]" if entry.get("valid") else "[red]INVALID[/]"
    head = (
        f"{entry.get('receivedAt', '')}  {entry.get('eventType') or '(no eventType)'}  {mark}  "
        f"ecid={entry.get('ecid')}  id={entry.get('id')}  [dim]{entry.get('outcome', '')}[/]"
    )
    lines = [head]
    lines += [
        f"    [red]{i['path'] or '(event)'}[/]: {i['message']}" for i in entry.get("issues", [])
    ]
    if entry.get("lostBefore"):
        lines.insert(0, f"[yellow]… {entry['lostBefore']} events not shown (too fast)[/]")
    if full:
        lines.append(codec.dumps_pretty(entry.get("xdm")))
    return "\n".join(lines)


def tail(
    base_url: str, datastream: str, token: str, *, console: Console, full: bool, verify: bool
) -> None:
    """Print events for `datastream` until interrupted."""
    url = f"{base_url}/api/v1/datastreams/{datastream}/debug"
    headers = {"authorization": f"Bearer {token}", "accept": "text/event-stream"}
    with httpx.stream("GET", url, headers=headers, timeout=None, verify=verify) as response:
        if response.status_code != 200:
            response.read()
            raise SystemExit(f"error {response.status_code}: {response.text}")
        console.print(f"watching datastream {datastream} at {base_url} (Ctrl+C stops)")
        for raw in response.iter_lines():
            if raw.startswith("data: "):
                console.print(_line(codec.loads(raw[6:]), full), highlight=False)
