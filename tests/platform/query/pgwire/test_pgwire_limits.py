"""One client cannot hold more than its share: time, query slots, memory, connections."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

import psycopg
import pytest
from pg_server import EVENTS, Pg
from wire import SYNC, Client, bind, execute, parse, query

from koppla.platform.query.pgwire.auth import is_loopback, shown_user

ENDLESS_CATALOG = (
    "SELECT count(*) FROM range(100000000000000) t(x), pg_catalog.pg_namespace WHERE x % 7 = 3"
)


def eventually(check: Callable[[], bool], what: str, within_s: float = 120) -> None:
    """Wait until `check()` holds; fail naming `what` if it never does."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.1)


def login(pg: Pg, *, source: str = "127.0.0.1") -> Client:
    return Client(pg.port, pg.org_id, pg.token, source=source)


def test_a_catalogue_query_stops_at_the_statement_timeout(pg: Pg) -> None:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("SET statement_timeout = '1s'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(ENDLESS_CATALOG)
        assert conn.execute("SELECT count(*) FROM demo_events").fetchone() == (EVENTS,)


def test_a_catalogue_query_is_cancelled(pg: Pg) -> None:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        finished = threading.Event()

        def cancel_until_finished() -> None:
            while not finished.wait(0.5):
                conn.cancel_safe()

        canceller = threading.Thread(target=cancel_until_finished)
        canceller.start()
        try:
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute(ENDLESS_CATALOG)
        finally:
            finished.set()
            canceller.join()


def test_a_catalogue_query_stops_when_its_client_leaves(pg: Pg) -> None:
    client = login(pg)
    client.send(query(ENDLESS_CATALOG))
    client.close()
    eventually(lambda: pg.server.sessions == 0, "the session ended after its client left")


def test_a_string_mentioning_the_catalogue_runs_on_the_engine(pg: Pg) -> None:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM demo_events WHERE 'pg_x' IS NOT NULL").fetchone()
    assert row == (EVENTS,)  # the catalogue's empty copy would have counted 0


def test_query_text_over_a_mebibyte_is_refused_and_the_connection_goes_on(pg: Pg) -> None:
    client = login(pg)
    long_text = "SELECT '" + "x" * 2**20 + "'"
    client.send(query(long_text))
    assert client.until_ready().codes == ["54000"]
    client.send(parse("", long_text), bind("", ""), execute(""), SYNC)
    assert client.until_ready().codes == ["54000"]
    client.send(query("SELECT 1"))
    reply = client.until_ready()
    assert not reply.errors and b"D" in reply.kinds
    client.close()


def test_prepared_statements_are_capped_in_bytes(pg: Pg) -> None:
    client = login(pg)
    statement = "SELECT '" + "x" * 1_000_000 + "'"
    client.send(*(parse(f"s{n}", statement) for n in range(40)), SYNC)
    reply = client.until_ready()
    assert reply.codes == ["54000"]
    assert reply.kinds.count(b"1") < 40
    client.send(query("SELECT 1"))
    assert not client.until_ready().errors
    client.close()


def test_a_session_holds_one_engine_query_at_a_time(pg: Pg) -> None:
    client = login(pg)
    client.send(query("BEGIN"))
    client.until_ready()
    for n in range(6):
        name = str(n)
        client.send(
            parse(name, "SELECT * FROM range(100000000)"),
            bind(name, name),
            execute(name, 1),
            SYNC,
        )
        reply = client.until_ready()
        assert not reply.errors, reply.errors
        assert b"s" in reply.kinds  # suspended, open
    client.send(execute("0", 1), SYNC)
    closed = client.until_ready()
    assert closed.codes == ["34000"]
    assert "was closed" in closed.errors[0][1]
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:  # slots are left for others
        for _ in range(3):
            assert conn.execute("SELECT count(*) FROM demo_events").fetchone() == (EVENTS,)
    client.close()


def test_a_client_that_reads_nothing_is_disconnected(pg_with: Callable[..., Pg]) -> None:
    pg = pg_with(stream_timeout_s=2.0)
    client = login(pg)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.send(query("SELECT repeat('x', 1000) FROM range(100000000)"))
    eventually(lambda: pg.server.sessions == 0, "the stalled session ended")
    client.close()
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM demo_events").fetchone() == (EVENTS,)


def test_idle_in_a_transaction_with_an_open_portal_ends_the_session(
    pg_with: Callable[..., Pg],
) -> None:
    pg = pg_with(idle_in_transaction_timeout_s=1.0)
    client = login(pg)
    client.send(query("BEGIN"))
    client.until_ready()
    client.send(parse("", "SELECT * FROM range(1000)"), bind("", ""), execute("", 1), SYNC)
    assert not client.until_ready().errors
    assert client.until_closed().codes == ["25P03"]
    client.close()


def test_idle_sockets_do_not_lock_out_other_clients(pg_with: Callable[..., Pg]) -> None:
    pg = pg_with(max_connections=2)
    idle = [socket.create_connection(("127.0.0.1", pg.port), timeout=30) for _ in range(40)]
    try:
        other = login(pg, source="127.0.0.2")
        other.send(query("SELECT count(*) FROM demo_events"))
        assert not other.until_ready().errors
        other.close()
    finally:
        for sock in idle:
            sock.close()


def test_past_max_connections_a_login_gets_53300(pg_with: Callable[..., Pg]) -> None:
    pg = pg_with(max_connections=2)
    with (
        psycopg.connect(pg.dsn()),
        psycopg.connect(pg.dsn()),
        pytest.raises(psycopg.OperationalError, match="too many clients"),
    ):
        psycopg.connect(pg.dsn())


def _outward_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if is_loopback(address) else address


def test_a_login_from_another_machine_needs_tls(pg_with: Callable[..., Pg]) -> None:
    address = _outward_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    pg = pg_with(host="0.0.0.0")
    with pytest.raises(psycopg.OperationalError, match="TLS is required"):
        psycopg.connect(pg.dsn(host=address, sslmode="disable"))
    with psycopg.connect(pg.dsn(host=address)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with psycopg.connect(pg.dsn(sslmode="disable")) as conn:  # loopback: plaintext allowed
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("192.0.2.2", False),
        ("::ffff:10.0.0.1", False),
        ("fd00::2", False),
        ("unknown", False),
    ],
)
def test_loopback_addresses(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_a_refused_login_does_not_log_what_was_typed_as_user(
    pg: Pg, caplog: pytest.LogCaptureFixture
) -> None:
    typed = "kpl_thisLooksLikeASecretTokenPastedIntoTheUserField"
    with caplog.at_level(logging.INFO), pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.dsn(user=typed, password="kpl_wrong"))
    assert "login refused for an unknown user" in caplog.text
    assert typed[:6] not in caplog.text
    assert shown_user(pg.org_id) == f"user {pg.org_id}"
