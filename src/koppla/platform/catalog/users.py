"""People who sign in to the admin pages, and their sessions, in the catalog's SQLite file.

Passwords are hashed with argon2id (`argon2-cffi`'s defaults, RFC 9106's second recommended
profile); a hash made with weaker parameters is renewed at the next sign-in. Emails are kept in
lower case, one person per email. A session is a random 256-bit token of which only the SHA-256
is stored; it lasts `SESSION_TTL_S`, and its CSRF token is derived from it (an HMAC), so that
nothing which could act for the person is ever stored.

Repeated failures: after `MAX_FAILURES` failed sign-ins for one email within `FAILURE_WINDOW_S`,
sign-ins for that email are refused for `LOCKOUT_S`, whether or not the email belongs to anyone,
and a wrong password reads the same as an unknown email (no one learns who has an account).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from koppla.core import clock, ids
from koppla.core.errors import Conflict, InvalidInput, KopplaError
from koppla.core.sqlite import SqliteFile
from koppla.platform.catalog.models import check_org_id

SESSION_TTL_S = 12 * 3600
MAX_FAILURES = 5
FAILURE_WINDOW_S = 15 * 60
LOCKOUT_S = 5 * 60
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
"""Longer passwords are refused before hashing: argon2 reads all of them."""

WRONG_CREDENTIALS = "wrong email or password"

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS admin_users (
  email TEXT PRIMARY KEY, org_id TEXT NOT NULL, password_hash TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS admin_sessions (
  digest TEXT PRIMARY KEY, email TEXT NOT NULL, org_id TEXT NOT NULL,
  created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS admin_sessions_by_expiry ON admin_sessions(expires_ms);
CREATE TABLE IF NOT EXISTS admin_sign_in_failures (email TEXT NOT NULL, at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS admin_failures_by_email ON admin_sign_in_failures(email, at_ms);
"""


class SignInRefused(KopplaError):
    """A sign-in that did not succeed: `reason` is what the person may be told.

    `retry_after_s` is 0 for wrong credentials, and the seconds left while sign-ins for the
    email are refused after repeated failures.
    """

    def __init__(self, reason: str, retry_after_s: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class User:
    """A person who may sign in to the admin pages of one organization."""

    email: str
    org_id: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in person: the session token (the cookie's value), and its CSRF token."""

    token: str
    user: str
    org_id: str
    csrf: str
    expires_ms: int


def normalize_email(email: str) -> str:
    """`email` as stored and compared: trimmed, in lower case."""
    return email.strip().lower()


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: an HMAC of a fixed label under the session token.

    Knowing it reveals nothing of the session token; knowing the stored digest gives neither.
    """
    mac = hmac.new(session_token.encode(), b"koppla admin csrf", hashlib.sha256)
    return mac.hexdigest()


class UserStore:
    """People and their sessions; each method is one short transaction on the catalog file."""

    def __init__(self, path: Path, *, hasher: PasswordHasher | None = None) -> None:
        self._file = SqliteFile(path, SCHEMA)
        self._hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    def close(self) -> None:
        """Close the connection."""
        self._file.close()

    def create_user(self, email: str, password: str, *, org_id: str) -> User:
        """Add a person; `InvalidInput` for a malformed email, org id or too short a password,
        `Conflict` when the email already has an account."""
        address = _check_email(email)
        _check_password(password)
        user = User(address, check_org_id(org_id), clock.now_ms())
        digest = self._hasher.hash(password)
        try:
            with self._file.transaction() as db:
                db.execute(
                    "INSERT INTO admin_users VALUES (?, ?, ?, ?)",
                    (user.email, user.org_id, digest, user.created_ms),
                )
        except sqlite3.IntegrityError as error:
            raise Conflict(f"a user with email {address!r} exists") from error
        return user

    def set_password(self, email: str, password: str) -> None:
        """Give a person a new password and end every session they have."""
        _check_password(password)
        address = normalize_email(email)
        digest = self._hasher.hash(password)
        with self._file.transaction() as db:
            cursor = db.execute(
                "UPDATE admin_users SET password_hash = ? WHERE email = ?", (digest, address)
            )
            if cursor.rowcount == 0:
                raise InvalidInput(f"no user with email {address!r}", field="email")
            db.execute("DELETE FROM admin_sessions WHERE email = ?", (address,))

    def users(self) -> list[User]:
        """Every person, by email."""
        rows = self._file.all("SELECT email, org_id, created_ms FROM admin_users ORDER BY email")
        return [User(str(e), str(o), int(c)) for e, o, c in rows]

    def sign_in(self, email: str, password: str, *, now_ms: int | None = None) -> Session:
        """A new session for the person with `email` and `password`; `SignInRefused` otherwise.

        Refused with `retry_after_s` while the email is locked out after repeated failures (the
        password is then not even checked). Each attempt counts as a failure until it succeeds,
        whether or not the email is known, so attempts made at once cannot outrun the lockout;
        a success clears the email's failures.
        """
        now = clock.now_ms() if now_ms is None else now_ms
        address = normalize_email(email)
        wait_s = self._attempt(address, now)
        if wait_s > 0:
            raise SignInRefused(f"too many attempts, try again in {wait_s} s", wait_s)
        row = self._file.one(
            "SELECT org_id, password_hash FROM admin_users WHERE email = ?", (address,)
        )
        stored = self._dummy_hash() if row is None else str(row[1])
        matches = self._verify(stored, password[:MAX_PASSWORD_LENGTH])
        if row is None or not matches or len(password) > MAX_PASSWORD_LENGTH:
            raise SignInRefused(WRONG_CREDENTIALS)
        if self._hasher.check_needs_rehash(stored):
            self._rehash(address, password)
        return self._open_session(address, str(row[0]), now)

    def session(self, token: str, *, now_ms: int | None = None) -> Session | None:
        """The session of `token` while it is valid and unexpired, else None."""
        now = clock.now_ms() if now_ms is None else now_ms
        row = self._file.one(
            "SELECT email, org_id, expires_ms FROM admin_sessions WHERE digest = ?",
            (ids.token_digest(token),),
        )
        if row is None or int(row[2]) <= now:
            return None
        return Session(token, str(row[0]), str(row[1]), csrf_token(token), int(row[2]))

    def sign_out(self, token: str) -> None:
        """End the session of `token` (nothing happens for an unknown one)."""
        with self._file.transaction() as db:
            db.execute("DELETE FROM admin_sessions WHERE digest = ?", (ids.token_digest(token),))

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def _rehash(self, address: str, password: str) -> None:
        digest = self._hasher.hash(password)
        with self._file.transaction() as db:
            db.execute(
                "UPDATE admin_users SET password_hash = ? WHERE email = ?", (digest, address)
            )

    def _attempt(self, address: str, now: int) -> int:
        """Seconds before `address` may try again; when it may now (0), the attempt is recorded
        as a failure, which a success then clears."""
        window_start = now - FAILURE_WINDOW_S * 1000
        with self._file.transaction() as db:
            db.execute("DELETE FROM admin_sign_in_failures WHERE at_ms <= ?", (window_start,))
            rows = db.execute(
                "SELECT at_ms FROM admin_sign_in_failures WHERE email = ? AND at_ms > ? "
                "ORDER BY at_ms DESC LIMIT ?",
                (address, window_start, MAX_FAILURES),
            ).fetchall()
            if len(rows) >= MAX_FAILURES:
                until = int(rows[0][0]) + LOCKOUT_S * 1000
                wait_s = math.ceil((until - now) / 1000)
                if wait_s > 0:
                    return wait_s
            db.execute("INSERT INTO admin_sign_in_failures VALUES (?, ?)", (address, now))
        return 0

    def _dummy_hash(self) -> str:
        """A hash to verify against for unknown emails, so they cost what a wrong password
        costs (made on first need)."""
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy

    def _open_session(self, address: str, org_id: str, now: int) -> Session:
        token = secrets.token_urlsafe(32)
        expires = now + SESSION_TTL_S * 1000
        with self._file.transaction() as db:
            db.execute("DELETE FROM admin_sign_in_failures WHERE email = ?", (address,))
            db.execute("DELETE FROM admin_sessions WHERE expires_ms <= ?", (now,))
            db.execute(
                "INSERT INTO admin_sessions VALUES (?, ?, ?, ?, ?)",
                (ids.token_digest(token), address, org_id, now, expires),
            )
        return Session(token, address, org_id, csrf_token(token), expires)


def _check_email(email: str) -> str:
    address = normalize_email(email)
    if len(address) > 254 or not EMAIL.fullmatch(address):
        raise InvalidInput(f"{email!r} is not an email address", field="email")
    return address


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"a password may have at most {MAX_PASSWORD_LENGTH} characters", field="password"
        )
