"""People and sessions: hashed passwords, sessions that expire, a lockout after failures."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from koppla.core import clock, ids
from koppla.core.errors import Conflict, InvalidInput
from koppla.platform.catalog.store import Catalog
from koppla.platform.catalog.users import (
    LOCKOUT_S,
    MAX_FAILURES,
    SESSION_TTL_S,
    WRONG_CREDENTIALS,
    SignInRefused,
    UserStore,
)

ORG = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"
PASSWORD = "a long enough password"
CHEAP = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
"""A fast argon2id hasher for tests that are not about the hash's strength."""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.sqlite"


@pytest.fixture
def users(path: Path) -> Iterator[UserStore]:
    store = UserStore(path, hasher=CHEAP)
    store.create_user("Ann@Shop.Example", PASSWORD, org_id=ORG)
    yield store
    store.close()


def _stored(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def test_passwords_are_stored_as_argon2id_hashes_only(path: Path) -> None:
    store = UserStore(path)  # the production hasher
    store.create_user("ann@shop.example", PASSWORD, org_id=ORG)
    store.close()

    [(digest,)] = _stored(path, "SELECT password_hash FROM admin_users")
    assert str(digest).startswith("$argon2id$")
    assert PASSWORD not in str(digest)
    assert PasswordHasher().verify(str(digest), PASSWORD)


def test_emails_are_kept_in_lower_case_and_unique(users: UserStore) -> None:
    assert [(u.email, u.org_id) for u in users.users()] == [("ann@shop.example", ORG)]
    with pytest.raises(Conflict):
        users.create_user(" ANN@shop.example ", "another password", org_id=ORG)
    session = users.sign_in("ANN@SHOP.EXAMPLE", PASSWORD)
    assert session.user == "ann@shop.example"


@pytest.mark.parametrize(
    ("email", "password", "org_id", "field"),
    [
        ("not-an-email", PASSWORD, ORG, "email"),
        ("bob@shop.example", "short", ORG, "password"),
        ("bob@shop.example", PASSWORD, "not-an-org", "orgId"),
    ],
)
def test_new_users_follow_the_rules(
    users: UserStore, email: str, password: str, org_id: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        users.create_user(email, password, org_id=org_id)
    assert refused.value.field == field
    assert [u.email for u in users.users()] == ["ann@shop.example"]


def test_a_session_token_is_random_and_only_its_digest_is_stored(
    users: UserStore, path: Path
) -> None:
    first = users.sign_in("ann@shop.example", PASSWORD)
    second = users.sign_in("ann@shop.example", PASSWORD)

    assert first.token != second.token and first.csrf != second.csrf
    assert len(first.token) >= 43  # 256 random bits, URL-safe base64
    assert first.org_id == ORG
    stored = _stored(path, "SELECT * FROM admin_sessions")
    text = repr(stored)
    for session in (first, second):
        assert session.token not in text and session.csrf not in text
        assert ids.token_digest(session.token) in text
    assert users.session(first.token) == first


def test_a_session_expires_after_twelve_hours(users: UserStore) -> None:
    now = clock.now_ms()
    session = users.sign_in("ann@shop.example", PASSWORD, now_ms=now)

    assert session.expires_ms == now + SESSION_TTL_S * 1000 == now + 12 * 3600 * 1000
    assert users.session(session.token, now_ms=session.expires_ms - 1) == session
    assert users.session(session.token, now_ms=session.expires_ms) is None


def test_signing_out_ends_the_session(users: UserStore) -> None:
    kept = users.sign_in("ann@shop.example", PASSWORD)
    ended = users.sign_in("ann@shop.example", PASSWORD)

    users.sign_out(ended.token)

    assert users.session(ended.token) is None
    assert users.session(kept.token) == kept
    assert users.session("made-up") is None
    users.sign_out("made-up")  # nothing to end: no error


def test_a_wrong_password_and_an_unknown_email_read_the_same(users: UserStore) -> None:
    with pytest.raises(SignInRefused) as wrong_password:
        users.sign_in("ann@shop.example", "not the password")
    with pytest.raises(SignInRefused) as unknown:
        users.sign_in("nobody@shop.example", PASSWORD)

    for refused in (wrong_password.value, unknown.value):
        assert (refused.reason, refused.retry_after_s) == (WRONG_CREDENTIALS, 0)


@pytest.mark.parametrize("email", ["ann@shop.example", "nobody@shop.example"])
def test_five_failures_lock_the_email_out_for_five_minutes(users: UserStore, email: str) -> None:
    start = 1_800_000_000_000
    for n in range(MAX_FAILURES):
        with pytest.raises(SignInRefused) as refused:
            users.sign_in(email, "wrong guess", now_ms=start + n * 1000)
        assert refused.value.retry_after_s == 0
    last = start + (MAX_FAILURES - 1) * 1000

    # Even the right password is refused now, with the time left.
    with pytest.raises(SignInRefused) as locked:
        users.sign_in(email, PASSWORD, now_ms=last + 1000)
    assert locked.value.retry_after_s == LOCKOUT_S - 1 == 299
    assert locked.value.reason == "too many attempts, try again in 299 s"
    # Other emails are not affected.
    users.create_user("bob@shop.example", PASSWORD, org_id=ORG)
    assert (
        users.sign_in("bob@shop.example", PASSWORD, now_ms=last + 1000).user == "bob@shop.example"
    )

    # Five minutes after the last failure, the right password works (and clears the failures).
    after = last + LOCKOUT_S * 1000
    if email == "ann@shop.example":
        assert users.sign_in(email, PASSWORD, now_ms=after).user == email
        with pytest.raises(SignInRefused) as again:
            users.sign_in(email, "wrong guess", now_ms=after + 1)
        assert again.value.retry_after_s == 0
    else:
        with pytest.raises(SignInRefused) as again:
            users.sign_in(email, PASSWORD, now_ms=after)
        assert again.value.reason == WRONG_CREDENTIALS


def test_failures_older_than_fifteen_minutes_do_not_count(users: UserStore) -> None:
    start = 1_800_000_000_000
    for n in range(MAX_FAILURES - 1):
        with pytest.raises(SignInRefused):
            users.sign_in("ann@shop.example", "wrong guess", now_ms=start + n)
    later = start + 15 * 60 * 1000 + MAX_FAILURES  # the first four have left the window
    with pytest.raises(SignInRefused) as refused:
        users.sign_in("ann@shop.example", "wrong guess", now_ms=later)
    assert refused.value.retry_after_s == 0
    assert users.sign_in("ann@shop.example", PASSWORD, now_ms=later + 1).user == "ann@shop.example"


def test_a_weaker_hash_is_renewed_at_the_next_sign_in(users: UserStore, path: Path) -> None:
    [(before,)] = _stored(path, "SELECT password_hash FROM admin_users")
    strong = UserStore(path)
    strong.sign_in("ann@shop.example", PASSWORD)
    strong.close()

    [(after,)] = _stored(path, "SELECT password_hash FROM admin_users")
    assert after != before and not PasswordHasher().check_needs_rehash(str(after))
    assert users.sign_in("ann@shop.example", PASSWORD).user == "ann@shop.example"


def test_a_new_password_ends_every_session(users: UserStore) -> None:
    session = users.sign_in("ann@shop.example", PASSWORD)

    users.set_password("ANN@shop.example", "a brand new password")

    assert users.session(session.token) is None
    with pytest.raises(SignInRefused):
        users.sign_in("ann@shop.example", PASSWORD)
    assert users.sign_in("ann@shop.example", "a brand new password").user == "ann@shop.example"
    with pytest.raises(InvalidInput):
        users.set_password("nobody@shop.example", "a brand new password")


def test_users_live_beside_the_catalog_in_its_file(path: Path) -> None:
    catalog = Catalog(path)
    store = UserStore(path, hasher=CHEAP)
    store.create_user("ann@shop.example", PASSWORD, org_id=ORG)
    catalog.create_dataset("events", schema_id="s")
    store.close()
    catalog.close()

    reopened = UserStore(path, hasher=CHEAP)
    assert [u.email for u in reopened.users()] == ["ann@shop.example"]
    reopened.close()
