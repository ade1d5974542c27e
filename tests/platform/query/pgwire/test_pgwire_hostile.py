"""Hostile bytes on the PostgreSQL port end that connection only; the next client is served."""

from __future__ import annotations

import os
import socket
import struct

import psycopg
import pytest
from pg_server import EVENTS, Pg


def raw(pg: Pg, payload: bytes) -> bytes:
    """Send `payload`, half-close, and return what the server answered before closing."""
    with socket.create_connection(("127.0.0.1", pg.port), timeout=15) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def startup(user: str) -> bytes:
    body = (
        struct.pack("!i", 196608)
        + b"user\x00"
        + user.encode()
        + b"\x00database\x00prod:all\x00\x00"
    )
    return struct.pack("!i", len(body) + 4) + body


HOSTILE = {
    "random garbage": os.urandom(4096),
    "a startup packet claiming 2 GB": struct.pack("!ii", 2**31 - 1, 196608),
    "half a startup packet": struct.pack("!ii", 200, 196608) + b"user\x00",
    "an unknown protocol": struct.pack("!ii", 8, 0x00020000),
    "a password message of 1 GB": b"p" + struct.pack("!i", 2**30),
    "no user": struct.pack("!ii", 9, 196608) + b"\x00",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_bytes_leave_the_server_serving(pg: Pg, name: str) -> None:
    raw(pg, HOSTILE[name])
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM demo_events").fetchone() == (EVENTS,)


def test_a_huge_message_after_login_ends_that_connection_with_08P01(pg: Pg) -> None:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        victim = conn.pgconn.socket
        os.write(victim, b"Q" + struct.pack("!i", 2**30))
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_half_message_then_close_leaves_the_server_serving(pg: Pg) -> None:
    with socket.create_connection(("127.0.0.1", pg.port), timeout=15) as sock:
        sock.sendall(startup(pg.org_id))
        assert sock.recv(9)[:1] == b"R"  # the password request
        sock.sendall(b"p" + struct.pack("!i", 100) + b"kpl_")
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
