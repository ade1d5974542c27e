"""A minimal edge to measure Koppla against: accept, group-commit an fdatasync'd log, acknowledge.

`POST /ee/v1/interact` with any body up to 1 MiB is appended to a log file (a 4-byte length before
each body) by one writer thread, the way Koppla's spool commits: write whatever has queued, one
`fdatasync`, then acknowledge every request of the group. Only then does the client get a 200
with a small JSON body shaped like Koppla's answer. Nothing else: no parsing of the body beyond
HTTP, no identity, no limits, no CORS, no pipeline. Any other path answers 404.

It is a plain asyncio protocol (uvloop when installed) with a hand-written HTTP/1.1 parser for
keep-alive requests with `Content-Length` (what the load generator sends); `--procs N` runs N
processes each listening with `SO_REUSEPORT` and writing its own log file.

Run:  python bench/baseline_edge.py --port 8099 [--procs 1] [--dir /tmp/baseline] [--no-fsync]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import socket
import struct
import tempfile
import threading
from pathlib import Path
from typing import Any, cast

MAX_BODY = 1024 * 1024
HEAD_LIMIT = 64 * 1024
LENGTH = struct.Struct(">I")
ANSWER = (
    b'{"requestId":"00000000-0000-4000-8000-000000000000","handle":[{"payload":'
    b'[{"id":"00000000000000000000000000000000000000","namespace":{"code":"ECID"}}],'
    b'"type":"identity:result"}]}'
)
OK = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json;charset=utf-8\r\ncontent-length: "
    + str(len(ANSWER)).encode()
    + b"\r\n\r\n"
    + ANSWER
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
TOO_LARGE = b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
BAD = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class GroupLog:
    """An append-only log: one thread writes what has queued, fdatasyncs once, acks the group."""

    def __init__(self, path: Path, *, fsync: bool) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._fsync = fsync
        self._cond = threading.Condition()
        self._frames: list[bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._run, name="group-log", daemon=True).start()

    def append(self, body: bytes) -> asyncio.Future[None]:
        """Queue `body`; the future resolves once it is on disk."""
        future: asyncio.Future[None] = self._loop.create_future()
        with self._cond:
            self._frames.append(LENGTH.pack(len(body)))
            self._frames.append(body)
            self._waiters.append(future)
            self._cond.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._frames:
                    self._cond.wait()
                frames, self._frames = self._frames, []
                waiters, self._waiters = self._waiters, []
            view = memoryview(b"".join(frames))
            while view:
                view = view[os.write(self._fd, view) :]
            if self._fsync:
                os.fdatasync(self._fd)
            self._loop.call_soon_threadsafe(_resolve_all, waiters)


def _resolve_all(waiters: list[asyncio.Future[None]]) -> None:
    for future in waiters:
        if not future.done():
            future.set_result(None)


class EdgeProtocol(asyncio.Protocol):
    """One keep-alive connection: parse requests as bytes arrive, answer each after its commit."""

    def __init__(self, log: GroupLog) -> None:
        self._log = log
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._queue: list[asyncio.Future[bytes]] = []  # answers in request order

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport."""
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        """Parse every whole request in the buffer."""
        self._buffer += data
        while self._transport is not None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > HEAD_LIMIT:
                    self._close(BAD)
                return
            head = bytes(self._buffer[:end])
            length = _content_length(head)
            if length is None or length > MAX_BODY:
                self._close(TOO_LARGE if length else BAD)
                return
            start = end + 4
            if len(self._buffer) < start + length:
                return
            body = bytes(self._buffer[start : start + length])
            del self._buffer[: start + length]
            self._answer(head, body)

    def _answer(self, head: bytes, body: bytes) -> None:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        if head.startswith(b"POST /ee/v1/interact"):
            self._log.append(body).add_done_callback(lambda _: future.set_result(OK))
        else:
            future.set_result(NOT_FOUND)
        self._queue.append(future)
        future.add_done_callback(self._flush)

    def _flush(self, _: asyncio.Future[bytes]) -> None:
        """Write every answer that is ready, in request order (HTTP/1.1 pipelining)."""
        while self._queue and self._queue[0].done():
            answer = self._queue.pop(0).result()
            if self._transport is not None and not self._transport.is_closing():
                self._transport.write(answer)

    def _close(self, answer: bytes) -> None:
        if self._transport is not None:
            self._transport.write(answer)
            self._transport.close()
            self._transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the transport; pending commits still happen."""
        self._transport = None


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            value = line[15:].strip()
            return int(value) if value.isdigit() else None
    return 0


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound with `SO_REUSEPORT`, so several processes share the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(host: str, port: int, log_path: Path, fsync: bool) -> None:
    """Serve until cancelled."""
    log = GroupLog(log_path, fsync=fsync)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: EdgeProtocol(log), sock=listening_socket(host, port))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def process_main(host: str, port: int, log_path: str, fsync: bool) -> None:
    """One serving process (uvloop when installed)."""
    runner: Any
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(serve(host, port, Path(log_path), fsync))


def main(argv: list[str] | None = None) -> None:
    """Run `--procs` serving processes until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--procs", type=int, default=1, help="Serving processes (SO_REUSEPORT).")
    parser.add_argument("--dir", type=Path, help="Where the logs go (default: a temp dir).")
    parser.add_argument("--no-fsync", action="store_true", help="Skip fdatasync (not honest).")
    args = parser.parse_args(argv)
    directory = args.dir or Path(tempfile.mkdtemp(prefix="baseline-edge-"))
    directory.mkdir(parents=True, exist_ok=True)
    fsync = not args.no_fsync
    if args.procs == 1:
        process_main(args.host, args.port, str(directory / "log-0"), fsync)
        return
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(
            target=process_main, args=(args.host, args.port, str(directory / f"log-{i}"), fsync)
        )
        for i in range(args.procs)
    ]
    for child in children:
        child.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    for child in children:
        child.terminate()
    for child in children:
        child.join(timeout=10)


if __name__ == "__main__":
    main()
