"""`koppla debug`: reads the debugger's server-sent events and prints them as they come."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

from koppla.core import codec
from koppla.core.errors import TerminalError

CONNECT_TIMEOUT_S = 10.0
"""How long to wait for the server to accept the connection and answer the request."""


class DebuggerRefused(TerminalError):
    """The server answered the debugger request with an error status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"the server answered {status}: {detail}")
        self.status = status
        self.detail = detail


def _line(entry: dict[str, Any], full: bool) -> str:
    """One event as Rich markup; what the sender chose (types, ids, paths) is escaped."""
    mark = "[green]valid[/]" if entry.get("valid") else "[red]INVALID[/]"
    event_type = _text(entry.get("eventType") or "(no eventType)")
    head = (
        f"{_text(entry.get('receivedAt', ''))}  {event_type}  {mark}  "
        f"ecid={_text(entry.get('ecid'))}  id={_text(entry.get('id'))}  "
        f"[dim]{_text(entry.get('outcome', ''))}[/]"
    )
    lines = [head]
    lines += [
        f"    [red]{_text(i['path'] or '(event)')}[/]: {_text(i['message'])}"
        for i in entry.get("issues", [])
    ]
    if entry.get("lostBefore"):
        lines.insert(0, f"[yellow]… {entry['lostBefore']} events not shown (too fast)[/]")
    if full:
        lines.append(_text(codec.dumps_pretty(entry.get("xdm"))))
    return "\n".join(lines)


def _text(value: object) -> str:
    return escape(str(value))


def error_detail(text: str) -> str:
    """The message of an API error body (`detail`, `title` or `message`), else its start."""
    try:
        body = codec.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("detail", "title", "message", "error_description", "error"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return " ".join(text.split())[:200] or "(no body)"


def tail(
    base_url: str,
    datastream: str,
    token: str,
    *,
    console: Console,
    full: bool,
    verify: ssl.SSLContext | bool,
) -> None:
    """Print events for `datastream` until interrupted.

    Raises `DebuggerRefused` when the server refuses the request, and httpx's `TransportError`
    when it cannot be reached or drops the connection.
    """
    url = f"{base_url}/api/v1/datastreams/{datastream}/debug"
    headers = {"authorization": f"Bearer {token}", "accept": "text/event-stream"}
    timeout = httpx.Timeout(CONNECT_TIMEOUT_S, read=None)
    with httpx.stream("GET", url, headers=headers, timeout=timeout, verify=verify) as response:
        if response.status_code != 200:
            response.read()
            raise DebuggerRefused(response.status_code, error_detail(response.text))
        console.print(f"watching datastream {datastream} at {base_url} (Ctrl+C stops)")
        for raw in response.iter_lines():
            if raw.startswith("data: "):
                console.print(_line(codec.loads(raw[6:]), full), highlight=False)
