"""One PostgreSQL client connection: startup and login, then simple and extended queries.

The session reads one message at a time and answers it; queries run through the engine (or, for
catalogue queries, the session's private catalog database, and for SET/SHOW/BEGIN the session
itself), in worker threads, so a slow query never holds up the event loop. Any error in a query
becomes an ErrorResponse with a SQLSTATE, and in the extended protocol the messages up to the next
Sync are skipped, as PostgreSQL does. A broken message ends this connection only.

One session cannot hold more than its share: query text is at most `MAX_SQL_BYTES`, prepared
statements and portals together at most `MAX_HELD_BYTES`, at most one engine query (so one query
slot) is open at a time (opening another closes it), every query stops after the session's time
limit, a client that reads nothing for that long or sits idle in a transaction holding a portal
is disconnected, and whatever a connection holds is released when it ends, however it ends.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import ssl
import sys
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Literal

from koppla.core.errors import InvalidInput, TransientError
from koppla.platform.query.errors import QueryBusy, QueryFailed, QueryRefused, QueryTimeout
from koppla.platform.query.pgwire import messages as m
from koppla.platform.query.pgwire.auth import (
    Login,
    LoginRefused,
    TokenCheck,
    is_loopback,
    login,
    shown_user,
)
from koppla.platform.query.pgwire.catalog import (
    CatalogDatabase,
    CatalogQuery,
    CatalogTooLarge,
    is_catalog_query,
)
from koppla.platform.query.pgwire.commands import (
    REPORTED,
    CommandRefused,
    SessionState,
    is_session_command,
    leading_word,
    run_command,
    split_statements,
)
from koppla.platform.query.pgwire.params import ParameterError, bind_values
from koppla.platform.query.pgwire.rows import (
    CatalogRows,
    EngineRows,
    QueryEngineLike,
    Rows,
    StaticRows,
)
from koppla.platform.query.pgwire.types import TEXT, fields
from koppla.platform.query.reach import FILES_OFF
from koppla.platform.query.result import Column

log = logging.getLogger(__name__)

MAX_STATEMENTS = 1000
MAX_PORTALS = 100
MAX_SQL_BYTES = 2**20
"""Longest query text (UTF-8) a Query or Parse message may carry."""
MAX_HELD_BYTES = 32 * 2**20
"""Most bytes a session's prepared statements and bound portals may hold together."""
PEER_CHECK_S = 0.5
"""How often a session checks, while a query runs, that its client is still there."""
_ENDS_FAILED = frozenset({"ROLLBACK", "ABORT", "COMMIT", "END"})


class ClientGone(Exception):
    """The client stopped reading (or left): the connection ends, releasing what it holds."""


class SqlError(Exception):
    """An error to send to the client: SQLSTATE and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Shared:
    """What every session of one server shares."""

    engine: QueryEngineLike
    tokens: TokenCheck
    executor: Executor
    tls: ssl.SSLContext | None
    stream_timeout_s: float
    startup_timeout_s: float = 10.0
    idle_in_transaction_timeout_s: float = 60.0
    max_connections: int = 32
    max_pending: int = 64
    max_pending_per_address: int = 8
    sessions: dict[int, Session] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)

    def admit(self, address: str) -> str | None:
        """Count a new, not yet logged-in connection from `address`; why not, when it may not
        (too many such connections, in all or from that address)."""
        if sum(self.pending.values()) >= self.max_pending:
            return f"too many connections are logging in ({self.max_pending}); retry shortly"
        if self.pending.get(address, 0) >= self.max_pending_per_address:
            return (
                f"too many connections from {address} are logging in "
                f"({self.max_pending_per_address}); retry shortly"
            )
        self.pending[address] = self.pending.get(address, 0) + 1
        return None

    def leave(self, address: str) -> None:
        """A connection `admit` counted logged in or ended."""
        count = self.pending.get(address, 0) - 1
        if count > 0:
            self.pending[address] = count
        else:
            self.pending.pop(address, None)

    def login_delay_s(self, address: str) -> float:
        """How long to wait before answering a failed login from `address` (grows, capped)."""
        if len(self.failures) > 10_000:
            self.failures.clear()
        count = self.failures.get(address, 0) + 1
        self.failures[address] = count
        return float(min(2.0, 0.1 * 2 ** min(count, 5)))


@dataclass
class Plan:
    """A parsed statement: its SQL, where it runs, and its parameters' type oids."""

    sql: str
    kind: Literal["empty", "command", "catalog", "engine"]
    param_oids: tuple[int, ...] = ()
    size: int = 0
    """Bytes the statement holds (its text), counted against `MAX_HELD_BYTES`."""


@dataclass
class Portal:
    """A bound statement and, once started, its rows."""

    plan: Plan
    params: list[Any]
    rows: Rows | None = None
    pending: list[bytes] = field(default_factory=list)
    sent: int = 0
    tag: str | None = None
    described: bool = False
    size: int = 0
    """Bytes the portal's parameters hold, counted against `MAX_HELD_BYTES`."""
    closed: str | None = None
    """Why the portal may no longer run (another engine query closed it)."""


def plan_of(sql: str, param_oids: tuple[int, ...] = ()) -> Plan:
    """Where one statement runs; `SqlError` 54000 when its text passes `MAX_SQL_BYTES`."""
    check_length(sql)
    statements = split_statements(sql)
    if not statements:
        return Plan("", "empty")
    if len(statements) > 1:
        raise SqlError(
            "42601",
            f"multiple statements are not allowed: found {len(statements)}, send one SELECT",
        )
    text = statements[0].strip()
    size = sys.getsizeof(text) + 8 * len(param_oids)
    if is_session_command(text):
        return Plan(text, "command", param_oids, size)
    if is_catalog_query(text):
        return Plan(text, "catalog", param_oids, size)
    return Plan(text, "engine", param_oids, size)


def check_length(sql: str) -> None:
    """`SqlError` 54000 when `sql` is longer than `MAX_SQL_BYTES` in UTF-8."""
    if len(sql) > MAX_SQL_BYTES or len(sql.encode("utf-8")) > MAX_SQL_BYTES:
        raise SqlError(
            "54000",
            f"query text is too long: at most {MAX_SQL_BYTES // 2**20} MiB (MAX_SQL_BYTES); "
            "pass large values as parameters or narrow the query",
        )


class Session:
    """The state machine of one connection; `run` serves it to the end."""

    def __init__(
        self,
        shared: Shared,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: str,
    ) -> None:
        self._shared = shared
        self._reader = reader
        self._writer = writer
        self._address = address
        self.pid = 0
        self.key = secrets.randbits(32)
        self._login: Login | None = None
        self._state = SessionState.initial("", "")
        self._statements: dict[str, Plan] = {}
        self._portals: dict[str, Portal] = {}
        self._skipping = False
        self._running: Rows | None = None
        self._cancelled = False
        self._catalog: CatalogDatabase | None = None
        self._pending = False
        self._tls = False

    # --- life -----------------------------------------------------------------------------

    async def run(self, *, admitted: bool = False) -> None:
        """Serve the connection until the client leaves or breaks the protocol. `admitted`: the
        server counted it with `Shared.admit` (it is uncounted at login or at the end)."""
        self._pending = admitted
        watcher: asyncio.Task[None] | None = None
        try:
            async with asyncio.timeout(self._shared.startup_timeout_s):
                started = await self._startup()
            if started:
                watcher = asyncio.create_task(self._watch_peer())
                await self._serve()
        except TimeoutError:
            self._send(m.error_response("08P01", "startup took too long", severity="FATAL"))
        except m.ProtocolViolation as exc:
            self._send(m.error_response("08P01", str(exc), severity="FATAL"))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, ClientGone):
            pass
        finally:
            if watcher is not None:
                watcher.cancel()
            self._leave_pending()
            await self._close()

    def _leave_pending(self) -> None:
        if self._pending:
            self._pending = False
            self._shared.leave(self._address)

    async def _watch_peer(self) -> None:
        """Once the client has gone (its end of the socket closed), cancel whatever query runs
        until the session ends (one may start after the client left, from what it sent)."""
        while True:
            if self._reader.at_eof() or self._writer.is_closing():
                self.cancel()
            await asyncio.sleep(PEER_CHECK_S)

    async def _close(self) -> None:
        self._shared.sessions.pop(self.pid, None)
        try:
            for portal in list(self._portals.values()):
                await self._drop(portal)
            self._portals.clear()
        finally:
            if self._catalog is not None:
                self._catalog.close()
                self._catalog = None
            await self._hang_up()

    async def _hang_up(self) -> None:
        """Send what is buffered if the client takes it soon, then close the socket."""
        try:
            if not self._writer.is_closing():
                await asyncio.wait_for(self._writer.drain(), 2)
            self._writer.close()
            await asyncio.wait_for(self._writer.wait_closed(), 2)
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError):
            self._writer.transport.abort()

    def cancel(self) -> None:
        """Cancel the running query, if any (a CancelRequest for this session)."""
        self._cancelled = True
        if self._running is not None:
            self._running.cancel()

    # --- startup --------------------------------------------------------------------------

    async def _startup(self) -> bool:
        tls_done = False
        while True:
            startup = await m.read_startup(self._reader)
            if startup.code == m.SSL_REQUEST and not tls_done:
                tls_done = True
                if self._shared.tls is None:
                    self._send(b"N")
                    continue
                if getattr(self._reader, "_buffer", b""):  # sent before the answer: injected
                    raise m.ProtocolViolation("data was sent before the TLS handshake")
                # no await between the answer and start_tls: the client's hello must reach TLS
                self._send(b"S")
                await self._writer.start_tls(self._shared.tls)
                self._tls = True
                continue
            if startup.code == m.GSSENC_REQUEST:
                self._send(b"N")
                continue
            if startup.code == m.CANCEL_REQUEST:
                self._cancel_other(startup.cancel_pid, startup.cancel_key)
                return False
            if startup.code >> 16 != 3:
                raise m.ProtocolViolation(
                    f"unsupported frontend protocol {startup.code >> 16}.{startup.code & 0xFFFF}"
                )
            return await self._authenticate(startup)

    def _cancel_other(self, pid: int, key: int) -> None:
        session = self._shared.sessions.get(pid)
        if session is not None and secrets.compare_digest(
            session.key.to_bytes(4, "big"), key.to_bytes(4, "big")
        ):
            session.cancel()

    async def _authenticate(self, startup: m.Startup) -> bool:
        if startup.code & 0xFFFF:
            unknown = [k for k in startup.parameters if k.startswith("_pq_.")]
            body = m._INT32.pack(0) + m._INT32.pack(len(unknown))
            self._send(m.message(b"v", body + b"".join(m.cstr(k) for k in unknown)))
        user = startup.parameters.get("user", "")
        if not user:
            self._fatal("28000", "no PostgreSQL user name specified in startup packet")
            return False
        database = startup.parameters.get("database") or user
        if not self._tls and not is_loopback(self._address):
            self._fatal(
                "28000",
                "TLS is required for connections from other machines; use sslmode=require",
            )
            return False
        self._send(m.authentication_cleartext())
        await self._flush()
        frame = await m.read_frame(self._reader)
        if frame.kind != b"p":
            raise m.ProtocolViolation(f"expected a password message, got {frame.kind!r}")
        password = m.parse_cstring(frame.body)
        try:
            self._login = await self._in_thread(
                lambda: login(self._shared.tokens, user, database, password)
            )
        except LoginRefused as refused:
            # Logged before the client hears of it, so whoever reads the log after the
            # refusal finds the line.
            log.info("PostgreSQL login refused for %s from %s", shown_user(user), self._address)
            await asyncio.sleep(self._shared.login_delay_s(self._address))
            self._fatal(refused.code, refused.message)
            return False
        self._shared.failures.pop(self._address, None)
        self._leave_pending()
        if len(self._shared.sessions) >= self._shared.max_connections:
            self._fatal(
                "53300",
                f"sorry, too many clients already (query_pg_max_connections is "
                f"{self._shared.max_connections})",
            )
            return False
        self._start_session(user, startup.parameters.get("application_name", ""))
        return True

    def _start_session(self, user: str, application_name: str) -> None:
        self._state = SessionState.initial(user, application_name)
        while self.pid == 0 or self.pid in self._shared.sessions:
            self.pid = secrets.randbelow(2**31 - 2) + 1
        self._shared.sessions[self.pid] = self
        self._send(m.authentication_ok())
        for name in REPORTED:
            self._send(m.parameter_status(name, self._state.parameters[name]))
        self._send(m.backend_key_data(self.pid, self.key))
        self._send(m.ready_for_query(b"I"))

    # --- messages -------------------------------------------------------------------------

    async def _serve(self) -> None:
        while True:
            await self._flush()
            idle = self._shared.idle_in_transaction_timeout_s if self._holds_portal() else None
            try:
                async with asyncio.timeout(idle):
                    frame = await m.read_frame(self._reader)
            except TimeoutError:
                self._fatal(
                    "25P03",
                    "terminating connection due to idle-in-transaction timeout: a transaction "
                    f"held an open portal with no message for {idle:g} s",
                )
                return
            if frame.kind == b"X":
                return
            if frame.kind == b"Q":
                await self._simple(m.parse_cstring(frame.body))
            elif frame.kind == b"S":
                await self._sync()
            elif frame.kind == b"H":
                continue
            elif frame.kind in b"PBDECF" and len(frame.kind) == 1:
                if not self._skipping:
                    await self._extended(frame)
            else:
                raise m.ProtocolViolation(f"unexpected message type {frame.kind!r}")

    def _holds_portal(self) -> bool:
        """True inside a transaction with a started portal (which may hold a query slot)."""
        return self._state.transaction != "I" and any(
            portal.rows is not None for portal in self._portals.values()
        )

    async def _extended(self, frame: m.Frame) -> None:
        try:
            handler: dict[bytes, Callable[[bytes], Any]] = {
                b"P": self._parse,
                b"B": self._bind,
                b"D": self._describe,
                b"E": self._execute,
                b"C": self._close_target,
                b"F": self._function_call,
            }
            result = handler[frame.kind](frame.body)
            if asyncio.iscoroutine(result):
                await result
        except (m.ProtocolViolation, ClientGone, ConnectionError):
            raise
        except Exception as exc:
            self._report(exc)
            self._skipping = True

    async def _sync(self) -> None:
        self._skipping = False
        for name, portal in list(self._portals.items()):
            if self._state.transaction == "I" or portal.tag is not None:
                await self._drop(portal)
                del self._portals[name]
        self._send(m.ready_for_query(self._state.transaction.encode()))

    async def _simple(self, sql: str) -> None:
        self._skipping = False
        try:
            plan = await self._plan(sql)
            if plan.kind == "empty":
                self._send(m.EMPTY_QUERY)
            else:
                portal = Portal(plan, [])
                try:
                    await self._start(portal)
                    self._send_description(portal)
                    await self._stream(portal, 0)
                finally:
                    await self._drop(portal)
        except (ClientGone, ConnectionError):
            raise
        except Exception as exc:
            self._report(exc)
        self._send(m.ready_for_query(self._state.transaction.encode()))

    async def _plan(self, sql: str, param_oids: tuple[int, ...] = ()) -> Plan:
        """`plan_of`, in a worker thread when the text is long (splitting it takes a while)."""
        check_length(sql)
        if len(sql) < 4096:
            return plan_of(sql, param_oids)
        plan: Plan = await self._in_thread(lambda: plan_of(sql, param_oids))
        return plan

    async def _parse(self, body: bytes) -> None:
        parse = m.parse_parse(body)
        try:
            plan = await self._plan(parse.sql, parse.param_oids)
        except SqlError as error:
            if error.code == "42601":
                raise SqlError(
                    "42601", "cannot insert multiple commands into a prepared statement"
                ) from None
            raise
        if parse.name and parse.name in self._statements:
            raise SqlError("42P05", f'prepared statement "{parse.name}" already exists')
        if len(self._statements) >= MAX_STATEMENTS:
            raise SqlError("54000", f"too many prepared statements (at most {MAX_STATEMENTS})")
        replaced = self._statements.get(parse.name)
        self._check_held(plan.size - (replaced.size if replaced is not None else 0))
        self._statements[parse.name] = plan
        self._send(m.PARSE_COMPLETE)

    async def _bind(self, body: bytes) -> None:
        bind = m.parse_bind(body)
        plan = self._statement(bind.statement)
        if any(code != 0 for code in bind.result_formats):
            raise SqlError(
                "0A000",
                "binary result format is not supported: ask for text results (format 0)",
            )
        size = sum(sys.getsizeof(value) for value in bind.values if value is not None)
        if bind.portal in self._portals:
            if bind.portal:
                raise SqlError("42P03", f'portal "{bind.portal}" already exists')
            await self._drop(self._portals.pop(""))
        if len(self._portals) >= MAX_PORTALS:
            raise SqlError("54000", f"too many open portals (at most {MAX_PORTALS})")
        self._check_held(size)
        params = bind_values(bind.values, bind.param_formats, plan.param_oids)
        self._portals[bind.portal] = Portal(plan, params, size=size)
        self._send(m.BIND_COMPLETE)

    def _check_held(self, more: int) -> None:
        """`SqlError` 54000 when `more` bytes would take the session past `MAX_HELD_BYTES`."""
        held = sum(plan.size for plan in self._statements.values())
        held += sum(portal.size for portal in self._portals.values())
        if held + more > MAX_HELD_BYTES:
            raise SqlError(
                "54000",
                f"prepared statements and portals would hold more than "
                f"{MAX_HELD_BYTES // 2**20} MiB (MAX_HELD_BYTES): close some "
                "(Close, DEALLOCATE) or send smaller ones",
            )

    async def _describe(self, body: bytes) -> None:
        kind, name = m.parse_target(body)
        if kind == b"S":
            plan = self._statement(name)
            count = max(len(plan.param_oids), _placeholders(plan.sql))
            oids = [plan.param_oids[i] if i < len(plan.param_oids) else 0 for i in range(count)]
            self._send(m.parameter_description([oid or TEXT for oid in oids]))
            await self._describe_statement(plan, count)
            return
        portal = self._portal(name)
        await self._start(portal)
        self._send_description(portal)
        portal.described = True

    async def _describe_statement(self, plan: Plan, count: int) -> None:
        if plan.kind != "engine" and plan.kind != "catalog":
            self._send(m.NO_DATA)
            return
        sql = plan.sql if plan.kind == "catalog" else f"SELECT * FROM ({plan.sql}) LIMIT 0"
        probe = Portal(Plan(sql, plan.kind, plan.param_oids), [None] * count)
        try:
            await self._start(probe)
            self._send_description(probe)
        except Exception:
            self._send(m.NO_DATA)
        finally:
            await self._drop(probe)

    async def _execute(self, body: bytes) -> None:
        name, limit = m.parse_execute(body)
        portal = self._portal(name)
        if portal.tag is not None:
            self._send(m.command_complete(portal.tag))
            return
        await self._start(portal)
        await self._stream(portal, max(limit, 0))

    async def _close_target(self, body: bytes) -> None:
        kind, name = m.parse_target(body)
        if kind == b"S":
            self._statements.pop(name, None)
        else:
            portal = self._portals.pop(name, None)
            if portal is not None:
                await self._drop(portal)
        self._send(m.CLOSE_COMPLETE)

    def _function_call(self, body: bytes) -> None:
        raise SqlError("0A000", "the function call message is not supported")

    def _statement(self, name: str) -> Plan:
        plan = self._statements.get(name)
        if plan is None:
            raise SqlError("26000", f'prepared statement "{name}" does not exist')
        return plan

    def _portal(self, name: str) -> Portal:
        portal = self._portals.get(name)
        if portal is None:
            raise SqlError("34000", f'portal "{name}" does not exist')
        if portal.closed is not None:
            raise SqlError("34000", f'portal "{name}" was closed: {portal.closed}')
        return portal

    # --- running --------------------------------------------------------------------------

    async def _start(self, portal: Portal) -> None:
        """Give the portal its rows (run a command, a catalogue query, or open the stream)."""
        if portal.rows is not None or portal.tag is not None:
            return
        plan = portal.plan
        if self._state.transaction == "E" and leading_word(plan.sql) not in _ENDS_FAILED:
            raise SqlError(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
            )
        self._cancelled = False
        if plan.kind == "empty":
            portal.tag = ""
        elif plan.kind == "command":
            portal.rows = self._command(plan.sql)
        elif plan.kind == "catalog":
            portal.rows = await self._catalog_rows(plan.sql, portal.params)
        else:
            await self._close_engine_portals()
            portal.rows = await self._engine_rows(plan.sql, portal.params)

    async def _close_engine_portals(self) -> None:
        """Close every open portal holding an engine query (and so a query slot): a session
        runs one engine query at a time."""
        for portal in self._portals.values():
            if portal.rows is not None and portal.rows.holds_slot:
                await self._drop(portal)
                portal.closed = "a session keeps one query open at a time, and another started"

    def _command(self, sql: str) -> Rows:
        result = run_command(sql, self._state)
        for name in self._state.dropped_statements:
            if name.upper() == "ALL":
                self._statements.clear()
            else:
                self._statements.pop(name, None)
        self._state.dropped_statements.clear()
        for name in result.changed:
            self._send(m.parameter_status(name, self._state.parameters[name]))
        columns = tuple(Column(name, "VARCHAR") for name in result.columns)
        encoded = [m.data_row([_utf8(v) for v in row]) for row in result.rows]
        return StaticRows(columns, encoded, result.tag)

    def _timeout_s(self) -> float:
        """The session's time limit per query: the server's, or the client's lower one."""
        timeout = self._shared.stream_timeout_s
        if self._state.statement_timeout_ms > 0:
            timeout = min(timeout, self._state.statement_timeout_ms / 1000)
        return timeout

    async def _catalog_rows(self, sql: str, params: list[Any]) -> Rows:
        login = self._require_login()
        query = CatalogQuery(sql, params or None, self._timeout_s())

        def answer() -> tuple[tuple[Column, ...], Any]:
            infos = self._shared.engine.tables_info(login.scope)
            wanted = tuple((t.name, t.columns) for t in infos)
            if self._catalog is None or self._catalog.tables != wanted:
                if self._catalog is not None:
                    self._catalog.close()
                self._catalog = None
                self._catalog = CatalogDatabase(infos, f"{login.sandbox}:all")
            return query.run(self._catalog)

        rows = CatalogRows(self._shared.executor, query, answer)
        self._running = rows
        try:
            await rows.open()
        except BaseException:
            await rows.close()
            raise
        finally:
            self._running = None
        return rows

    async def _engine_rows(self, sql: str, params: list[Any]) -> Rows:
        login = self._require_login()
        timeout = self._timeout_s()
        rows = EngineRows(
            self._shared.executor,
            lambda: self._shared.engine.stream(
                sql, scope=login.scope, params=params or None, timeout_s=timeout
            ),
        )
        self._running = rows
        try:
            await rows.open()
        except BaseException:
            self._running = None
            await rows.close()
            raise
        return rows

    def _send_description(self, portal: Portal) -> None:
        rows = portal.rows
        if rows is None or not rows.columns:
            self._send(m.NO_DATA)
        else:
            self._send(m.row_description(fields(rows.columns)))

    async def _stream(self, portal: Portal, limit: int) -> None:
        """Send the portal's rows (at most `limit`; 0: all), then its completion."""
        rows = portal.rows
        if rows is None:
            self._send(m.EMPTY_QUERY)
            portal.tag = ""
            return
        self._running = rows
        try:
            sent_now = 0
            while limit == 0 or sent_now < limit:
                if not portal.pending:
                    chunk = await rows.next_chunk()
                    if chunk is None:
                        break
                    portal.pending = chunk
                room = len(portal.pending) if limit == 0 else limit - sent_now
                out, portal.pending = portal.pending[:room], portal.pending[room:]
                self._send(b"".join(out))
                sent_now += len(out)
                portal.sent += len(out)
                await self._flush()
            else:
                if portal.pending or not rows.done:
                    self._send(m.PORTAL_SUSPENDED)
                    return
        finally:
            self._running = None
        portal.tag = rows.tag or f"SELECT {portal.sent}"
        self._send(m.command_complete(portal.tag))
        await self._drop(portal)

    async def _drop(self, portal: Portal) -> None:
        rows, portal.rows = portal.rows, None
        portal.pending = []
        if rows is not None:
            await rows.close()

    def _require_login(self) -> Login:
        if self._login is None:
            raise SqlError("28000", "not logged in")
        return self._login

    # --- errors and output ----------------------------------------------------------------

    def _report(self, exc: BaseException) -> None:
        code, text = self._error_of(exc)
        if self._state.transaction == "T":
            self._state.transaction = "E"
        self._send(m.error_response(code, text))

    def _error_of(self, exc: BaseException) -> tuple[str, str]:
        if isinstance(exc, SqlError | CommandRefused):
            return exc.code, str(exc)
        if isinstance(exc, CatalogTooLarge):
            return "54000", str(exc)
        if isinstance(exc, ParameterError):
            return "22P02", str(exc)
        if isinstance(exc, QueryRefused):
            text = str(exc)
            syntax = "could not be parsed" in text or "empty query" in text
            return ("42601" if syntax else "42501"), text
        if isinstance(exc, QueryTimeout):
            return "57014", str(exc)
        if isinstance(exc, QueryFailed):
            return _failure_code(str(exc), self._cancelled), str(exc)
        if isinstance(exc, QueryBusy):
            return "53000", str(exc)
        if isinstance(exc, InvalidInput):
            return "22023", str(exc)
        if isinstance(exc, TransientError):
            return "58000", str(exc)
        log.exception("PostgreSQL session %s: internal error", self.pid, exc_info=exc)
        return "XX000", f"internal error: {type(exc).__name__}"

    def _fatal(self, code: str, text: str) -> None:
        self._send(m.error_response(code, text, severity="FATAL"))

    def _send(self, data: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(data)

    async def _flush(self) -> None:
        """Wait until the client took what was sent; `ClientGone` when it reads nothing for the
        session's time limit (the connection then ends, closing its queries)."""
        if self._writer.is_closing():
            return
        try:
            await asyncio.wait_for(self._writer.drain(), self._shared.stream_timeout_s)
        except TimeoutError:
            raise ClientGone(
                f"the client read nothing for {self._shared.stream_timeout_s:g} s"
            ) from None

    async def _in_thread(self, work: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._shared.executor, work)


def _failure_code(text: str, cancelled: bool) -> str:
    lowered = text.lower()
    if cancelled or "cancelled" in lowered or "interrupted" in lowered:
        return "57014"
    if lowered.startswith("unknown table") or ("does not exist" in lowered and "table" in lowered):
        return "42P01"
    if FILES_OFF in text or "not allowed" in lowered:
        return "42501"
    if "parser error" in lowered or "syntax error" in lowered:
        return "42601"
    if "referenced column" in lowered:
        return "42703"
    if "conversion error" in lowered:
        return "22P02"
    return "XX000"


_PLACEHOLDER = re.compile(r"\$(\d{1,5})(?!\d)")


def _placeholders(sql: str) -> int:
    return max((int(n) for n in _PLACEHOLDER.findall(sql)), default=0)


def _utf8(value: str | None) -> bytes | None:
    return None if value is None else value.encode("utf-8")
