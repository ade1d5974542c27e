"""The spool writer: appends records to a stream and acknowledges them only once they are on disk.

Concurrent appends are group-committed: one background thread writes whatever has queued up and
calls `fdatasync` once for the whole group, then resolves every waiting caller together. Appends
made on an event loop are staged there and handed to the thread once per loop iteration (one lock
and one wake-up for all of them, not one per request), which also makes the groups larger. A
writer owns its stream through an exclusive `flock` on `<stream>/lock`, released by the kernel
when the process dies; the next writer on that stream starts a new segment, so a torn tail from a
crash is never appended to.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from koppla.core.errors import TransientError
from koppla.platform.spool import frame
from koppla.platform.spool.position import Position, segment_name, segment_number

LOCK_FILE = "lock"

log = logging.getLogger(__name__)


class SpoolClosed(TransientError):
    """The writer is closed or its disk write failed; the caller must not acknowledge."""

    retry_after_s = 1
    """What a refused client is told to wait (`Retry-After`)."""


class SpoolFull(SpoolClosed):
    """The pipeline is too far behind (`spool_max_backlog_bytes`): nothing more is accepted
    until it catches up, so the disk never fills with what cannot be stored soon."""

    retry_after_s = 5


def stream_segments(stream_dir: Path) -> list[int]:
    """The segment numbers present in a stream directory, ascending."""
    numbers = (segment_number(p.name) for p in stream_dir.iterdir()) if stream_dir.exists() else ()
    return sorted(n for n in numbers if n is not None)


def acquire_stream(spool_dir: Path, prefix: str) -> tuple[str, int]:
    """Lock the first free stream named `<prefix>-<n>`; returns its name and the lock's fd."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    index = 0
    while True:
        name = f"{prefix}-{index}"
        stream_dir = spool_dir / name
        stream_dir.mkdir(exist_ok=True)
        fd = os.open(stream_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            index += 1
            continue
        return name, fd


def stream_is_live(stream_dir: Path) -> bool:
    """True while some process holds the writer lock of the stream."""
    lock_path = stream_dir / LOCK_FILE
    if not lock_path.exists():
        return False
    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


_Waiters = tuple[asyncio.AbstractEventLoop, list[asyncio.Future[Position]]]


@dataclass
class _Pending:
    payloads: list[bytes] = field(default_factory=list)
    waiters: list[_Waiters] = field(default_factory=list)
    size: int = 0


@dataclass
class _Staged:
    """Appends made on one loop during its current iteration, not yet handed to the thread."""

    payloads: list[bytes] = field(default_factory=list)
    futures: list[asyncio.Future[Position]] = field(default_factory=list)
    size: int = 0


class SpoolWriter:
    """Durable, group-committed appends to one spool stream."""

    def __init__(
        self, spool_dir: Path, *, prefix: str = "edge", segment_bytes: int, fsync: bool = True
    ) -> None:
        self.stream, self._lock_fd = acquire_stream(spool_dir, prefix)
        self._dir = spool_dir / self.stream
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        existing = stream_segments(self._dir)
        self._segment = (existing[-1] + 1) if existing else 1
        self._fd = self._open_segment(self._segment)
        self._offset = 0
        self._pending = _Pending()
        self._staged: dict[asyncio.AbstractEventLoop, _Staged] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"spool-{self.stream}", daemon=True)
        self._thread.start()

    def _open_segment(self, number: int) -> int:
        path = self._dir / segment_name(number)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        dir_fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return fd

    def append(self, payload: bytes) -> asyncio.Future[Position]:
        """Queue `payload`; the future resolves with its end position once it is durable.

        Raises `SpoolClosed` at once when the writer is closed or has failed.
        """
        if self._closed or self._failure is not None:
            raise SpoolClosed("the spool is not accepting writes")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Position] = loop.create_future()
        staged = self._staged.get(loop)
        if staged is None:
            staged = self._staged[loop] = _Staged()
            loop.call_soon(self._hand_over, loop)
        staged.payloads.append(payload)
        staged.futures.append(future)
        staged.size += frame.HEADER.size + len(payload)
        return future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """Give what `loop` staged to the writer thread (on that loop, once per iteration)."""
        staged = self._staged.pop(loop, None)
        if staged is None:
            return
        with self._cond:
            if self._closed or self._failure is not None:
                failure = SpoolClosed("the spool is not accepting writes")
                for future in staged.futures:
                    _fail_one(future, failure)
                return
            pending = self._pending
            pending.payloads += staged.payloads
            pending.waiters.append((loop, staged.futures))
            pending.size += staged.size
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending.payloads and not self._closed:
                    self._cond.wait()
                if not self._pending.payloads and self._closed:
                    return
                group, self._pending = self._pending, _Pending()
            try:
                end = self._write_group(group)
            except OSError as error:  # disk full, I/O error: this group is not acknowledged
                log.error(
                    "spool %s: write failed, %d requests refused: %s",
                    self.stream,
                    len(group.waiters),
                    error,
                )
                self._fail(group, error)
                self._recover()
                continue
            except BaseException as error:  # a bug: stop accepting rather than guess
                self._failure = error
                self._fail(group, error)
                return
            self._resolve(group, end)

    def _recover(self) -> None:
        """After a failed write, cut the segment back to its last durable end, or roll over."""
        try:
            os.ftruncate(self._fd, self._offset)
            if self._fsync:
                os.fsync(self._fd)
        except OSError:
            try:
                self._roll()
            except OSError as error:
                log.error("spool %s: cannot open a new segment: %s", self.stream, error)

    def _write_group(self, group: _Pending) -> Position:
        if self._offset > 0 and self._offset + group.size > self._segment_bytes:
            self._roll()
        data = frame.encode_all(group.payloads)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self._fsync:
            os.fdatasync(self._fd)
        self._offset += len(data)
        return Position(self._segment, self._offset)

    def _roll(self) -> None:
        if self._fsync:
            os.fsync(self._fd)
        os.close(self._fd)
        self._segment += 1
        self._fd = self._open_segment(self._segment)
        self._offset = 0

    @staticmethod
    def _resolve(group: _Pending, end: Position) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[Position]]] = {}
        for loop, futures in group.waiters:
            by_loop.setdefault(loop, []).extend(futures)
        for loop, futures in by_loop.items():
            loop.call_soon_threadsafe(_set_all, futures, end)

    @staticmethod
    def _fail(group: _Pending, error: BaseException) -> None:
        failure = SpoolClosed(f"spool write failed: {error}")
        for loop, futures in group.waiters:
            loop.call_soon_threadsafe(_fail_all, futures, failure)

    def close(self) -> None:
        """Flush what is queued, stop the thread and release the stream."""
        for loop in list(self._staged):
            self._hand_over(loop)
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        os.close(self._fd)
        os.close(self._lock_fd)


def _set_all(futures: list[asyncio.Future[Position]], end: Position) -> None:
    for future in futures:
        if not future.done():
            future.set_result(end)


def _fail_all(futures: list[asyncio.Future[Position]], error: BaseException) -> None:
    for future in futures:
        _fail_one(future, error)


def _fail_one(future: asyncio.Future[Position], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
