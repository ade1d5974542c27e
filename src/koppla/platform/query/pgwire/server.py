"""The asyncio server: accepts PostgreSQL clients, one `Session` each, up to a connection limit.

Queries and logins run in the server's own thread pool (sized for every connection to have a
query running and one batch being read ahead), never on the event loop. At most
`max_connections` sessions may be logged in at once: one more gets 53300 at login. Connections
not yet logged in are counted apart (at most `max_pending`, `max_pending_per_address` from one
address, each for at most `startup_timeout_s`), so idle sockets cannot lock clients out. Any
failure in one connection is logged and ends that connection only.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor

from koppla.platform.query.pgwire import messages as m
from koppla.platform.query.pgwire.auth import TokenCheck
from koppla.platform.query.pgwire.rows import QueryEngineLike
from koppla.platform.query.pgwire.session import Session, Shared

log = logging.getLogger(__name__)

WRITE_BUFFER_BYTES = 4 * 2**20


class PgServer:
    """A PostgreSQL wire-protocol server in front of a query engine."""

    def __init__(
        self,
        engine: QueryEngineLike,
        tokens: TokenCheck,
        *,
        host: str = "127.0.0.1",
        port: int = 5433,
        tls: ssl.SSLContext | None = None,
        max_connections: int = 32,
        stream_timeout_s: float = 600.0,
        startup_timeout_s: float = 10.0,
        idle_in_transaction_timeout_s: float = 60.0,
        max_pending: int = 64,
        max_pending_per_address: int = 8,
    ) -> None:
        """Serve `engine` on `host:port` (0: any free port), logging clients in with `tokens`.

        With `tls`, clients may (and with `sslmode=require` do) switch to TLS; clients from
        other machines must. Queries stop after `stream_timeout_s` (a client's
        `statement_timeout` may lower it), and a client that reads nothing for that long is
        disconnected, as is one idle for `idle_in_transaction_timeout_s` in a transaction
        holding an open portal.
        """
        self._host, self._port = host, port
        self._executor = ThreadPoolExecutor(
            max_workers=2 * max_connections + 4, thread_name_prefix="pgwire"
        )
        self._shared = Shared(
            engine,
            tokens,
            self._executor,
            tls,
            stream_timeout_s,
            startup_timeout_s,
            idle_in_transaction_timeout_s,
            max_connections,
            max_pending,
            max_pending_per_address,
        )
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Start listening; returns the port."""
        self._server = await asyncio.start_server(
            self._accept, self._host, self._port, limit=2**16, reuse_address=True
        )
        sockets = self._server.sockets
        return int(sockets[0].getsockname()[1]) if sockets else self._port

    @property
    def sessions(self) -> int:
        """How many clients are logged in now."""
        return len(self._shared.sessions)

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self) -> None:
        """Stop listening, end every connection (cancelling their queries), free the threads."""
        if self._server is not None:
            self._server.close()
        for session in list(self._shared.sessions.values()):
            session.cancel()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(self._connections, timeout=10)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._connection(reader, writer)
        except asyncio.CancelledError:
            writer.close()
        except Exception:
            log.exception("PostgreSQL connection failed")
            writer.close()
        finally:
            if task is not None:
                self._connections.discard(task)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = writer.get_extra_info("socket")
        if raw is not None:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.transport.set_write_buffer_limits(high=WRITE_BUFFER_BYTES)
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        refusal = self._shared.admit(address)
        if refusal is not None:
            writer.write(m.error_response("53300", refusal, severity="FATAL"))
            writer.close()
            return
        await Session(self._shared, reader, writer, address).run(admitted=True)
